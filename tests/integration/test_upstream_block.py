"""Blocking upstream projects and releases, and the fetch log (issue 11, item 6).

A block hides an upstream release (or a whole upstream project) from pages in both formats
and from downloads at once, also when the page is cached and when the block is made by the
CLI beside the running server.  The fetch log answers "did any build pull it, and when?".
The upstream is a static index served by the test suite on loopback (upstream_fixture.py)."""

from __future__ import annotations

import datetime
import json

import pytest

import auth_support as A
import support
from upstream_fixture import StaticIndex, wheel

OLD = datetime.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.timezone.utc)
ADMIN = A.basic("admin", A.ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    dists = tmp_path_factory.mktemp("block-dists")
    index = StaticIndex(json=True)
    for name, versions in {
        "blk-pkg": ["1.0", "1.1"],
        "cli-blk": ["1.0", "2.0"],
        "whole-pkg": ["1.0"],
        "log-pkg": ["1.0", "2.0"],
    }.items():
        for version in versions:
            index.add(wheel(dists, name, version), upload_time=OLD)
    index.start()
    yield index
    index.stop()


def proxy(server_factory, upstream):
    args = A.server_args("upload")
    return server_factory(extra_args=["--upstream", upstream.url, *args["extra_args"]], extra_env=args["extra_env"])


def install(venv, index_url, *reqs, tool="pip"):
    if tool == "pip":
        return venv.pip("install", "--no-cache-dir", "--index-url", index_url, *reqs)
    return venv.clients.uv("pip", "install", "--no-cache", "--python", str(venv.python), "--index-url", index_url, *reqs)


def filenames(srv, project):
    return sorted(f["filename"] for f in srv.files(project))


def test_a_blocked_release_is_hidden_everywhere_at_once_and_resolvers_take_an_older_one(server_factory, upstream, make_venv):
    srv = proxy(server_factory, upstream)
    new = "blk_pkg-1.1-py3-none-any.whl"
    # Cached in both formats before the block.
    assert new in filenames(srv, "blk-pkg")
    assert new in srv.project_html("blk-pkg")

    body = {"project": "Blk_Pkg", "version": "1.1.0", "reason": "hijacked maintainer account"}
    r = A.api(srv, "POST", "/api/v1/upstream/blocks", ADMIN, body)
    assert r.status == 201, r
    assert r.json()["project"] == "blk-pkg" and r.json()["version"] == "1.1.0"
    assert A.api(srv, "POST", "/api/v1/upstream/blocks", ADMIN, body).status == 200, "blocking again replaces the reason"

    page = srv.project_json("blk-pkg")
    assert [f["filename"] for f in page["files"]] == ["blk_pkg-1.0-py3-none-any.whl"]
    assert page["versions"] == ["1.0"]
    assert new not in srv.project_html("blk-pkg")
    for path in (f"/files/upstream/blk-pkg/{new}", f"/files/upstream/blk-pkg/{new}.metadata"):
        r = srv.get(path)
        assert r.status == 403, r
        assert "blocked" in r.text and "hijacked maintainer account" in r.text, r.text
    for tool in ("pip", "uv"):
        venv = make_venv()
        support.check(install(venv, srv.simple_url, "blk-pkg", tool=tool))
        assert venv.installed()["blk-pkg"] == "1.0"
        assert install(make_venv(), srv.simple_url, "blk-pkg==1.1", tool=tool).returncode != 0
    assert upstream.hit_count(upstream.file_path(new)) == 0

    listed = A.api(srv, "GET", "/api/v1/upstream/blocks", ADMIN).json()
    assert [(b["project"], b["version"], b["reason"]) for b in listed] == [("blk-pkg", "1.1.0", "hijacked maintainer account")]
    audit = [(row.action, row.subject) for row in A.audit(srv.data)]
    assert ("upstream.block", "blk-pkg==1.1.0") in audit

    # `1.1` names the release blocked as `1.1.0`.
    r = A.api(srv, "DELETE", "/api/v1/upstream/blocks/blk-pkg/1.1", ADMIN)
    assert r.status == 200, r
    assert new in filenames(srv, "blk-pkg")
    assert srv.project_json("blk-pkg")["versions"] == ["1.0", "1.1"]
    venv = make_venv()
    support.check(install(venv, srv.simple_url, "blk-pkg", tool="uv"))
    assert venv.installed()["blk-pkg"] == "1.1"
    assert A.api(srv, "DELETE", "/api/v1/upstream/blocks/blk-pkg/1.1", ADMIN).status == 404


def test_only_admins_block_over_the_api(server_factory, upstream):
    srv = proxy(server_factory, upstream)
    password = A.add_user(srv.data, "dev")
    body = {"project": "blk-pkg", "reason": "no"}
    r = A.api(srv, "POST", "/api/v1/upstream/blocks", A.basic("dev", password), body)
    assert r.status == 403 and "admin" in r.text, r
    A.assert_unauthorized(A.api(srv, "POST", "/api/v1/upstream/blocks", None, body))
    r = A.api(srv, "POST", "/api/v1/upstream/blocks", ADMIN, {"project": "blk-pkg", "reason": " "})
    assert r.status == 400, r
    r = A.api(srv, "POST", "/api/v1/upstream/blocks", ADMIN, {"project": "blk-pkg", "version": "x.y", "reason": "r"})
    assert r.status == 400 and "PEP 440" in r.text, r
    assert A.api(srv, "GET", "/api/v1/upstream/blocks", A.basic("dev", password)).status == 403
    assert len(filenames(srv, "blk-pkg")) == 2


def test_a_cli_block_holds_on_the_running_server_and_a_blocked_project_is_404(server_factory, upstream, make_venv):
    srv = proxy(server_factory, upstream)
    assert len(filenames(srv, "cli-blk")) == 2  # the page is now cached by the server
    out = srv.cli("upstream", "block", "cli-blk==2", "--reason", "bad release").stdout
    assert "blocked" in out
    srv.wait_for(lambda: filenames(srv, "cli-blk") == ["cli_blk-1.0-py3-none-any.whl"], what="the CLI block on the running server")
    assert "cli_blk-2.0" not in srv.project_html("cli-blk")
    assert srv.get("/files/upstream/cli-blk/cli_blk-2.0-py3-none-any.whl").status == 403

    # A whole project: 404 for its page (pip and uv find nothing), 403 for its files.
    assert filenames(srv, "whole-pkg") == ["whole_pkg-1.0-py3-none-any.whl"]
    page_hits = upstream.hit_count("/simple/whole-pkg/")
    srv.cli("upstream", "block", "Whole_Pkg", "--reason", "typosquat")
    # The JSON page is cached: the server drops it when its change watcher reads the block.
    srv.wait_for(lambda: srv.project_json("whole-pkg") is None, what="the project block on the running server")
    r = srv.get("/simple/whole-pkg/", {"Accept": support.JSON_V1})
    assert r.status == 404 and "typosquat" in r.text, r
    assert srv.get("/simple/whole-pkg/", {"Accept": "text/html"}).status == 404
    r = srv.get("/files/upstream/whole-pkg/whole_pkg-1.0-py3-none-any.whl")
    assert r.status == 403 and "typosquat" in r.text, r
    assert install(make_venv(), srv.simple_url, "whole-pkg", tool="pip").returncode != 0
    assert upstream.hit_count("/simple/whole-pkg/") == page_hits, "a blocked project is not asked upstream"

    rows = [line.split("\t") for line in srv.cli("upstream", "blocks").stdout.strip().splitlines()]
    assert rows[0] == ["project", "version", "blocked", "by", "reason"]
    assert [(r[0], r[1], r[3], r[4]) for r in rows[1:]] == [
        ("cli-blk", "2", "cli", "bad release"),
        ("whole-pkg", "(all)", "cli", "typosquat"),
    ]
    srv.cli("upstream", "unblock", "whole-pkg")
    srv.wait_for(lambda: srv.get("/simple/whole-pkg/").status == 200, what="the unblock on the running server")
    srv.cli("upstream", "unblock", "cli-blk==2.0.0")
    srv.wait_for(lambda: len(filenames(srv, "cli-blk")) == 2, what="the release unblock on the running server")
    missing = srv.cli("upstream", "unblock", "cli-blk==2", check=False)
    assert missing.returncode != 0 and "not blocked" in missing.stdout


def test_a_block_never_touches_a_private_project(server_factory, upstream, dists):
    srv = proxy(server_factory, upstream)
    assert A.raw_upload(srv, support.make_wheel(dists, "mine-blk", "1.0"), ADMIN).status == 200
    out = srv.cli("upstream", "block", "mine-blk", "--reason", "r").stdout
    assert "project of this index" in out
    assert filenames(srv, "mine-blk") == ["mine_blk-1.0-py3-none-any.whl"]
    assert srv.get("/files/upstream/mine-blk/mine_blk-1.0-py3-none-any.whl").status == 404


def fetch_log(srv, spec):
    return json.loads(srv.cli("upstream", "log", spec, "--json").stdout)


def test_the_fetch_log_lists_what_a_build_pulled_and_when(server_factory, upstream, make_venv):
    srv = proxy(server_factory, upstream)
    before = datetime.datetime.now(datetime.timezone.utc)
    support.check(install(make_venv(), srv.simple_url, "log-pkg==1.0", tool="pip"))
    whl = "log_pkg-1.0-py3-none-any.whl"
    log = srv.wait_for(lambda: fetch_log(srv, "log-pkg"), what="the fetch recorded")
    assert [e["filename"] for e in log] == [whl], "metadata files and unfetched files are not logged"
    entry = log[0]
    assert entry["version"] == "1.0"
    assert entry["sha256"] == upstream.files[whl].dist.sha256
    assert entry["upload_time"] == "2024-01-02T03:04:05.123456Z"
    first = datetime.datetime.fromisoformat(entry["first_fetched"].replace("Z", "+00:00"))
    assert before - datetime.timedelta(seconds=1) <= first <= datetime.datetime.now(datetime.timezone.utc)
    assert entry["fetches"] == 1

    # Installed again, from the cache: not a new fetch.
    support.check(install(make_venv(), srv.simple_url, "log-pkg==1.0", tool="uv"))
    again = fetch_log(srv, "log-pkg==1.0.0")
    assert again[0]["fetches"] == 1 and again[0]["first_fetched"] == entry["first_fetched"]

    out = srv.cli("upstream", "log", "log-pkg==2.0").stdout
    assert "No upstream file of 'log-pkg==2.0' was ever fetched" in out
    assert fetch_log(srv, "log-pkg==2.0") == []
    table = srv.cli("upstream", "log", "Log_Pkg").stdout.strip().splitlines()
    assert table[0].split("\t")[:4] == ["filename", "version", "uploaded", "first fetched"]
    assert table[1].split("\t")[:3] == [whl, "1.0", "2024-01-02 03:04:05Z"]
