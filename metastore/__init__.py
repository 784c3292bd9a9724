"""The metadata store: sites, kits, staff tokens and class datasets, in SQLite or PostgreSQL.

Used by the API and by the command line; it knows nothing of HTTP."""
