"""File downloads, .metadata files and HTTP caching of index pages
(standards section E, conformance tests N33-N43)."""

from __future__ import annotations

import gzip
import hashlib
import re
import urllib.parse

import pytest

import support
from support import JSON_V1

SHARED = "/simple/shared-pkg/"
IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture(scope="module")
def idx(conformance_index):
    return conformance_index


@pytest.fixture(scope="module")
def srv(idx):
    return idx.server


def file_path(srv, project: str, filename: str) -> str:
    f = srv.file_named(project, filename)
    assert f, f"{filename} not listed for {project}"
    return urllib.parse.urlsplit(urllib.parse.urljoin(srv.url + "/", f["url"])).path


@pytest.fixture(scope="module")
def wheel(idx):
    return idx.dists["wheel"]


@pytest.fixture(scope="module")
def wheel_path(srv, wheel):
    return file_path(srv, "shared-pkg", wheel.filename)


def is_strong_etag(v: str | None) -> bool:
    return bool(v) and re.fullmatch(r'"[^"]+"', v) is not None


# --------------------------------------------------------------------------- files (E1-E4)


def test_n33_wheel_download_headers(srv, wheel, wheel_path):
    size = srv.file_named("shared-pkg", wheel.filename)["size"]
    r = srv.get(wheel_path, {"Accept-Encoding": "gzip, deflate, br"})
    assert r.status == 200, r
    assert r.body == wheel.data
    assert not r.has_header("Content-Encoding"), r
    assert int(r.header("Content-Length")) == size == len(wheel.data)
    assert is_strong_etag(r.header("ETag")), r
    assert r.header("Cache-Control") == IMMUTABLE
    assert r.header("Accept-Ranges") == "bytes"
    ctype = r.header("Content-Type") or ""
    assert ctype and not ctype.startswith("text/html"), r


def test_file_last_modified(srv, wheel_path):
    """E2: files carry Last-Modified (pip resumes with If-Range on it)."""
    r = srv.request("HEAD", wheel_path)
    assert r.status == 200 and r.header("Last-Modified"), r
    assert r.header("Last-Modified").endswith("GMT")


def test_n34_sdist_is_never_content_encoded(srv, idx):
    sdist = idx.dists["sdist"]
    path = file_path(srv, "shared-pkg", sdist.filename)
    for ae in ("gzip", "gzip, deflate", "identity", None):
        r = srv.get(path, {"Accept-Encoding": ae} if ae else {})
        assert r.status == 200, r
        assert not r.has_header("Content-Encoding"), r
        assert r.body == sdist.data
        assert int(r.header("Content-Length")) == len(sdist.data)


def test_n35_ranges(srv, wheel, wheel_path):
    n = len(wheel.data)
    r = srv.get(wheel_path, {"Range": "bytes=0-99"})
    assert r.status == 206, r
    assert r.header("Content-Range") == f"bytes 0-99/{n}"
    assert r.body == wheel.data[:100]
    assert int(r.header("Content-Length")) == 100

    r = srv.get(wheel_path, {"Range": "bytes=-100"})
    assert r.status == 206, r
    assert r.body == wheel.data[-100:]
    assert r.header("Content-Range") == f"bytes {n - 100}-{n - 1}/{n}"

    r = srv.get(wheel_path, {"Range": "bytes=100-"})
    assert r.status == 206, r
    assert r.body == wheel.data[100:]
    assert r.header("Content-Range") == f"bytes 100-{n - 1}/{n}"

    r = srv.get(wheel_path, {"Range": f"bytes=10-{n + 500}"})  # end past EOF is clamped
    assert r.status == 206, r
    assert r.body == wheel.data[10:]


def test_n36_unsatisfiable_range(srv, wheel, wheel_path):
    n = len(wheel.data)
    r = srv.get(wheel_path, {"Range": f"bytes={n}-"})
    assert r.status == 416, r
    assert r.header("Content-Range") == f"bytes */{n}"


def test_n37_if_range(srv, wheel, wheel_path):
    etag = srv.request("HEAD", wheel_path).header("ETag")
    r = srv.get(wheel_path, {"Range": "bytes=0-99", "If-Range": '"wrong"'})
    assert r.status == 200, r
    assert r.body == wheel.data
    r = srv.get(wheel_path, {"Range": "bytes=0-99", "If-Range": etag})
    assert r.status == 206, r
    assert r.body == wheel.data[:100]
    last_modified = srv.request("HEAD", wheel_path).header("Last-Modified")
    if last_modified:  # pip resumes with If-Range: <Last-Modified> when there is no ETag
        r = srv.get(wheel_path, {"Range": "bytes=0-99", "If-Range": last_modified})
        assert r.status == 206, r
        r = srv.get(wheel_path, {"Range": "bytes=0-99", "If-Range": "Mon, 01 Jan 2001 00:00:00 GMT"})
        assert r.status == 200 and r.body == wheel.data, r


def test_n38_head_file(srv, wheel, wheel_path):
    g = srv.get(wheel_path)
    r = srv.request("HEAD", wheel_path)
    assert r.status == 200, r
    assert r.body == b""
    assert r.header("Accept-Ranges") == "bytes"
    assert int(r.header("Content-Length")) == len(wheel.data)
    for h in ("ETag", "Content-Type", "Cache-Control"):
        assert r.header(h) == g.header(h), h


def test_n39_metadata_files(srv, idx, wheel, wheel_path):
    r = srv.get(wheel_path + ".metadata", {"Accept-Encoding": "gzip"})
    assert r.status == 200, r
    assert r.body == wheel.metadata
    assert not r.has_header("Content-Encoding"), r
    assert r.header("Cache-Control") == IMMUTABLE
    assert is_strong_etag(r.header("ETag")), r
    h = srv.request("HEAD", wheel_path + ".metadata")
    assert h.status == 200 and h.body == b"" and int(h.header("Content-Length")) == len(wheel.metadata), h

    sdist = idx.dists["sdist"]
    r = srv.get(file_path(srv, "shared-pkg", sdist.filename) + ".metadata")
    assert r.status == 200, r
    assert r.body == sdist.metadata

    for key, project in (("old_sdist", "old-sdist"), ("dyn_sdist", "dyn-sdist")):
        r = srv.get(file_path(srv, project, idx.dists[key].filename) + ".metadata")
        assert r.status == 404, (key, r)


def test_n40_local_version_path_encodings(srv, idx):
    local = idx.dists["local"]
    listed = file_path(srv, "other-pkg", local.filename)
    prefix = listed.rsplit("/", 1)[0]
    for last in ("other_pkg-1.0%2Bcu1-py3-none-any.whl", "other_pkg-1.0%2bcu1-py3-none-any.whl", "other_pkg-1.0+cu1-py3-none-any.whl"):
        r = srv.get(f"{prefix}/{last}")
        assert r.status == 200, (last, r)
        assert r.body == local.data
    r = srv.get(f"{prefix}/other_pkg-1.0%2Bcu1-py3-none-any.whl.metadata")
    assert r.status == 200 and r.body == local.metadata, r
    # a space is not a plus
    assert srv.get(f"{prefix}/other_pkg-1.0%20cu1-py3-none-any.whl").status == 404


def test_unknown_files_are_404(srv, wheel, wheel_path):
    prefix, name = wheel_path.rsplit("/", 1)
    assert srv.get(f"{prefix}/other-name.whl").status == 404
    assert srv.get("/files/" + "0" * 64 + "/" + name).status == 404
    assert srv.get("/files/../../etc/passwd").status in (400, 404)
    assert srv.get("/files/%2e%2e/%2e%2e/etc/passwd").status in (400, 404)


# --------------------------------------------------------------------------- index caching (E7, E8, N41-N43)


@pytest.mark.parametrize("accept", [JSON_V1, "text/html"])
@pytest.mark.parametrize("path", [SHARED, "/simple/"])
def test_n41_conditional_get(srv, idx, accept, path):
    r = srv.get(path, {"Accept": accept, "Accept-Encoding": "identity"})
    assert r.status == 200, r
    etag = r.header("ETag")
    assert is_strong_etag(etag), r
    assert r.header("Cache-Control") in ("max-age=0, must-revalidate", "no-cache"), r
    nm = srv.get(path, {"Accept": accept, "If-None-Match": etag, "Accept-Encoding": "identity"})
    assert nm.status == 304, nm
    assert nm.body == b""
    assert nm.header("ETag") == etag
    assert "accept" in nm.header_tokens("Vary"), nm
    assert nm.header("Cache-Control") == r.header("Cache-Control")
    # any of several tags, and *
    assert srv.get(path, {"Accept": accept, "If-None-Match": f'"nope", {etag}'}).status == 304
    assert srv.get(path, {"Accept": accept, "If-None-Match": '"nope"'}).status == 200


def test_etags_differ_between_formats(srv, idx):
    j = srv.get(SHARED, {"Accept": JSON_V1}).header("ETag")
    h = srv.get(SHARED, {"Accept": "text/html"}).header("ETag")
    assert j and h and j != h
    # an HTML ETag must not validate the JSON representation
    assert srv.get(SHARED, {"Accept": JSON_V1, "If-None-Match": h}).status == 200


def test_n42_new_upload_changes_etag_and_pip_sees_it_at_once(srv, idx, upload, dists, clients):
    project = "fresh-pkg"
    r = upload(srv, support.make_wheel(dists, project, "0.1.2"))
    assert r.status_code == 200, r.text
    before = srv.get(f"/simple/{project}/", {"Accept": JSON_V1})
    etag = before.header("ETag")
    # warm pip's HTTP cache
    proc = support.check(clients.pip_index_versions(project, srv.simple_url))
    assert "Available versions: 0.1.2" in proc.stdout, support.describe(proc)

    r = upload(srv, support.make_wheel(dists, project, "0.1.3"))
    assert r.status_code == 200, r.text
    after = srv.get(f"/simple/{project}/", {"Accept": JSON_V1, "If-None-Match": etag})
    assert after.status == 200, after
    assert after.header("ETag") != etag
    assert after.header("Cache-Control") in ("max-age=0, must-revalidate", "no-cache")
    proc = support.check(clients.pip_index_versions(project, srv.simple_url))
    assert "Available versions: 0.1.3, 0.1.2" in proc.stdout, support.describe(proc)


@pytest.mark.parametrize("accept", [JSON_V1, "text/html"])
def test_n43_gzip_index_pages(srv, idx, accept):
    ident = srv.get(SHARED, {"Accept": accept, "Accept-Encoding": "identity"})
    gz = srv.get(SHARED, {"Accept": accept, "Accept-Encoding": "gzip, deflate"})
    assert ident.status == 200 and gz.status == 200, (ident, gz)
    assert not ident.has_header("Content-Encoding")
    assert gz.header("Content-Encoding") == "gzip", gz
    assert {"accept", "accept-encoding"} <= gz.header_tokens("Vary"), gz
    assert gzip.decompress(gz.body) == ident.body
    assert gz.header("ETag") != ident.header("ETag")
    assert is_strong_etag(gz.header("ETag"))
    nm = srv.get(SHARED, {"Accept": accept, "Accept-Encoding": "gzip", "If-None-Match": gz.header("ETag")})
    assert nm.status == 304, nm
    assert nm.header("ETag") == gz.header("ETag")


def test_ranges_on_metadata_file_and_checksum(srv, wheel, wheel_path):
    r = srv.get(wheel_path + ".metadata", {"Range": "bytes=0-9"})
    assert r.status == 206, r
    assert r.body == wheel.metadata[:10]
    full = srv.get(wheel_path + ".metadata").body
    advertised = srv.file_named("shared-pkg", wheel.filename)["core-metadata"]["sha256"]
    assert hashlib.sha256(full).hexdigest() == advertised
