"""Friendly error pages, in the reader's language, for every page path; the JSON API keeps its JSON errors.

``api/errors.py`` asks ``is_page(request)`` and, for a page, hands the error to ``error_page``. A page's
own code raises ``PageError`` with a translated sentence; the API's and the store's errors are worded
here by their code. No page ever shows a stack trace: an unexpected error is a 500 page, and the log
has the trace.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from web.render import Page, PageError, render

log = logging.getLogger("lauks.web")
# Paths that answer JSON (or files) whatever went wrong: the API, the pages' data, the docs, static files.
NOT_PAGES = ("/v1/", "/w/", "/docs", "/openapi.json", "/static/")


def is_page(request: Request) -> bool:
    path = request.url.path
    return not any(path == prefix.rstrip("/") or path.startswith(prefix) for prefix in NOT_PAGES)


def _sentence(page: Page, status: int, code: str, wait_s: int | None) -> tuple[str, str]:
    """(heading, what to do) for an error, in the page's language."""
    _ = page.t.gettext
    if code in ("sign_in_needed", "staff_only", "bad_token"):
        return (_("Please sign in"),
                _("This page is for staff on this server. Sign in with your staff token. Pupils and classes "
                  "open their dataset with the code their teacher gave them."))
    if code == "csrf":
        return (_("Nothing was changed"),
                _("This form was old or came from another site. Go back, reload the page and try again."))
    if code in ("too_many_tries", "too_many_wrong_codes", "too_many_requests"):
        return (_("Too many tries"),
                _("Too many tries from this address. Wait %(seconds)s s, then check the code for typos.",
                  seconds=wait_s or 60))
    if code == "unknown_code":
        return (_("No dataset has this code"),
                _("Check the code for typos: it looks like ABCD-2345, and letters that look alike are "
                  "read the same. Ask your teacher if it still does not work."))
    if code == "code_expired":
        return (_("This code has expired"), _("Ask your teacher to extend the dataset or give you a new code."))
    if code == "unknown_site":
        return (_("No such school site"), _("Check the address, or pick the site on the home page."))
    if code == "unknown_kit":
        return (_("No such kit"), _("Check the address, or pick the kit on its site's page."))
    if code == "kit_retired":
        return (_("This kit is retired"), _("It no longer sends readings. Its site's page shows the kits that do."))
    if code == "not_public":
        return (_("This chart is not public"),
                _("This server shows kits only to staff. A class dataset's code still opens its charts."))
    if code == "unknown_quantity":
        return (_("No such quantity"), _("Check the address, or pick a quantity on the kit's page."))
    if status == 503 or code == "store_unavailable":
        return (_("The readings store is not answering"),
                _("The kits' readings are safe: the gateway keeps them until the store is back. Try again "
                  "in a minute."))
    if status == 404:
        return (_("No such page"), _("Check the address, or start again from the home page."))
    if status >= 500:
        return (_("Something went wrong on the server"),
                _("It is not something you did. Try again in a minute, and tell the staff if it keeps happening."))
    return (_("This cannot be done"), _("Go back and check what you entered."))


def error_page(request: Request, status: int, code: str, message: str | None = None,
               headers: dict[str, str] | None = None, wait_s: int | None = None) -> HTMLResponse:
    page = Page.of(request, embed=request.url.path.startswith("/embed/"))
    heading, advice = _sentence(page, status, code, wait_s)
    if headers and wait_s is None and "Retry-After" in headers:
        heading, advice = _sentence(page, status, code, int(headers["Retry-After"]))
    template = "embed_error.html" if page.embed else "error.html"
    return render(page, template, status=status, headers={**(headers or {}), "Cache-Control": "no-store"},
                  heading=heading, advice=message or advice, code=code, error_status=status)


def install(app: FastAPI) -> None:
    app.state.error_page = error_page
    app.state.is_page = is_page

    @app.exception_handler(PageError)
    async def _page_error(request: Request, error: PageError) -> HTMLResponse:
        return error_page(request, error.status, error.code, error.message, error.headers, error.wait_s)
