"""Defences found in review: cross-site writes from browsers, oversized forms, file modes."""

from __future__ import annotations

import stat

import requests

import support


def test_cross_site_upload_from_a_browser_is_refused(server, upload, dists):
    """A page on another site must not make a browser publish to an index on loopback."""
    dist = support.make_wheel(dists, "csrf-victim", "1.0")
    fields = support.upload_fields(dist)
    body, ctype = support.encode_multipart(fields, [("content", dist.filename, dist.data, None)])
    for extra in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        r = requests.post(server.upload_url, data=body, headers={"Content-Type": ctype, **extra}, timeout=30)
        assert r.status_code == 403, (extra, r.status_code, r.text)
        assert "Cross-site request refused" in r.text
    assert server.project_json("csrf-victim") is None, "nothing may be stored"
    # The same upload from a tool (no Origin) or from the index's own origin is accepted.
    same_origin = {"Content-Type": ctype, "Origin": server.url}
    assert requests.post(server.upload_url, data=body, headers=same_origin, timeout=30).status_code == 200
    assert [f["filename"] for f in server.files("csrf-victim")] == [dist.filename]


def test_cross_site_admin_api_call_is_refused(server, upload, dists):
    dist = support.make_wheel(dists, "csrf-yank", "1.0")
    assert upload(server, dist).status_code == 200
    url = server.url + "/api/v1/projects/csrf-yank/releases/1.0/yank"
    r = requests.post(url, headers={"Origin": "https://evil.example"}, timeout=30)
    assert r.status_code == 403, r.text
    assert server.files("csrf-yank")[0]["yanked"] is False


def test_a_form_with_too_many_fields_is_refused_before_the_file(server, upload, dists):
    dist = support.make_wheel(dists, "many-fields", "1.0")
    fields = support.upload_fields(dist) + [("classifiers", "Private :: Do Not Upload")] * 2000
    r = upload(server, dist, fields=fields)
    assert r.status_code == 400, r.text
    assert "too large" in r.text
    assert server.project_json("many-fields") is None


def test_a_form_with_too_much_text_is_refused(server, upload, dists):
    dist = support.make_wheel(dists, "much-text", "1.0")
    chunk = "x" * (3 * 1024 * 1024)
    fields = support.upload_fields(dist) + [("description", chunk), ("summary", chunk), ("license", chunk)]
    r = upload(server, dist, fields=fields)
    assert r.status_code == 400, r.text
    assert server.project_json("much-text") is None


def test_catalog_files_are_private_to_the_server_user(server, upload, dists):
    """The catalog holds password and token hashes: mode 0600, WAL and shared-memory files too."""
    assert upload(server, support.make_wheel(dists, "modes", "1.0")).status_code == 200
    catalog = server.data / "catalog.sqlite3"
    found = [p for p in (catalog, catalog.with_name("catalog.sqlite3-wal"), catalog.with_name("catalog.sqlite3-shm")) if p.exists()]
    assert catalog in found
    for path in found:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == 0o600, (path.name, oct(mode))
