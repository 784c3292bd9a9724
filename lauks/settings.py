"""Settings shared by every service, from the environment with the ``LAUKS_`` prefix.

Each service subclasses ``Settings`` with its own fields (``gateway.settings``, ``api.settings``).
Outside development, default or empty secrets are refused at start-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lauks import influx
from lauks.topics import Topics

# Secrets that the development stack uses; a production deployment must set its own.
DEVELOPMENT_SECRETS = frozenset({"", "lauks", "lauks-dev", "changeme", "password", "admin"})


def _is_update_key(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdefABCDEF" for c in value)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LAUKS_", extra="ignore")
    # False for a service that never connects to the broker (the alerter): its password is then not asked for
    uses_broker: ClassVar[bool] = True

    environment: Literal["development", "production"] = "development"
    state_dir: Path = Path(".lauks")

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(1883, ge=1, le=65535)
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_tls: bool = False
    mqtt_ca_file: Path | None = None
    topic_root: str = "lauks"

    influx_url: str = "http://127.0.0.1:8086"
    influx_database: str = "lauks"
    influx_username: str | None = None
    influx_password: SecretStr | None = None
    influx_token: SecretStr | None = None  # InfluxDB 2.x v1-compatibility API
    influx_timeout_s: float = Field(10.0, gt=0)
    influx_gzip: bool = False
    # The over-the-air update master key, 64 hex digits; unset: <state_dir>/fleet/update.key, which `lauks up` and
    # `lauks deploy init` make (lauks.fleet). Every kit's update key is derived from it.
    update_key: SecretStr | None = None

    @model_validator(mode="after")
    def _no_default_secrets_in_production(self) -> Self:
        if self.environment != "production":
            return self
        problems = []
        if self.uses_broker and (self.mqtt_password is None
                                 or self.mqtt_password.get_secret_value() in DEVELOPMENT_SECRETS):
            problems.append("LAUKS_MQTT_PASSWORD")
        for name, secret in (("LAUKS_INFLUX_PASSWORD", self.influx_password),
                             ("LAUKS_INFLUX_TOKEN", self.influx_token)):
            if secret is not None and secret.get_secret_value() in DEVELOPMENT_SECRETS:
                problems.append(name)
        if self.update_key is not None and not _is_update_key(self.update_key.get_secret_value()):
            problems.append("LAUKS_UPDATE_KEY (64 hex digits, or unset to use <state dir>/fleet/update.key)")
        if problems:
            raise ValueError(
                f"in production, set real secrets for {', '.join(problems)} (they are unset or a "
                "development default); the first-run command generates them"
            )
        return self

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_root)

    def influx_client(self, **overrides: object) -> influx.InfluxClient:
        options: dict[str, object] = {
            "username": self.influx_username,
            "password": self.influx_password.get_secret_value() if self.influx_password else None,
            "token": self.influx_token.get_secret_value() if self.influx_token else None,
            "timeout_s": self.influx_timeout_s,
            "gzip_writes": self.influx_gzip,
        }
        options.update(overrides)
        return influx.InfluxClient(self.influx_url, **options)  # type: ignore[arg-type]
