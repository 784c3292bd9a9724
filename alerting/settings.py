"""Settings of the alerter (``LAUKS_SMTP_*``, ``LAUKS_ALERTS_*``), on top of the store's and the shared ones.

The SMTP password is a secret like the others: from the environment (docker compose reads it from .env), never
a default outside development. In development with no ``LAUKS_SMTP_HOST``, mails are written as .eml files to
``<state_dir>/mail`` instead, so ``lauks up`` shows what would be sent without a mail server.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal, Self

from pydantic import Field, SecretStr, model_validator

from lauks.settings import DEVELOPMENT_SECRETS
from metastore.settings import StoreSettings

SECURITY = ("starttls", "tls", "none")


class AlertSettings(StoreSettings):
    uses_broker: ClassVar[bool] = False  # it reads InfluxDB and the store, and sends mail: no broker
    smtp_host: str = ""  # empty: development writes mails to <state_dir>/mail; production refuses to start
    # 587 is submission with STARTTLS, 465 TLS from the first byte, 25 a relay on the school's own network
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    # The CA of the mail server's certificate when it is the school's own (lauks tls init's ca.crt); None: the
    # system's CAs, as for any mail server with a public certificate
    smtp_ca_file: Path | None = None
    smtp_from: str = ""  # e.g. "Lauks <lauks@school.lv>"; empty in development: lauks@localhost
    smtp_timeout_s: float = Field(30.0, gt=0)
    alerts_check_every_s: float = Field(60.0, gt=0)
    # A kit is never silent within the online window (as on the fleet and site pages): the API's setting
    api_online_window_s: int = Field(900, ge=10)
    api_public_url: str = ""  # links to the fleet page in mails; empty: none
    api_timezone: str = "UTC"  # the zone of a site that names none, as in the API

    @model_validator(mode="after")
    def _smtp_in_production(self) -> Self:
        if self.environment != "production":
            return self
        problems = []
        if not self.smtp_host:
            problems.append("LAUKS_SMTP_HOST (the school's mail server)")
        if not self.smtp_from:
            problems.append("LAUKS_SMTP_FROM (the address mails come from)")
        if self.smtp_username and (self.smtp_password is None
                                   or self.smtp_password.get_secret_value() in DEVELOPMENT_SECRETS):
            problems.append("LAUKS_SMTP_PASSWORD (unset or a development default)")
        if self.smtp_security == "none" and self.smtp_username:
            problems.append("LAUKS_SMTP_SECURITY=none with a username would send the password in clear: use "
                            "starttls or tls")
        if problems:
            raise ValueError(f"in production, alert mail needs {'; '.join(problems)}")
        return self

    @property
    def sender_address(self) -> str:
        return self.smtp_from or "Lauks <lauks@localhost>"

    @property
    def mail_dir(self) -> Path:
        """Where development keeps the mails it would have sent, when no SMTP server is set."""
        return self.state_dir / "mail"
