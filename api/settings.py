"""Settings of the API service (``LAUKS_API_*``), on top of the shared ``lauks.settings.Settings``."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from lauks.zones import zone_problem
from metastore.settings import StoreSettings


class ApiSettings(StoreSettings):
    """The store's setting (``LAUKS_API_DATABASE_URL``, ``database_url``) comes from ``StoreSettings``."""

    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    # Reading the catalog and live data without a staff token (class codes always read their dataset).
    api_public_read: bool = False
    # Requests per minute per staff token (a valid one) or else per client address; bursts up to api_rate_burst.
    api_rate_limit_per_minute: float = Field(240, gt=0)
    api_rate_burst: int = Field(60, ge=1)
    # Share codes that were not found, per client address: a class mistypes a few, a guesser needs billions.
    api_code_failures_per_minute: float = Field(5, gt=0)
    api_code_failure_burst: int = Field(20, ge=1)
    # Addresses or networks of reverse proxies whose X-Forwarded-For names the client (e.g. ["10.0.0.2"]).
    # Empty: the header is ignored, since anybody can send it.
    api_trusted_proxies: list[str] = Field(default_factory=list)
    # The longest window of raw (not aggregated) readings one request may ask for.
    api_max_raw_days: int = Field(400, ge=1)
    # Time zone of dates and daily buckets when a request names none.
    api_timezone: str = "UTC"
    # A kit counts as online if it was heard from within this many seconds.
    api_online_window_s: int = Field(900, ge=10)
    # Rows that a dataset preview shows.
    api_preview_rows: int = Field(50, ge=1, le=1000)
    # The server's address as pupils reach it (share links and QR codes), e.g. https://lauks.school.lv.
    # Empty: the address each request came to.
    api_public_url: str = ""
    # Map tiles of the home page, a Leaflet URL template; empty: no map, the sites as a list only.
    api_map_tiles_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    api_map_attribution: str = "© OpenStreetMap contributors"
    # Key that signs staff sessions; replicas behind one address must share it. Empty: a random key
    # kept in <state_dir>/web-session.key.
    api_session_secret: SecretStr | None = None
    api_session_hours: int = Field(12, ge=1, le=24 * 30)

    @field_validator("api_public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not (value.startswith("http://") or value.startswith("https://")):
            raise ValueError(f"LAUKS_API_PUBLIC_URL {value!r} must start with http:// or https://")
        return value

    @field_validator("api_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if zone_problem(value):
            raise ValueError(f"LAUKS_API_TIMEZONE {value!r} is not an IANA time zone such as Europe/Riga")
        return value

    @field_validator("api_trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as error:
                raise ValueError(f"LAUKS_API_TRUSTED_PROXIES: {item!r} is not an address or network") from error
        return value

    @property
    def datasets_dir(self) -> Path:
        return self.state_dir / "datasets"
