"""Access modes and the first start: `open` only on loopback (refused elsewhere, by flag, env
or TOML), the defaults (open on loopback without accounts, else upload), the first admin
account (generated password in a 0600 file, or PYINDEX_ADMIN_PASSWORD), and `open` ignoring
credentials entirely.

Starts on 0.0.0.0 use a bare `pyindex serve` process (the Server fixture listens on
127.0.0.1), reached through 127.0.0.1 and stopped by its PID."""

from __future__ import annotations

import stat

import pytest

import auth_support as A
import support


def bare(tmp_path, name, listen_host, *args, env=None, data=None, ready=True) -> A.BareServer:
    """Start a bare server on a free port (retrying if another process took it meanwhile)."""
    for _ in range(3):
        s = A.BareServer(tmp_path / name, f"{listen_host}:{A.free_port()}", *args, env=env, data=data)
        if not ready:
            return s
        try:
            s.wait_ready()
            return s
        except AssertionError:
            s.stop()
            if "could not listen" not in s.log_text():
                raise
    raise AssertionError("no free port")


@pytest.mark.parametrize("how", ["flag", "env", "toml"])
def test_open_mode_is_refused_on_a_non_loopback_address(tmp_path, how):
    args, env = [], {}
    if how == "flag":
        args = ["--auth", "open"]
    elif how == "env":
        env = {"PYINDEX_AUTH": "open"}
    else:
        cfg = tmp_path / "pyindex.toml"
        cfg.write_text('auth = "open"\n')
        args = ["--config", str(cfg)]
    with bare(tmp_path, "refused", "0.0.0.0", *args, env=env, ready=False) as s:
        code = s.wait_exit(timeout=30)
        log = s.log_text()
    assert code != 0, log
    assert "loopback" in log, log
    assert "0.0.0.0" in log, log
    assert not (s.data / "admin-password").exists()
    if s.data.exists():
        assert A.user_names(s.data) == set()


def test_first_start_on_all_interfaces_creates_the_admin(tmp_path, dists):
    with bare(tmp_path, "first", "0.0.0.0") as s:
        log = s.log_text()
        pw_file = s.data / "admin-password"
        assert pw_file.exists(), log
        assert stat.S_IMODE(pw_file.stat().st_mode) == 0o600
        password = pw_file.read_text().strip()
        assert len(password) >= 8
        assert "Created the admin account 'admin'" in log and password in log, log
        assert A.user_names(s.data) == {"admin"}

        # not open: anonymous publishing is refused (the default on a non-loopback address)
        dist = support.make_wheel(dists, "first-start", "1.0")
        A.assert_unauthorized(A.raw_upload(s, dist))
        A.assert_unauthorized(s.request("POST", "/api/v1/tokens", A.basic("admin", password + "x"), b"{}"))

        r = A.api(s, "POST", "/api/v1/tokens", A.basic("admin", password), {"description": "first"})
        assert r.status == 201, r
        token = r.json()["token"]
        assert A.TOKEN_RE.match(token), r
        assert A.raw_upload(s, dist, A.token_basic(token)).status == 200
        assert s.request("GET", "/simple/first-start/").status == 200


def test_restart_keeps_the_generated_admin(server_factory):
    srv = server_factory("gen-admin", **A.server_args("upload", admin_password=None))
    password = (srv.data / "admin-password").read_text().strip()
    assert A.api(srv, "GET", "/api/v1/tokens", A.basic("admin", password)).status == 200
    srv.restart()
    assert srv.log_text().count("Created the admin account") == 1
    assert (srv.data / "admin-password").read_text().strip() == password
    assert A.api(srv, "GET", "/api/v1/tokens", A.basic("admin", password)).status == 200


def test_admin_password_from_the_environment(server_factory):
    srv = server_factory("env-admin", **A.server_args("all", admin_password="env-Admin-Pw-9"))
    assert not (srv.data / "admin-password").exists()
    assert "PYINDEX_ADMIN_PASSWORD" in srv.log_text()
    assert "env-Admin-Pw-9" not in srv.log_text()
    assert srv.get("/simple/", A.basic("admin", "env-Admin-Pw-9")).status == 200
    A.assert_unauthorized(srv.get("/simple/"))


def test_too_short_admin_password_refuses_to_start(tmp_path):
    with bare(tmp_path, "short-admin", "127.0.0.1", "--auth", "upload", env={"PYINDEX_ADMIN_PASSWORD": "seven77"}, ready=False) as s:
        code = s.wait_exit(timeout=30)
        log = s.log_text()
    assert code != 0, log
    assert "PYINDEX_ADMIN_PASSWORD" in log and "8" in log, log
    assert A.user_names(s.data) == set()


def test_loopback_without_accounts_is_open_and_ignores_credentials(tmp_path, dists):
    """No --auth, no accounts, 127.0.0.1 (a bare process: the defaults are what is tested)."""
    with bare(tmp_path, "open-default", "127.0.0.1") as srv:
        assert not (srv.data / "admin-password").exists()
        assert A.user_names(srv.data) == set()
        r = A.raw_upload(srv, support.make_wheel(dists, "open-anon", "1.0"))
        assert r.status == 200, r
        # credentials are not checked at all: bad ones neither fail nor count as failed logins
        for i in range(12):
            r = A.raw_upload(srv, support.make_wheel(dists, "open-bogus", f"1.{i}"), A.token_basic("bogus"))
            assert r.status == 200, r
        r = A.api(srv, "POST", A.yank_path("open-anon", "1.0"), A.basic("nobody", "wrong-password"))
        assert r.status == 200, r
        log = srv.log_text()
    assert "failed login" not in log
    assert "panicked" not in log
    rows = [r for r in A.audit(srv.data) if r.action == "publish" and r.subject.startswith("open_anon")]
    assert [(r.actor, r.address) for r in rows] == [("anonymous", "127.0.0.1")]


def test_loopback_with_an_account_defaults_to_upload(tmp_path, dists):
    data = tmp_path / "with-account"
    A.add_user(data, "early", "early-Pw-123")
    with bare(tmp_path, "upload-default", "127.0.0.1", data=data) as srv:
        assert not (data / "admin-password").exists()
        A.assert_unauthorized(A.raw_upload(srv, support.make_wheel(dists, "default-up", "1.0")))
        assert srv.request("GET", "/simple/").status == 200
        r = A.raw_upload(srv, support.make_wheel(dists, "default-up", "1.0"), A.basic("early", "early-Pw-123"))
        assert r.status == 200, r
    assert A.user_names(data) == {"early"}


@pytest.mark.parametrize("how", ["env", "toml"])
def test_all_mode_from_env_and_toml(server_factory, tmp_path, how):
    env = {"PYINDEX_ADMIN_PASSWORD": A.ADMIN_PASSWORD}
    args = []
    if how == "env":
        env["PYINDEX_AUTH"] = "all"
    else:
        cfg = tmp_path / "pyindex.toml"
        cfg.write_text('auth = "all"\n')
        args = ["--config", str(cfg)]
    srv = server_factory(f"all-{how}", extra_args=args, extra_env=env)
    A.assert_unauthorized(srv.get("/simple/"))
    assert srv.get("/simple/", A.basic("admin", A.ADMIN_PASSWORD)).status == 200
    assert srv.get("/health").status == 200
