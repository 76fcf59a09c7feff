"""The `all` access mode: every /simple/ and /files/ request needs credentials (a read-only
token is enough); /health never does.  pip and uv install with credentials and fail without.

One server (``--auth all``) for the module with a private app depending on a private lib, so
that installs also fetch a dependency's page and both files with the credentials."""

from __future__ import annotations

import pytest

import auth_support as A
import support


@pytest.fixture(scope="module")
def srv(module_server_factory):
    return module_server_factory("auth-all", **A.server_args("all"))


@pytest.fixture(scope="module")
def published(srv, module_dists):
    A.add_user(srv.data, "alice", "alice-Pw-771")
    A.add_user(srv.data, "reader", "reader-Pw-772")
    tokens = {
        "write": A.create_token(srv.data, "alice"),
        "read": A.create_token(srv.data, "reader", read_only=True, description="installs"),
    }
    d = module_dists / "private"
    dists = [
        support.make_wheel(d, "priv-lib", "1.0"),
        support.make_wheel(d, "priv-app", "1.0", requires_dist=["priv-lib==1.0"]),
    ]
    for dist in dists:
        r = A.raw_upload(srv, dist, A.token_basic(tokens["write"]))
        assert r.status == 200, r
    return tokens, dists


def installed_ok(venv):
    assert venv.installed().get("priv-app") == "1.0"
    assert venv.installed().get("priv-lib") == "1.0"


def test_raw_reads_need_credentials(srv, published):
    tokens, dists = published
    file_url = None
    for auth in (A.token_basic(tokens["read"]), A.bearer(tokens["read"]), A.basic("reader", "reader-Pw-772")):
        r = srv.get("/simple/priv-lib/", {"Accept": support.JSON_V1, **auth})
        assert r.status == 200, (auth, r)
        file_url = r.json()["files"][0]["url"]
    assert srv.get("/simple/", A.token_basic(tokens["read"])).status == 200

    for path in ("/simple/", "/simple/priv-lib/", file_url, file_url + ".metadata", "/simple", "/"):
        r = srv.get(path)
        A.assert_unauthorized(r)
        assert dists[0].filename.encode() not in r.body, (path, r)

    r = srv.get("/simple/priv-lib/", A.token_basic("pyindex_0123456789abcdef_not-a-real-token"))
    A.assert_unauthorized(r)

    r = srv.get("/health")
    assert r.status == 200, r


def test_project_path_without_simple_needs_credentials_to_be_redirected(srv, published):
    """Whether `/<name>/` redirects tells whether the project exists: only readers learn it."""
    tokens, _ = published
    for path in ("/priv-lib/", "/no-such-lib/"):
        A.assert_unauthorized(srv.get(path))
    r = srv.get("/priv-lib/", A.token_basic(tokens["read"]))
    assert r.status == 301 and r.header("Location") == "/simple/priv-lib/", r
    assert srv.get("/no-such-lib/", A.token_basic(tokens["read"])).status == 404


def test_file_download_with_read_only_token(srv, published):
    tokens, dists = published
    page = srv.get("/simple/priv-lib/", {"Accept": support.JSON_V1, **A.token_basic(tokens["read"])}).json()
    url = page["files"][0]["url"]
    r = srv.get(url, A.token_basic(tokens["read"]))
    assert r.status == 200, r
    assert r.body == dists[0].data


def test_read_only_token_cannot_publish(srv, published, dists):
    tokens, _ = published
    dist = support.make_wheel(dists, "priv-ro", "1.0")
    r = A.raw_upload(srv, dist, A.token_basic(tokens["read"]))
    assert r.status == 403, r
    assert "read-only" in r.text, r
    assert srv.get("/simple/priv-ro/", A.token_basic(tokens["write"])).status == 404


@pytest.mark.parametrize("which", ["read", "write"])
def test_pip_install_with_token_in_index_url(srv, published, make_venv, which):
    tokens, _ = published
    venv = make_venv()
    url = A.with_credentials(srv.simple_url, "__token__", tokens[which].secret)
    support.check(venv.pip_install("priv-app", index_url=url))
    installed_ok(venv)


def test_pip_install_with_password_in_index_url(srv, published, make_venv):
    venv = make_venv()
    url = A.with_credentials(srv.simple_url, "reader", "reader-Pw-772")
    support.check(venv.pip_install("priv-app", index_url=url))
    installed_ok(venv)


def test_pip_install_without_credentials_fails(srv, published, make_venv):
    venv = make_venv()
    proc = venv.pip_install("-vv", "priv-app", index_url=srv.simple_url)
    assert proc.returncode != 0, support.describe(proc)
    # pip reports the refused index page only in verbose output
    assert "401 Client Error: This index requires credentials to read." in proc.stdout, support.describe(proc)
    assert "priv-app" not in venv.installed()


def test_uv_pip_install_with_token_in_index_url(srv, published, make_venv):
    tokens, _ = published
    venv = make_venv()
    url = A.with_credentials(srv.simple_url, "__token__", tokens["read"].secret)
    support.check(venv.uv_install("priv-app", index_url=url))
    installed_ok(venv)


def test_uv_pip_install_with_named_index_credentials_from_env(srv, published, make_venv, clients):
    """uv's documented per-index variables: UV_INDEX=name=URL + UV_INDEX_<NAME>_USERNAME/PASSWORD."""
    tokens, _ = published
    venv = make_venv()
    proc = clients.uv(
        "pip", "install", "--python", str(venv.python), "--default-index", f"private={srv.simple_url}", "priv-app",
        env={
            "UV_INDEX_PRIVATE_USERNAME": "__token__",
            "UV_INDEX_PRIVATE_PASSWORD": tokens["read"].secret,
        },
    )
    support.check(proc)
    installed_ok(venv)


def test_uv_pip_install_without_credentials_fails(srv, published, make_venv):
    venv = make_venv()
    proc = venv.uv_install("priv-app", index_url=srv.simple_url)
    assert proc.returncode != 0, support.describe(proc)
    assert "401" in proc.stdout or "credentials" in proc.stdout.lower(), support.describe(proc)
    assert "priv-app" not in venv.installed()
