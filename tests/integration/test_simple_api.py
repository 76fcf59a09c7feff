"""Simple repository API: routing, content negotiation, HTML and JSON content
(standards sections A-D, conformance tests N1-N32) and a PEP 691 client library."""

from __future__ import annotations

import datetime
import hashlib
import re
import urllib.parse

import pytest

import support
from support import HTML_V1, JSON_V1

SHARED = "/simple/shared-pkg/"
HTML_CT = "text/html; charset=utf-8"
HTML_V1_CT = f"{HTML_V1}; charset=utf-8"


@pytest.fixture(scope="module")
def idx(conformance_index):
    return conformance_index


@pytest.fixture(scope="module")
def srv(idx):
    return idx.server


def ctype_base(r) -> str:
    return (r.header("Content-Type") or "").split(";")[0].strip()


def resolved_location(srv, r) -> str:
    loc = r.header("Location")
    assert loc, r
    return urllib.parse.urljoin(srv.url + "/", loc)


# --------------------------------------------------------------------------- routing (A, N1-N8)


def test_n01_root_without_accept_is_html(srv, idx):
    r = srv.get("/simple/")
    assert r.status == 200, r
    assert r.header("Content-Type") == HTML_CT
    assert '<a href="/simple/shared-pkg/">' in r.text
    assert "pypi:repository-version" in r.text
    page = support.parse_html(r.text)
    hrefs = [a.href for a in page.anchors]
    for name in ("shared-pkg", "other-pkg", "old-sdist", "dyn-sdist"):
        assert hrefs.count(f"/simple/{name}/") == 1, hrefs  # A10: every project exactly once
    assert r.text.lstrip().lower().startswith("<!doctype html>")


def test_n02_root_json(srv, idx):
    r = srv.get("/simple/", {"Accept": JSON_V1})
    assert r.status == 200, r
    assert r.header("Content-Type") == JSON_V1
    body = r.json()
    assert body["meta"]["api-version"] == "1.4"
    names = [support.normalize(p["name"]) for p in body["projects"]]
    assert sorted(names) == sorted(["shared-pkg", "other-pkg", "old-sdist", "dyn-sdist"])


@pytest.mark.parametrize("path", ["/simple/shared-pkg", "/simple"])
def test_n03_missing_slash_redirects(srv, idx, path):
    for method in ("GET", "HEAD"):
        r = srv.request(method, path)
        assert r.status == 301, (method, r)
        assert resolved_location(srv, r) == srv.url + path + "/"


@pytest.mark.parametrize("path", ["/simple/Shared_Pkg/", "/simple/SHARED.pkg", "/simple/shared__pkg/", "/simple/Shared-Pkg"])
def test_n04_non_normalized_name_redirects_in_one_hop(srv, idx, path):
    r = srv.get(path)
    assert r.status == 301, r
    assert resolved_location(srv, r) == srv.url + SHARED


def test_n05_redirects_keep_query_string(srv, idx):
    q = "format=application/vnd.pypi.simple.v1%2Bjson"
    r = srv.get(f"/simple/Shared_Pkg/?{q}")
    assert r.status == 301, r
    assert resolved_location(srv, r) == f"{srv.url}{SHARED}?{q}"
    r = srv.get(f"/simple/shared-pkg?{q}")
    assert r.status == 301, r
    assert resolved_location(srv, r) == f"{srv.url}{SHARED}?{q}"


@pytest.mark.parametrize("accept", [JSON_V1, "text/html", None, support.PIP_ACCEPT, "application/json"])
def test_n06_unknown_project_is_404(srv, idx, accept):
    headers = {"Accept": accept} if accept else {}
    assert srv.get("/simple/nope/", headers).status == 404
    assert srv.get("/simple/no-such-project-at-all/", headers).status == 404


def test_head_on_redirects_and_404(srv, idx):
    r = srv.request("HEAD", "/simple/nope/", {"Accept": JSON_V1})
    assert r.status == 404 and r.body == b"", r
    r = srv.request("HEAD", "/simple/Shared_Pkg/")
    assert r.status == 301 and r.body == b"", r
    assert resolved_location(srv, r) == srv.url + SHARED


@pytest.mark.parametrize("path", ["/simple/-bad-/", "/simple/bad%20name/", "/simple/a%2Fb/", "/simple/%C3%A9t%C3%A9/"])
def test_invalid_project_segment_is_404(srv, idx, path):
    r = srv.get(path, {"Accept": JSON_V1})
    assert r.status == 404, r


@pytest.mark.parametrize("accept", [JSON_V1, "text/html"])
@pytest.mark.parametrize("path", [SHARED, "/simple/"])
def test_n07_head_matches_get(srv, idx, accept, path):
    h = {"Accept": accept}
    g = srv.get(path, h)
    r = srv.request("HEAD", path, h)
    assert g.status == 200 and r.status == 200, (g, r)
    assert r.body == b""
    for name in ("Content-Type", "ETag", "Content-Length", "Cache-Control", "Vary"):
        assert r.header(name) == g.header(name), name
    assert int(g.header("Content-Length")) == len(g.body)


@pytest.mark.parametrize("path", [SHARED, "/simple/"])
@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_n08_post_to_simple_is_405(srv, idx, path, method):
    r = srv.request(method, path, {"Content-Type": "text/plain"}, b"x")
    assert r.status == 405, r
    allow = r.header_tokens("Allow")
    assert {"get", "head"} <= allow and "post" not in allow and "put" not in allow, r


# --------------------------------------------------------------------------- negotiation (B, N9-N20)


@pytest.mark.parametrize(
    "accept,expected",
    [
        pytest.param(support.PIP_ACCEPT, JSON_V1, id="n09-pip"),
        pytest.param(support.UV_ACCEPT, JSON_V1, id="n10-uv"),
        pytest.param(support.POETRY_ACCEPT, JSON_V1, id="n11-poetry"),
        pytest.param("*/*", HTML_CT, id="n12-any"),
        pytest.param(support.BROWSER_ACCEPT, HTML_CT, id="n13-browser"),
        pytest.param("text/html", HTML_CT, id="n14-text-html"),
        pytest.param(HTML_V1, HTML_V1_CT, id="n15-v1-html"),
        pytest.param(f"text/html;q=0.5, {JSON_V1};q=0.9", JSON_V1, id="n16-q"),
        pytest.param(f"{JSON_V1};q=0, text/html", HTML_CT, id="n17-q0"),
        pytest.param("application/vnd.pypi.simple.latest+json", JSON_V1, id="n19-latest-json"),
        pytest.param("application/vnd.pypi.simple.latest+html", HTML_V1_CT, id="n19-latest-html"),
        pytest.param("APPLICATION/VND.PYPI.SIMPLE.V1+JSON", JSON_V1, id="case-insensitive"),
        pytest.param(f"{JSON_V1} ; q=0.2 , text/html ; q=0.1", JSON_V1, id="ows-around-params"),
        pytest.param(f"garbage;;q=x, {JSON_V1}", JSON_V1, id="malformed-member-ignored"),
        pytest.param(None, HTML_CT, id="no-accept"),
    ],
)
@pytest.mark.parametrize("path", [SHARED, "/simple/"])
def test_negotiation(srv, idx, accept, expected, path):
    r = srv.get(path, {"Accept": accept} if accept else {})
    assert r.status == 200, r
    assert r.header("Content-Type") == expected, r
    assert "accept" in r.header_tokens("Vary"), r
    if expected == JSON_V1:
        assert r.json()["meta"]["api-version"]
    else:
        assert "<html" in r.text.lower()


@pytest.mark.parametrize("accept", ["application/json", "text/plain", f"{JSON_V1};q=0, text/html;q=0"])
@pytest.mark.parametrize("path", [SHARED, "/simple/"])
def test_n18_nothing_acceptable_is_406(srv, idx, accept, path):
    r = srv.get(path, {"Accept": accept})
    assert r.status == 406, r
    assert "accept" in r.header_tokens("Vary"), r
    assert ctype_base(r) == "text/plain", r
    for t in (JSON_V1, HTML_V1, "text/html"):
        assert t in r.text, r


def test_n20_format_query_parameter(srv, idx):
    r = srv.get(f"{SHARED}?format=application/vnd.pypi.simple.v1%2Bjson", {"Accept": "text/html"})
    assert r.status in (200, 406), r
    if r.header("Content-Type") != JSON_V1:
        pytest.skip("?format= (B7, optional) is not implemented")
    literal_plus = srv.get(f"{SHARED}?format=application/vnd.pypi.simple.v1+json", {"Accept": "text/html"})
    assert literal_plus.status == 200 and literal_plus.header("Content-Type") == JSON_V1, literal_plus
    bogus = srv.get(f"{SHARED}?format=bogus", {"Accept": "text/html"})
    assert bogus.status == 406, bogus


def test_negotiation_does_not_apply_to_files(srv, idx):
    wheel = idx.dists["wheel"]
    f = srv.file_named("shared-pkg", wheel.filename)
    for accept in (JSON_V1, "text/html", "application/json"):
        r = srv.get(urllib.parse.urlsplit(urllib.parse.urljoin(srv.url, f["url"])).path, {"Accept": accept})
        assert r.status == 200, (accept, r)
        assert r.body == wheel.data
        assert not ctype_base(r).startswith("text/html")


# --------------------------------------------------------------------------- HTML (C, N21-N26)


@pytest.fixture(scope="module")
def shared_html(srv, idx):
    r = srv.get(SHARED, {"Accept": "text/html"})
    assert r.status == 200, r
    return r.text


@pytest.fixture(scope="module")
def shared_anchors(shared_html):
    return {a.filename: a for a in support.parse_html(shared_html).anchors}


def test_project_page_html_shape(shared_html, shared_anchors, idx):
    assert shared_html.lstrip().lower().startswith("<!doctype html>")
    page = support.parse_html(shared_html)
    metas = {m.get("name"): m.get("content") for m in page.metas}
    assert metas.get("pypi:repository-version") == "1.4"
    assert "<title>" in shared_html.lower() and "<body" in shared_html.lower()
    expected = {idx.dists[k].filename for k in ("sdist", "wheel", "yanked", "yanked_noreason")}
    assert set(shared_anchors) == expected
    assert len(page.anchors) == len(expected)


def test_n21_anchor_text_is_filename(shared_anchors):
    for fn, a in shared_anchors.items():
        assert a.text == fn, a.raw


def test_n22_href_fragment_is_sha256_of_the_bytes(srv, shared_anchors, idx):
    by_name = {d.filename: d for d in idx.dists.values()}
    for fn, a in shared_anchors.items():
        m = re.fullmatch(r"sha256=([0-9a-f]{64})", a.fragment)
        assert m, a.raw
        body = srv.download(a.url)
        assert hashlib.sha256(body).hexdigest() == m.group(1)
        assert body == by_name[fn].data
        assert a.url.startswith("/files/") or a.url.startswith(srv.url + "/files/"), a.raw


def test_n23_requires_python_attribute(shared_anchors, idx):
    wheel = shared_anchors[idx.dists["wheel"].filename]
    assert 'data-requires-python="&gt;=3.8"' in wheel.raw
    assert wheel.attrs["data-requires-python"] == ">=3.8"
    for key in ("yanked", "yanked_noreason"):
        a = shared_anchors[idx.dists[key].filename]
        assert "data-requires-python" not in a.attrs, a.raw


def test_n24_yanked_attributes(srv, shared_anchors, shared_html, idx):
    from pip._internal.index.collector import IndexContent, parse_links

    reason = shared_anchors[idx.dists["yanked"].filename]
    assert 'data-yanked="bad &lt;build&gt; &amp; &quot;x&quot;"' in reason.raw
    noreason = shared_anchors[idx.dists["yanked_noreason"].filename]
    assert 'data-yanked=""' in noreason.raw
    for key in ("wheel", "sdist"):
        assert "data-yanked" not in shared_anchors[idx.dists[key].filename].attrs

    links = {
        l.filename: l
        for l in parse_links(IndexContent(shared_html.encode(), "text/html", "utf-8", srv.url + SHARED))
    }
    assert links[idx.dists["yanked"].filename].is_yanked
    assert links[idx.dists["yanked"].filename].yanked_reason == 'bad <build> & "x"'
    assert links[idx.dists["yanked_noreason"].filename].is_yanked
    assert not links[idx.dists["wheel"].filename].is_yanked


def test_n25_core_metadata_attributes(srv, shared_anchors, idx):
    for key in ("wheel", "yanked", "yanked_noreason", "sdist"):
        dist = idx.dists[key]
        a = shared_anchors[dist.filename]
        cm = a.attrs.get("data-core-metadata")
        assert cm and cm == a.attrs.get("data-dist-info-metadata"), a.raw
        body = srv.download(a.url + ".metadata")
        assert body == dist.metadata
        assert cm == "sha256=" + hashlib.sha256(body).hexdigest()


def test_sdists_without_static_metadata_have_no_metadata_attribute(srv, idx):
    for key, project in (("old_sdist", "old-sdist"), ("dyn_sdist", "dyn-sdist")):
        anchors = support.parse_html(srv.project_html(project)).anchors
        assert [a.filename for a in anchors] == [idx.dists[key].filename]
        assert "data-core-metadata" not in anchors[0].attrs, anchors[0].raw
        assert "data-dist-info-metadata" not in anchors[0].attrs, anchors[0].raw


def test_n26_no_dangerous_html(srv, idx):
    for path in ("/simple/", SHARED, "/simple/other-pkg/", "/simple/old-sdist/"):
        text = srv.get(path, {"Accept": "text/html"}).text
        assert 'data-core-metadata="false"' not in text
        assert 'data-dist-info-metadata="false"' not in text
        assert not re.search(r"data-yanked(?!=)", text), text
        for tag in re.findall(r"<a\s[^>]*>", text):
            for value in re.findall(r'=\s*"([^"]*)"', tag):
                assert "<" not in value and ">" not in value, tag
            unquoted = re.sub(r'"[^"]*"', '""', tag)
            assert not re.search(r"=\s*[^\"\s]", unquoted), f"unquoted attribute: {tag}"


def test_root_html_links_use_display_names(srv, idx):
    anchors = support.parse_html(srv.get("/simple/").text).anchors
    by_href = {a.href: a.text for a in anchors}
    assert support.normalize(by_href["/simple/shared-pkg/"]) == "shared-pkg"


# --------------------------------------------------------------------------- JSON (D, N27-N31)


@pytest.fixture(scope="module")
def shared_json(srv, idx):
    r = srv.get(SHARED, {"Accept": JSON_V1})
    assert r.status == 200, r
    assert r.header("Content-Type") == JSON_V1
    return r.json()


def test_n27_json_project_shape(srv, shared_json, idx):
    assert shared_json["name"] == "shared-pkg"
    files = shared_json["files"]
    versions = {"0.1.0", "0.1.1", "0.1.2"}
    assert set(shared_json["versions"]) == versions
    assert len(shared_json["versions"]) == len(versions)
    by_name = {d.filename: d for d in idx.dists.values()}
    assert {f["filename"] for f in files} == {idx.dists[k].filename for k in ("sdist", "wheel", "yanked", "yanked_noreason")}
    for f in files:
        dist = by_name[f["filename"]]
        assert "#" not in f["url"]
        assert f["hashes"] == {"sha256": dist.sha256} or f["hashes"]["sha256"] == dist.sha256
        assert isinstance(f["size"], int) and not isinstance(f["size"], bool)
        assert f["size"] == len(dist.data)
        assert srv.download(f["url"]) == dist.data
        assert f["url"].rsplit("/", 1)[-1] in (f["filename"], urllib.parse.quote(f["filename"]))


def test_n28_upload_time_format(shared_json):
    for f in shared_json["files"]:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z", f["upload-time"]), f


def test_upload_time_is_the_upload_moment(shared_json):
    now = datetime.datetime.now(datetime.timezone.utc)
    for f in shared_json["files"]:
        t = datetime.datetime.strptime(f["upload-time"].rstrip("Z").split(".")[0], "%Y-%m-%dT%H:%M:%S")
        t = t.replace(tzinfo=datetime.timezone.utc)
        assert abs((now - t).total_seconds()) < 600, f


def test_uv_exclude_newer_uses_upload_time(srv, idx, make_venv):
    """D8: `uv --exclude-newer` filters on upload-time."""
    past = make_venv()
    proc = past.uv_install("shared-pkg==0.1.0", "--exclude-newer", "2001-01-01T00:00:00Z", index_url=srv.simple_url)
    assert proc.returncode != 0, support.describe(proc)
    future = make_venv()
    support.check(future.uv_install("shared-pkg==0.1.0", "--exclude-newer", "2999-01-01T00:00:00Z", index_url=srv.simple_url))
    assert future.installed()["shared-pkg"] == "0.1.0"


def test_n29_yanked_values_and_no_nulls(shared_json, idx):
    files = {f["filename"]: f for f in shared_json["files"]}
    assert files[idx.dists["yanked"].filename]["yanked"] == 'bad <build> & "x"'
    assert files[idx.dists["yanked_noreason"].filename]["yanked"] is True
    for key in ("wheel", "sdist"):
        assert files[idx.dists[key].filename].get("yanked", False) is False
    for f in shared_json["files"]:
        for k in ("size", "upload-time", "yanked"):
            assert k in f and f[k] is not None, (k, f)


def test_n30_requires_python_and_core_metadata(srv, shared_json, idx):
    files = {f["filename"]: f for f in shared_json["files"]}
    assert files[idx.dists["wheel"].filename]["requires-python"] == ">=3.8"
    assert files[idx.dists["yanked"].filename].get("requires-python") is None
    for key in ("wheel", "yanked", "yanked_noreason", "sdist"):
        f = files[idx.dists[key].filename]
        body = srv.download(f["url"] + ".metadata")
        assert f["core-metadata"] == {"sha256": hashlib.sha256(body).hexdigest()}, f
    r = srv.get(SHARED, {"Accept": JSON_V1})
    assert b"dist-info-metadata" not in r.body
    for project in ("old-sdist", "dyn-sdist"):
        (f,) = srv.files(project)
        assert f.get("core-metadata") in (None, False), f


def test_n31_meta_and_project_status(shared_json):
    assert shared_json["meta"]["api-version"] == "1.4"
    status = shared_json.get("project-status")
    if status is not None:
        assert set(status) <= {"status", "reason"} and status["status"] == "active", status


def test_json_for_local_version_project(srv, idx):
    page = srv.project_json("other-pkg")
    assert page["name"] == "other-pkg"
    assert page["versions"] == ["1.0+cu1"]
    (f,) = page["files"]
    assert f["filename"] == "other_pkg-1.0+cu1-py3-none-any.whl"
    assert srv.download(f["url"]) == idx.dists["local"].data


def test_html_and_json_agree(srv, shared_json, shared_anchors):
    for f in shared_json["files"]:
        a = shared_anchors[f["filename"]]
        assert a.fragment == "sha256=" + f["hashes"]["sha256"]
        assert urllib.parse.urljoin(srv.url, a.url) == urllib.parse.urljoin(srv.url, f["url"])


# --------------------------------------------------------------------------- clients read both forms (N32)


def test_n32_pip_parse_links_reads_html_and_json(srv, idx):
    from pip._internal.index.collector import IndexContent, parse_links

    results = {}
    for accept in (JSON_V1, "text/html"):
        r = srv.get(SHARED, {"Accept": accept})
        page = IndexContent(r.body, r.header("Content-Type"), "utf-8", srv.url + SHARED)
        results[accept] = {
            l.filename: (l.hash_name, l.hash, l.requires_python, l.is_yanked, bool(l.metadata_link()))
            for l in parse_links(page)
        }
    assert results[JSON_V1] == results["text/html"]
    wheel = results[JSON_V1][idx.dists["wheel"].filename]
    assert wheel == ("sha256", idx.dists["wheel"].sha256, ">=3.8", False, True)


def test_n32_uv_installs_from_the_index(srv, idx, make_venv):
    venv = make_venv()
    support.check(venv.uv_install("shared-pkg==0.1.0", index_url=srv.simple_url))
    assert venv.installed()["shared-pkg"] == "0.1.0"


def test_n32_pip_installs_from_the_index_using_metadata_files(srv, idx, make_venv):
    venv = make_venv()
    proc = support.check(venv.pip_install("shared-pkg", "other-pkg==1.0+cu1", index_url=srv.simple_url))
    installed = venv.installed()
    # 0.1.1 and 0.1.2 are yanked: pip must pick 0.1.0
    assert installed["shared-pkg"] == "0.1.0", support.describe(proc)
    assert installed["other-pkg"] == "1.0+cu1"


# --------------------------------------------------------------------------- PEP 691 client library


@pytest.mark.parametrize("accept_kind", ["json", "html"])
def test_pypi_simple_client_reads_project_page(srv, idx, tmp_path, accept_kind):
    import pypi_simple

    accept = pypi_simple.ACCEPT_JSON_ONLY if accept_kind == "json" else pypi_simple.ACCEPT_HTML_ONLY
    with pypi_simple.PyPISimple(endpoint=srv.simple_url, accept=accept) as client:
        index = client.get_index_page()
        assert {support.normalize(p) for p in index.projects} >= {"shared-pkg", "other-pkg"}
        page = client.get_project_page("Shared_Pkg")
        assert page.repository_version == "1.4"
        pkgs = {p.filename: p for p in page.packages}
        wheel = pkgs[idx.dists["wheel"].filename]
        assert wheel.version == "0.1.0" and wheel.package_type == "wheel"
        assert wheel.requires_python == ">=3.8"
        assert wheel.digests["sha256"] == idx.dists["wheel"].sha256
        assert wheel.has_metadata and not wheel.is_yanked
        yanked = pkgs[idx.dists["yanked"].filename]
        assert yanked.is_yanked and yanked.yanked_reason == 'bad <build> & "x"'
        assert pkgs[idx.dists["sdist"].filename].package_type == "sdist"
        if accept_kind == "json":
            assert set(page.versions or []) == {"0.1.0", "0.1.1", "0.1.2"}
            assert wheel.size == len(idx.dists["wheel"].data)
            assert wheel.upload_time is not None
        # downloads and metadata are verified against the advertised digests
        client.download_package(wheel, tmp_path / wheel.filename, verify=True)
        assert (tmp_path / wheel.filename).read_bytes() == idx.dists["wheel"].data
        assert client.get_package_metadata_bytes(wheel, verify=True) == idx.dists["wheel"].metadata
        with pytest.raises(pypi_simple.NoSuchProjectError):
            client.get_project_page("does-not-exist")
