"""Project status markers (PEP 792, simple API 1.4): `pyindex project status` and
`POST /api/v1/projects/{project}/status`, the status in HTML meta tags and in JSON, and what
each status does to uploads, listings, downloads and installs.

One server in the `upload` mode for the module; every test uses its own project.  olga owns
every project (she publishes first), mike is a maintainer of `st-perm`, sam has no role, ada is
an admin.  Status changes made with the CLI reach the running server through its catalog
watcher, so pages are re-read until they show the change (bounded)."""

from __future__ import annotations

import pytest

import auth_support as A
import support

PW = {"olga": "olga-Pw-0001", "mike": "mike-Pw-0002", "sam": "sam-Pw-00003", "ada": "ada-Pw-00004"}


@pytest.fixture(scope="module")
def srv(module_server_factory):
    s = module_server_factory("status", **A.server_args("upload"))
    A.add_user(s.data, "olga", PW["olga"])
    A.add_user(s.data, "mike", PW["mike"])
    A.add_user(s.data, "sam", PW["sam"])
    A.add_user(s.data, "ada", PW["ada"], admin=True)
    return s


@pytest.fixture(scope="module")
def tokens(srv):
    return {name: A.create_token(srv.data, name) for name in PW}


def publish(srv, tokens, d, project, version="1.0", user="olga"):
    """Uploads a wheel as ``user`` (olga by default, who then owns a new project)."""
    wheel = support.make_wheel(d, project, version)
    r = A.raw_upload(srv, wheel, A.token_basic(tokens[user]))
    assert r.status == 200, r
    return wheel


def html_metas(srv, project) -> dict[str, str]:
    r = srv.get(f"/simple/{project}/", {"Accept": support.TEXT_HTML})
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("text/html"), r
    return {m["name"]: m["content"] for m in support.parse_html(r.text).metas if m.get("name")}


def html_anchors(srv, project):
    return support.parse_html(srv.project_html(project)).anchors


def json_page(srv, project) -> dict:
    r = srv.get(f"/simple/{project}/", {"Accept": support.JSON_V1})
    assert r.status == 200, r
    assert r.header("Content-Type") == support.JSON_V1, r
    return r.json()


def expected_metas(status, reason=None) -> dict[str, str]:
    metas = {"pypi:repository-version": "1.4", "pypi:project-status": status}
    if reason is not None:
        metas["pypi:project-status-reason"] = reason
    return metas


def expected_json_status(status, reason=None) -> dict[str, str]:
    return {"status": status, **({"reason": reason} if reason is not None else {})}


def wait_status(srv, project, status, reason=None):
    """Until both formats show the status (the watcher polls every 0.5 s)."""

    def shown():
        assert html_metas(srv, project) == expected_metas(status, reason)
        assert json_page(srv, project)["project-status"] == expected_json_status(status, reason)
        return True

    srv.wait_for(shown, timeout=5, what=f"{project} shown as {status}")


def cli_status(srv, project, status, reason=None, check=True):
    args = ["project", "status", project, status] + (["--reason", reason] if reason is not None else [])
    return A.cli(srv.data, *args, check=check)


def api_status(srv, project, auth, body):
    return A.api(srv, "POST", f"/api/v1/projects/{project}/status", auth, body)


def status_rows(srv, project):
    return [(r.actor, r.detail) for r in A.audit(srv.data) if r.action == "project.status" and r.subject == project]


def assert_upload_refused(proc, project, status):
    assert proc.returncode != 0, support.describe(proc)
    out = support.flat(proc.stdout)
    assert "403" in out and f"Project '{project}' is {status}" in out, support.describe(proc)
    assert f"pyindex project status {project} active" in out, support.describe(proc)


# --------------------------------------------------------------------------- pages


def test_pages_declare_api_1_4_and_an_active_status(srv, tokens, module_dists):
    wheel = publish(srv, tokens, module_dists / "active", "st-active")
    assert html_metas(srv, "st-active") == expected_metas("active")
    page = json_page(srv, "st-active")
    assert page["meta"]["api-version"] == "1.4"
    assert page["project-status"] == {"status": "active"}
    assert page["versions"] == ["1.0"]
    (entry,) = page["files"]
    assert entry["filename"] == wheel.filename
    assert entry["size"] == len(wheel.data)
    assert entry["upload-time"].endswith("Z")
    assert entry["core-metadata"] == {"sha256": support.sha256_hex(wheel.metadata)}
    assert "dist-info-metadata" not in entry  # PEP 714: the JSON keeps core-metadata alone
    # The root page is unchanged by PEP 792 but declares the same version.
    root = srv.get("/simple/", {"Accept": support.JSON_V1}).json()
    assert root["meta"]["api-version"] == "1.4" and "project-status" not in root


def test_archived_project_installs_but_refuses_uploads(srv, tokens, clients, module_dists, make_venv):
    d = module_dists / "archived"
    wheel = publish(srv, tokens, d, "st-archived")
    proc = cli_status(srv, "st-archived", "archived", "moved to st-new")
    assert "'st-archived' is now archived (was active), reason: moved to st-new." in proc.stdout, proc.stdout
    wait_status(srv, "st-archived", "archived", "moved to st-new")

    assert [a.filename for a in html_anchors(srv, "st-archived")] == [wheel.filename]
    (entry,) = json_page(srv, "st-archived")["files"]
    assert srv.download(entry["url"]) == wheel.data

    venv = make_venv()
    support.check(venv.pip_install("st-archived", index_url=srv.simple_url))
    assert venv.installed()["st-archived"] == "1.0"
    venv = make_venv()
    support.check(venv.uv_install("st-archived", index_url=srv.simple_url))
    assert venv.installed()["st-archived"] == "1.0"

    newer = support.make_wheel(d, "st-archived", "1.1")
    before, blobs = A.index_state(srv), A.stored_blobs(srv.data)
    proc = A.clients_with_token(clients, tokens["olga"]).twine_upload(srv.upload_url, [newer.path])
    assert_upload_refused(proc, "st-archived", "archived")
    assert "(reason: moved to st-new)" in support.flat(proc.stdout)
    assert A.index_state(srv) == before and A.stored_blobs(srv.data) == blobs

    cli_status(srv, "st-archived", "active")
    wait_status(srv, "st-archived", "active")
    support.check(A.clients_with_token(clients, tokens["olga"]).twine_upload(srv.upload_url, [newer.path]))
    assert json_page(srv, "st-archived")["versions"] == ["1.0", "1.1"]


def test_quarantined_project_lists_and_serves_nothing(srv, tokens, clients, module_dists, make_venv):
    d = module_dists / "quarantined"
    wheel = publish(srv, tokens, d, "st-quarantined")
    (entry,) = json_page(srv, "st-quarantined")["files"]
    metadata_url = entry["url"] + ".metadata"
    # Served (and so cached) before the quarantine: the cached answers must not outlive it.
    assert srv.download(entry["url"]) == wheel.data
    assert srv.download(metadata_url) == wheel.metadata

    r = api_status(srv, "st-quarantined", A.token_basic(tokens["ada"]), {"status": "quarantined", "reason": "malware <found>"})
    assert r.status == 200, r
    wait_status(srv, "st-quarantined", "quarantined", "malware <found>")
    assert html_anchors(srv, "st-quarantined") == []
    page = json_page(srv, "st-quarantined")
    assert page["files"] == [] and page["versions"] == ["1.0"]

    for url in (entry["url"], metadata_url):
        r = srv.get(url)
        assert r.status == 403, r
        assert "Project 'st-quarantined' is quarantined (reason: malware <found>): its files are not served." in r.text, r
        r = srv.request("HEAD", url)
        assert r.status == 403, r

    venv = make_venv()
    proc = venv.pip_install("st-quarantined", index_url=srv.simple_url)
    assert proc.returncode != 0, support.describe(proc)
    assert "st-quarantined" not in venv.installed()

    newer = support.make_wheel(d, "st-quarantined", "1.1")
    r = A.raw_upload(srv, newer, A.token_basic(tokens["ada"]))
    assert r.status == 403, r
    assert "Project 'st-quarantined' is quarantined" in r.text and "An admin can reactivate it" in r.text, r
    proc = A.clients_with_token(clients, tokens["olga"]).twine_upload(srv.upload_url, [newer.path])
    assert_upload_refused(proc, "st-quarantined", "quarantined")

    cli_status(srv, "st-quarantined", "active")
    wait_status(srv, "st-quarantined", "active")
    assert srv.download(entry["url"]) == wheel.data
    assert [a.filename for a in html_anchors(srv, "st-quarantined")] == [wheel.filename]


def test_deprecated_project_is_informational(srv, tokens, module_dists, make_venv):
    d = module_dists / "deprecated"
    publish(srv, tokens, d, "st-deprecated")
    proc = cli_status(srv, "st-deprecated", "deprecated", "use st-new")
    assert "'st-deprecated' is now deprecated (was active)" in proc.stdout, proc.stdout
    wait_status(srv, "st-deprecated", "deprecated", "use st-new")
    publish(srv, tokens, d, "st-deprecated", "1.1")
    assert json_page(srv, "st-deprecated")["versions"] == ["1.0", "1.1"]
    venv = make_venv()
    support.check(venv.uv_install("st-deprecated", index_url=srv.simple_url))
    assert venv.installed()["st-deprecated"] == "1.1"


# --------------------------------------------------------------------------- who may


def test_owners_and_admins_set_the_status_over_the_api(srv, tokens, module_dists):
    publish(srv, tokens, module_dists / "perm", "st-perm")
    A.cli(srv.data, "project", "add-maintainer", "st-perm", "mike")
    archive = {"status": "archived", "reason": "done"}

    for auth in (A.token_basic(tokens["mike"]), A.basic("sam", PW["sam"])):
        r = api_status(srv, "st-perm", auth, archive)
        assert r.status == 403, r
        assert "is not an owner of the project 'st-perm'" in r.text, r
    A.assert_unauthorized(api_status(srv, "st-perm", {}, archive))
    assert json_page(srv, "st-perm")["project-status"] == {"status": "active"}

    r = api_status(srv, "St_Perm", A.token_basic(tokens["olga"]), archive)
    assert r.status == 200, r
    assert r.json() == {"project": "st-perm", "status": "archived", "reason": "done", "previous": "active"}
    # The server's own change is visible at once, without waiting for the watcher.
    assert json_page(srv, "st-perm")["project-status"] == {"status": "archived", "reason": "done"}

    # Quarantine is the index's verdict: an owner can neither impose nor lift it.
    r = api_status(srv, "st-perm", A.basic("olga", PW["olga"]), {"status": "quarantined"})
    assert r.status == 403 and "only an admin" in r.text, r
    r = api_status(srv, "st-perm", A.token_basic(tokens["ada"]), {"status": "quarantined"})
    assert r.status == 200 and r.json()["previous"] == "archived", r
    # Nor rewrite or clear the admin's reason by sending the same status.
    r = api_status(srv, "st-perm", A.token_basic(tokens["olga"]), {"status": "quarantined", "reason": "fine"})
    assert r.status == 403 and "only an admin" in r.text, r
    r = api_status(srv, "st-perm", A.token_basic(tokens["olga"]), {"status": "active"})
    assert r.status == 403 and "only an admin" in r.text, r
    r = api_status(srv, "st-perm", A.basic("ada", PW["ada"]), {"status": "deprecated"})
    assert r.status == 200 and r.json()["reason"] is None, r
    r = api_status(srv, "st-perm", A.token_basic(tokens["olga"]), {"status": "active"})
    assert r.status == 200, r

    assert status_rows(srv, "st-perm") == [
        ("olga", "archived: done"),
        ("ada", "quarantined"),
        ("ada", "deprecated"),
        ("olga", "active"),
    ]
    rows = [r for r in A.audit(srv.data) if r.action == "project.status" and r.subject == "st-perm"]
    assert {r.address for r in rows} == {"127.0.0.1"}


def test_bad_status_requests_are_refused_with_a_reason(srv, tokens, module_dists):
    publish(srv, tokens, module_dists / "bad", "st-bad")
    olga = A.token_basic(tokens["olga"])
    cases = [
        ({"status": "gone"}, 400, "Unknown project status 'gone'"),
        ({"status": "archived", "why": "x"}, 400, "unknown field"),
        ({"reason": "x"}, 400, "missing field"),
        ({"status": "archived", "reason": "two\nlines"}, 400, "one line"),
        ({"status": "archived", "reason": "two\u2028lines"}, 400, "one line"),
        ({"status": "archived", "reason": "abc\u202edcba"}, 400, "text-direction"),
        ({"status": "archived", "reason": "x" * 501}, 400, "too long"),
    ]
    for body, code, text in cases:
        r = api_status(srv, "st-bad", olga, body)
        assert r.status == code and text in r.text, (body, r)
    r = A.api(srv, "POST", "/api/v1/projects/st-bad/status", olga)
    assert r.status == 400 and '{"status": "archived"' in r.text, r
    r = api_status(srv, "st-nothing-here", A.token_basic(tokens["ada"]), {"status": "archived"})
    assert r.status == 404 and "No project named 'st-nothing-here'" in r.text, r
    r = srv.request(
        "POST",
        "/api/v1/projects/st-bad/status",
        {**olga, "Content-Type": "application/json", "Origin": "https://evil.example"},
        b'{"status": "archived"}',
    )
    assert r.status == 403 and "Cross-site" in r.text, r
    assert json_page(srv, "st-bad")["project-status"] == {"status": "active"}
    assert status_rows(srv, "st-bad") == []


def test_cli_refuses_unknown_statuses_and_projects(srv, tokens, module_dists):
    publish(srv, tokens, module_dists / "cli", "st-cli")
    proc = cli_status(srv, "st-cli", "retired", check=False)
    assert proc.returncode != 0
    assert "use active, archived, quarantined or deprecated" in proc.stderr, A.describe(proc)
    proc = cli_status(srv, "st-nowhere", "archived", check=False)
    assert proc.returncode != 0
    assert "No project named 'st-nowhere'" in proc.stderr, A.describe(proc)
    proc = cli_status(srv, "ST.cli", "quarantined", "reported")
    assert "'st-cli' is now quarantined (was active), reason: reported." in proc.stdout
    wait_status(srv, "st-cli", "quarantined", "reported")
    assert status_rows(srv, "st-cli") == [("cli", "quarantined: reported")]
    row = [r for r in A.audit(srv.data) if r.subject == "st-cli"][-1]
    assert row.address == "-"
