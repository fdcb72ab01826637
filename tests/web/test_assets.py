"""Issue #16, mobile first: pages and static files are served compressed, static files
are fingerprinted and cached for a year, and a changed file gets a new URL."""

import re

import pytest

pytestmark = pytest.mark.rollback


def _asset_urls(html):
    return re.findall(r'(?:src|href)="(/static/[^"]+)"', html)


def test_static_urls_carry_a_content_hash_and_are_cached_for_a_year(client):
    html = client.get("/auth/login").get_data(as_text=True)
    urls = _asset_urls(html)
    assert any("htmx.min.js?v=" in u for u in urls) and any("portal.css?v=" in u for u in urls)
    for url in urls:
        answer = client.get(url.replace("&amp;", "&"))
        assert answer.status_code == 200
        assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        answer.close()
    stale = client.get("/static/css/portal.css?v=000000000000")
    assert stale.headers["Cache-Control"] == "no-cache"
    stale.close()


def test_a_changed_file_gets_a_new_url(app, tmp_path):
    from portal.web.assets import Fingerprints

    (tmp_path / "a.css").write_text("body{}")
    prints = Fingerprints(tmp_path)
    first = prints.of("a.css")
    (tmp_path / "a.css").write_text("body{color:red}")
    assert prints.of("a.css") != first
    assert prints.of("../etc/passwd") is None and prints.of("missing.css") is None


def test_a_name_is_resolved_once_and_its_file_still_checked(tmp_path, monkeypatch):
    import os

    from portal.web.assets import Fingerprints

    (tmp_path / "a.css").write_text("body{}")
    prints = Fingerprints(tmp_path)
    resolved = []
    realpath = os.path.realpath
    monkeypatch.setattr(os.path, "realpath", lambda p: resolved.append(p) or realpath(p))
    first = [prints.of("a.css") for _ in range(3)]
    assert len(resolved) == 1 and len(set(first)) == 1  # once per name, not per URL
    (tmp_path / "a.css").write_text("body{color:red}")
    assert prints.of("a.css") != first[0]  # an edited file still gets a new hash
    (tmp_path / "a.css").unlink()
    assert prints.of("a.css") is None and prints.of("../etc/passwd") is None


@pytest.mark.parametrize("encoding", ["br", "gzip"])
def test_pages_and_htmx_are_compressed(client, encoding):
    page = client.get("/auth/login", headers={"Accept-Encoding": encoding})
    assert page.headers["Content-Encoding"] == encoding
    assert "Accept-Encoding" in page.headers["Vary"] and "HX-Request" in page.headers["Vary"]
    html = client.get("/auth/login").get_data(as_text=True)
    htmx = next(u for u in _asset_urls(html) if "htmx" in u)
    # Static files are sent as a stream: brotli (or zstd), never gzip, for those.
    script = client.get(htmx, headers={"Accept-Encoding": "br, gzip"})
    assert script.headers["Content-Encoding"] == "br"
    assert len(script.get_data()) < 20_000  # 52 KB of minified htmx
    script.close()


def test_signed_in_pages_stay_out_of_caches(client, make_user, login):
    login(make_user("patient"))
    page = client.get("/me/", headers={"Accept-Encoding": "br"})
    assert page.status_code == 200 and page.headers["Content-Encoding"] == "br"
    assert page.headers["Cache-Control"] == "no-store"
