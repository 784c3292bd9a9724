"""Where the metadata store is: the one setting shared by the API and the command line."""

from __future__ import annotations

from lauks.settings import Settings


class StoreSettings(Settings):
    # Sites, kits, tokens and class datasets. None: SQLite at <state_dir>/lauks.db.
    # PostgreSQL: postgresql+psycopg://user:password@host:5432/lauks (the driver is a dependency).
    # Named for the API (LAUKS_API_DATABASE_URL), which had it first; every command reads the same one.
    api_database_url: str | None = None

    @property
    def database_url(self) -> str:
        if self.api_database_url:
            return self.api_database_url
        return f"sqlite:///{(self.state_dir / 'lauks.db').resolve()}"
