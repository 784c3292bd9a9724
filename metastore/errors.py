"""What the metadata store refuses: a stable code for programs and a sentence a person can act on.

No HTTP here: ``api/errors.py`` gives each kind its status, the command line prints the sentence.
"""

from __future__ import annotations


class StoreError(Exception):
    """A request the store refuses; ``code`` is stable (e.g. ``unknown_site``), ``message`` says what to do."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class NotFound(StoreError):
    """No such site, kit, token or share code."""

    def __init__(self, what: str, message: str) -> None:
        super().__init__(f"unknown_{what}", message)


class Invalid(StoreError):
    """A value the store cannot take: a malformed name, an unknown time zone, a field that is not there."""


class Required(StoreError):
    """A field every row has (a site's title, a kit's type), sent as null."""

    def __init__(self, message: str) -> None:
        super().__init__("invalid_request", message)


class Conflict(StoreError):
    """It exists already."""


class Gone(StoreError):
    """It existed, and has expired."""
