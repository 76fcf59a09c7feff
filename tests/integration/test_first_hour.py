"""A newcomer's first hour: the mistakes people make when following the README.

- a CLI command run outside the data directory refuses (naming --data/PYINDEX_DATA)
  instead of answering from a new, empty index; only the commands that make the first
  accounts may start a new data directory;
- an index URL without `/simple/` still installs the private project (pip and uv),
  because `/<project>/` redirects to `/simple/<project>/`;
- publishing to the index URL (`POST /simple/`) answers 405 naming `/legacy/`;
- the landing page shows the address the client used, never a reflected script.
"""

from __future__ import annotations

import html
import os
import socket
import subprocess
from pathlib import Path

import pytest

import auth_support as A
import support
from conftest import pyindex_bin, tool

NO_ROUTE = "This server is a Python package index: the index is at /simple/, uploads go to /legacy/."


# --------------------------------------------------------------------------- CLI and the data directory


def run_cli(cwd: Path, *args: str, env_extra: dict[str, str] | None = None, input: str = "") -> subprocess.CompletedProcess:
    """``pyindex ARGS`` run in ``cwd`` with no --data (unless in ARGS) and no PYINDEX_* from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYINDEX_")}
    env.update(env_extra or {})
    return subprocess.run(
        [str(pyindex_bin()), *args], cwd=cwd, env=env, input=input,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60,
    )


NEEDS_CATALOG = [
    ["yank", "shared", "0.1.1"],
    ["unyank", "shared", "0.1.1"],
    ["audit"],
    ["user", "list"],
    ["user", "passwd", "alice"],
    ["user", "remove", "alice"],
    ["token", "create", "--user", "admin"],
    ["token", "list"],
    ["token", "revoke", "1"],
    ["project", "add-owner", "shared", "alice"],
    ["project", "roles", "shared"],
]


@pytest.mark.parametrize("args", NEEDS_CATALOG, ids=" ".join)
def test_commands_refuse_a_directory_without_catalog(tmp_path, args):
    proc = run_cli(tmp_path, *args)
    assert proc.returncode != 0, proc
    expected = f"No pyindex catalog in '{tmp_path / 'pyindex-data'}' (the data directory)"
    assert expected in proc.stderr, proc.stderr
    assert "--data (or PYINDEX_DATA)" in proc.stderr, proc.stderr
    assert f"pyindex --data /srv/pyindex {args[0]}" in proc.stderr, proc.stderr
    assert list(tmp_path.iterdir()) == [], "the command created files"


def test_pyindex_data_names_the_directory_and_nothing_is_created(tmp_path):
    missing = tmp_path / "srv" / "pyindex"
    proc = run_cli(tmp_path, "yank", "shared", "0.1.1", env_extra={"PYINDEX_DATA": str(missing)})
    assert proc.returncode != 0
    assert f"No pyindex catalog in '{missing}'" in proc.stderr, proc.stderr
    assert "pyindex --data /srv/pyindex yank shared 0.1.1" in proc.stderr, proc.stderr
    assert not (tmp_path / "srv").exists()


def test_an_existing_directory_without_catalog_is_refused_too(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    proc = run_cli(tmp_path, "--data", "elsewhere", "audit")
    assert proc.returncode != 0
    assert f"No pyindex catalog in '{tmp_path / 'elsewhere'}'" in proc.stderr, proc.stderr
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_account_commands_start_a_new_index_before_the_first_serve(tmp_path):
    data = tmp_path / "pyindex-data"
    proc = run_cli(tmp_path, "user", "add", "alice", "--admin", "--password-stdin", input="alice-password-1\n")
    assert proc.returncode == 0, proc
    assert f"Starting a new index in '{data}'" in proc.stderr, proc.stderr
    assert (data / "catalog.sqlite3").is_file()

    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n")  # password "password"
    other = tmp_path / "other-data"
    proc = run_cli(tmp_path, "--data", str(other), "user", "import-htpasswd", str(htpasswd))
    assert proc.returncode == 0, proc
    assert "Imported 1 account(s)" in proc.stdout, proc.stdout
    assert (other / "catalog.sqlite3").is_file()

    # the new directory now holds a catalog: every other command works on it
    proc = run_cli(tmp_path, "user", "list")
    assert proc.returncode == 0, proc
    assert proc.stdout.startswith("alice\tadmin"), proc.stdout
    assert "Starting a new index" not in proc.stderr


def test_commands_work_beside_the_server_with_data(server, upload, dists):
    assert upload(server, support.make_wheel(dists, "hour-yank", "1.0")).status_code == 200
    proc = run_cli(server.workdir.parent, "yank", "hour-yank", "1.0", env_extra={"PYINDEX_DATA": str(server.data)})
    assert proc.returncode == 0, proc
    server.wait_for(lambda: server.files("hour-yank")[0].get("yanked") is not None, what="yank visible")


# --------------------------------------------------------------------------- an index URL without /simple/


@pytest.fixture(scope="module")
def hour_lib(module_server, upload, module_dists):
    """``hour-lib`` 1.0, a wheel, on the module server."""
    dist = support.make_wheel(module_dists / "hour-lib", "hour-lib", "1.0")
    r = upload(module_server, dist)
    assert r.status_code == 200, r.text
    return dist


@pytest.mark.parametrize(
    "method,path,location",
    [
        ("GET", "/hour-lib/", "/simple/hour-lib/"),
        ("GET", "/hour-lib", "/simple/hour-lib/"),
        ("HEAD", "/hour-lib/", "/simple/hour-lib/"),
        ("GET", "/Hour_Lib/", "/simple/hour-lib/"),
        ("GET", "/hour.lib/?format=application/vnd.pypi.simple.v1+json", "/simple/hour-lib/?format=application/vnd.pypi.simple.v1+json"),
    ],
)
def test_project_path_without_simple_redirects(module_server, hour_lib, method, path, location):
    r = module_server.request(method, path)
    assert r.status == 301, r
    assert r.header("Location") == location, r


def test_redirect_target_serves_the_project(module_server, hour_lib):
    r = module_server.get(module_server.request("GET", "/Hour_Lib").header("Location"), {"Accept": support.JSON_V1})
    assert r.status == 200, r
    assert [f["filename"] for f in r.json()["files"]] == [hour_lib.filename]


def test_pip_installs_with_an_index_url_without_simple(module_server, hour_lib, make_venv):
    venv = make_venv()
    # --index-url (not --extra-index-url): only this loopback server is asked
    proc = support.check(venv.pip_install("hour-lib", index_url=module_server.url))
    assert venv.installed().get("hour-lib") == "1.0", support.describe(proc)


def test_uv_installs_with_an_index_url_without_simple(module_server, hour_lib, make_venv):
    venv = make_venv()
    proc = support.check(venv.uv_install("hour-lib", index_url=module_server.url))
    assert venv.installed().get("hour-lib") == "1.0", support.describe(proc)


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/a/b/"), ("GET", "/-x/"), ("GET", "/x/y"), ("GET", "/a%20b/"), ("POST", "/hour-lib/"),
        ("DELETE", "/hour-lib"),
        # name-shaped, but no project: no permanent redirect to a page that does not exist
        ("GET", "/favicon.ico"), ("GET", "/robots.txt"), ("HEAD", "/no-such-lib/"),
    ],
)
def test_other_paths_stay_not_found(module_server, hour_lib, method, path):
    r = module_server.request(method, path)
    assert r.status == 404, r
    assert r.header("Location") is None, r
    if method != "HEAD":
        assert NO_ROUTE in r.text, r


def test_a_new_project_is_redirected_once_it_exists(module_server, upload, module_dists):
    assert module_server.get("/late-lib/").status == 404
    dist = support.make_wheel(module_dists / "late-lib", "late-lib", "1.0")
    assert upload(module_server, dist).status_code == 200
    r = module_server.get("/late-lib/")
    assert r.status == 301, r
    assert r.header("Location") == "/simple/late-lib/", r


@pytest.mark.parametrize(
    "path,status",
    [("/health", 200), ("/", 200), ("/simple/", 200), ("/simple", 301), ("/legacy/", 405), ("/legacy", 405)],
)
def test_existing_routes_win(module_server, path, status):
    r = module_server.get(path)
    assert r.status == status, r
    if status == 301:
        assert r.header("Location") == "/simple/", r


# --------------------------------------------------------------------------- publishing to the index URL


@pytest.mark.parametrize("path", ["/simple/", "/simple"])
def test_post_to_the_index_is_405_naming_the_upload_url(module_server, upload, module_dists, path):
    dist = support.make_wheel(module_dists / "misdirected", "misdirected", "1.0")
    r = upload(module_server, dist, path=path)
    assert r.status_code == 405, (r.status_code, r.text)
    assert r.headers["Allow"] == "GET, HEAD"
    assert f"--repository-url '{module_server.url}/legacy/'" in r.text, r.text
    assert module_server.project_json("misdirected") is None


def test_twine_pointed_at_the_index_shows_the_upload_url(module_server, clients, module_dists):
    dist = support.make_wheel(module_dists / "twine-misdirected", "twine-misdirected", "1.0")
    proc = clients.twine_upload(module_server.simple_url, [dist.path])
    assert proc.returncode != 0, support.describe(proc)
    out = support.flat(proc.stdout)
    assert "405" in out and "/legacy/" in out, support.describe(proc)
    assert module_server.project_json("twine-misdirected") is None


# --------------------------------------------------------------------------- the landing page


def raw_get_with_host(server, host: bytes) -> tuple[int, str]:
    """GET / with exactly this Host header (http.client would add its own)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    # HTML escapes the quotes around shown URLs; a browser shows them as quotes
    return int(head.split()[1]), html.unescape(body.decode("utf-8", "replace"))


def test_landing_page_shows_the_address_used(module_server):
    r = module_server.get("/")
    assert r.status == 200, r
    base = module_server.url
    for command in (
        f"pip install --index-url '{base}/simple/' NAME",
        f"uv pip install --index-url '{base}/simple/' NAME",
        f"twine upload --repository-url '{base}/legacy/'",
        f"uv publish --publish-url '{base}/legacy/'",
    ):
        assert command in html.unescape(r.text), r.text
    assert "HOST" not in r.text and "{address}" not in r.text

    status, body = raw_get_with_host(module_server, f"localhost:{module_server.port}".encode())
    assert status == 200
    assert f"pip install --index-url 'http://localhost:{module_server.port}/simple/' NAME" in body, body


def test_landing_page_quotes_urls_for_the_shell(module_server):
    """`[` and `]` are glob characters in zsh: a pasted IPv6 URL must be quoted."""
    status, body = raw_get_with_host(module_server, f"[::1]:{module_server.port}".encode())
    assert status == 200, body
    assert f"pip install --index-url 'http://[::1]:{module_server.port}/simple/' NAME" in body, body
    assert f"uv publish --publish-url 'http://[::1]:{module_server.port}/legacy/'" in body, body


@pytest.mark.parametrize(
    "host",
    [b"<script>alert(1)</script>", b'x"><img src=x onerror=alert(1)>', b"a&b", b"evil.example/<b>"],
)
def test_landing_page_never_reflects_a_hostile_host(module_server, host):
    status, body = raw_get_with_host(module_server, host)
    assert "<script" not in body and "<img" not in body and "<b>" not in body and "a&b" not in body, body
    if status == 200:  # else refused outright (a Host check in front of the routes)
        assert f"--index-url '{module_server.url}/simple/'" in body, body
    else:
        assert 400 <= status < 500, (status, body)


def test_documented_open_index_credentials_work(module_server, clients, module_dists):
    """README: an `open` index ignores credentials, but twine and uv insist on some."""
    dist = support.make_wheel(module_dists / "open-creds", "open-creds", "1.0")
    proc = clients.run(
        tool("twine"), "upload", "--non-interactive", "--disable-progress-bar",
        "--repository-url", module_server.upload_url, "-u", "anyone", "-p", "anything", str(dist.path),
    )
    support.check(proc)
    other = support.make_wheel(module_dists / "open-creds-uv", "open-creds-uv", "1.0")
    support.check(
        clients.run(
            tool("uv"), "publish", "--no-config", "--trusted-publishing", "never",
            "--publish-url", module_server.upload_url, "--token", "anything", str(other.path),
        )
    )
    assert module_server.project_json("open-creds") is not None
    assert module_server.project_json("open-creds-uv") is not None


def test_projects_published_while_open_have_no_owner_until_one_is_given(server, dists):
    """README: an `open` index records no owner; once credentials are required only admins
    may publish to such a project until `pyindex project add-owner` gives it one."""
    r = A.raw_upload(server, support.make_wheel(dists, "open-era", "1.0"))
    assert r.status == 200, r
    server.stop()
    A.add_user(server.data, "bob", "bob-Pw-000001")
    A.add_user(server.data, "ada", "ada-Pw-000001", admin=True)
    server.start()  # accounts exist now: the `upload` mode
    assert A.roles(server.data, "open-era").strip() == ""

    refused = A.raw_upload(server, support.make_wheel(dists, "open-era", "1.1"), A.basic("bob", "bob-Pw-000001"))
    assert refused.status == 403, refused
    message = refused.body.decode()
    assert "has no owner yet" in message, message
    assert "pyindex project add-owner open-era bob" in message, message
    admin = A.raw_upload(server, support.make_wheel(dists, "open-era", "1.2"), A.basic("ada", "ada-Pw-000001"))
    assert admin.status == 200, admin

    A.cli(server.data, "project", "add-owner", "open-era", "bob")
    owner = A.raw_upload(server, support.make_wheel(dists, "open-era", "1.1"), A.basic("bob", "bob-Pw-000001"))
    assert owner.status == 200, owner
