"""/docs works with no network: Swagger UI's files come from the API itself (api/docs_assets.py), never a CDN."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from web_screens import Screen

from api import docs_assets

URL_IN_ATTRIBUTE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


def test_swagger_ui_renders_the_api_with_no_request_leaving_the_machine(web_api: str, screen: Screen) -> None:
    screen.page.goto(f"{web_api}/docs")
    sites = screen.page.locator("#operations-sites_and_kits-list_sites_v1_sites_get")
    sites.wait_for(state="visible", timeout=15_000)
    assert sites.locator(".opblock-summary-method").inner_text() == "GET"
    assert sites.locator(".opblock-summary-path").get_attribute("data-path") == "/v1/sites"
    assert screen.page.locator(".info h1.title").inner_text().startswith("Lauks API")
    screen.screenshot("docs")
    screen.screenshot("docs-first-screen", full_page=False)
    assert screen.left_machine == []
    assert any(url.startswith(f"{web_api}/docs/assets/swagger-ui-bundle.js?v=") for url in screen.requested)
    assert f"{web_api}/openapi.json" in screen.requested


def test_the_docs_page_references_nothing_outside_the_api(web_api: str) -> None:
    page = httpx.get(f"{web_api}/docs")
    assert page.status_code == 200
    referenced = URL_IN_ATTRIBUTE.findall(page.text)
    assert len(referenced) == 4  # the bundle, the stylesheet, the icon, and our start-up script
    assert "<script>" not in page.text  # no inline script: the Content-Security-Policy would refuse it
    assert all(url.startswith(("/docs/assets/", "/static/docs.js?v=")) for url in referenced), referenced
    assert not re.search(r"https?://|//[a-z]", page.text, re.IGNORECASE), "an absolute URL in /docs"
    for url in referenced:
        asset = httpx.get(f"{web_api}{url}")
        assert asset.status_code == 200 and asset.content
        name = url.split("/")[-1].split("?")[0]
        assert asset.headers["content-type"] == docs_assets.FILES.get(name, "text/javascript; charset=utf-8")
        assert "immutable" in asset.headers["cache-control"]


def test_only_the_listed_docs_files_are_served(web_api: str) -> None:
    assert httpx.get(f"{web_api}/docs/assets/package.json").status_code == 404
    assert httpx.get(f"{web_api}/docs/assets/..%2F..%2Fpackage.json").status_code == 404


def test_docs_without_the_installed_files_say_how_to_install_them(tmp_path: Path) -> None:
    app = FastAPI(title="Lauks API", docs_url=None, redoc_url=None)
    docs_assets.install(app, candidates=[tmp_path / "swagger-ui-dist"])
    with TestClient(app) as client:
        page = client.get("/docs")
        assert page.status_code == 503
        assert "make node-deps" in page.text and "/openapi.json" in page.text
        assert str(tmp_path / "swagger-ui-dist") in page.text
        assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 404


def test_docs_use_the_first_folder_that_holds_every_file(tmp_path: Path) -> None:
    partial, full = tmp_path / "partial", tmp_path / "full"
    for folder, names in ((partial, ["swagger-ui.css"]), (full, list(docs_assets.FILES))):
        folder.mkdir()
        for name in names:
            (folder / name).write_text(name)
    (full / "package.json").write_text('{"version": "9.9.9"}')
    found = docs_assets.find_assets([partial, full])
    assert found is not None and found.folder == full
    assert found.url("swagger-ui.css") == "/docs/assets/swagger-ui.css?v=9.9.9"


def test_a_checkout_looks_for_the_files_where_make_installs_them() -> None:
    checkout = Path(docs_assets.__file__).resolve().parents[1]
    assert docs_assets.candidate_dirs()[0] == checkout / "web" / "node_modules" / "swagger-ui-dist"
    assert docs_assets.find_assets(docs_assets.candidate_dirs()) is not None, "run make node-deps"
