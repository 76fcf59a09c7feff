"""Accounts: htpasswd import (bcrypt $2y$/$2b$, $apr1$, {SHA}) and publishing with the old
passwords, which are upgraded to argon2id at first login; generated passwords; password
changes and account removal while the server runs; the minimum password length.

One server (``--auth upload``) for the module; the restart test has its own.  The module makes
8 failed logins from 127.0.0.1 in all (the throttle locks an address out at 10): keep new
wrong-password checks on their own server."""

from __future__ import annotations

import pytest

import auth_support as A
import support

SCHEMES = {
    "2y": ("ht-bcrypt-y", "bcrypt-Y-pass-1"),
    "2b": ("ht-bcrypt-b", "bcrypt-B-pass-2"),
    "apr1": ("ht-apr1", "apr1-pass-3x"),
    "sha": ("ht-sha", "sha-pass-4xy"),
}
PREFIX = {"2y": "$2y$", "2b": "$2b$", "apr1": "$apr1$", "sha": "{SHA}"}
UNSUPPORTED = [
    ("ht-crypt", "abH.XDBuuojgY"),  # DES crypt(3)
    ("ht-md5crypt", "$1$saltsalt$kCpIzdPZQJeueJJG30Qp.1"),
    ("ht-plain", "plain-text-password"),
]


@pytest.fixture(scope="module")
def srv(module_server_factory):
    return module_server_factory("auth-accounts", **A.server_args("upload"))


def login(srv, user, password) -> int:
    r = srv.get("/api/v1/tokens", A.basic(user, password))
    assert r.status in (200, 401), r
    if r.status == 401:
        A.assert_unauthorized(r)
    return r.status


def write_htpasswd(path, entries):
    path.write_text("".join(f"{user}:{h}\n" for user, h in entries))
    return path


@pytest.fixture(scope="module")
def imported(srv, tmp_path_factory):
    entries = []
    hashes = {}
    for scheme, (user, password) in SCHEMES.items():
        h = A.htpasswd_hash(scheme, password)
        assert h.startswith(PREFIX[scheme]), h
        hashes[user] = h
        entries.append((user, h))
    path = write_htpasswd(tmp_path_factory.mktemp("htpasswd") / "htpasswd", entries + UNSUPPORTED)
    proc = A.cli(srv.data, "user", "import-htpasswd", str(path))
    return proc, hashes


def test_import_reports_imported_and_skipped_entries(srv, imported):
    proc, _ = imported
    out = proc.stdout + proc.stderr
    for user, _ in UNSUPPORTED:
        assert f"'{user}'" in out and "skipped" in out, A.describe(proc)
    names = A.user_names(srv.data)
    assert {u for u, _ in SCHEMES.values()} <= names
    assert not {u for u, _ in UNSUPPORTED} & names
    rows = [r for r in A.audit(srv.data) if r.action == "user.import"]
    assert {r.subject for r in rows} == {u for u, _ in SCHEMES.values()}, rows


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_imported_password_publishes_with_twine_and_is_upgraded(srv, imported, clients, dists, scheme):
    _, hashes = imported
    user, password = SCHEMES[scheme]
    assert A.password_hash(srv.data, user) == hashes[user]  # not logged in yet: still the imported hash

    project = f"{user}-pkg"
    wheel = support.make_wheel(dists, project, "1.0").path
    support.check(A.clients_as(clients, user, password).twine_upload(srv.upload_url, [wheel]))
    assert srv.file_named(project, wheel.name) is not None
    rows = [r for r in A.audit(srv.data) if r.action == "publish" and r.subject == wheel.name]
    assert [r.actor for r in rows] == [user]
    assert user in A.roles(srv.data, project)

    upgraded = A.password_hash(srv.data, user)
    assert upgraded.startswith("$argon2id$"), upgraded
    assert password not in upgraded
    # the same login keeps working, a wrong one does not, and the account is still listed
    assert login(srv, user, password) == 200
    assert login(srv, user, password + "x") == 401
    assert user in A.user_names(srv.data)
    wheel2 = support.make_wheel(dists, project, "1.1").path
    support.check(A.clients_as(clients, user, password).twine_upload(srv.upload_url, [wheel2]))
    assert A.password_hash(srv.data, user) == upgraded  # upgraded once, not at every login


def test_upgraded_hash_still_verifies_after_a_restart(server_factory, tmp_path):
    """After the restart nothing is remembered in memory: the argon2id hash written at the first
    login is what verifies the old password."""
    srv = server_factory("accounts-restart", **A.server_args("upload"))
    password = "restart-Pw-55"
    path = write_htpasswd(tmp_path / "htpasswd", [("ht-restart", A.htpasswd_hash("apr1", password))])
    A.cli(srv.data, "user", "import-htpasswd", str(path))
    assert login(srv, "ht-restart", password) == 200
    srv.wait_for(lambda: A.password_hash(srv.data, "ht-restart").startswith("$argon2id$"), what="hash upgraded")
    srv.restart()
    assert login(srv, "ht-restart", password) == 200
    assert login(srv, "ht-restart", "restart-Pw-56") == 401
    assert "ht-restart" in A.user_names(srv.data)


def test_generated_password_is_printed_once_and_works(srv):
    proc = A.cli(srv.data, "user", "add", "gen-user")
    password = proc.stdout.strip().splitlines()[-1]
    assert len(password) >= 8
    assert login(srv, "gen-user", password) == 200
    assert password not in A.cli(srv.data, "user", "list").stdout
    assert password not in A.cli(srv.data, "audit").stdout


def test_passwords_shorter_than_8_characters_are_refused(srv):
    proc = A.cli(srv.data, "user", "add", "shorty", "--password-stdin", input="seven77\n", check=False)
    assert proc.returncode != 0, A.describe(proc)
    assert "8" in proc.stdout + proc.stderr, A.describe(proc)
    assert "shorty" not in A.user_names(srv.data)

    A.add_user(srv.data, "longer", "exactly8")
    proc = A.cli(srv.data, "user", "passwd", "longer", "--password-stdin", input="short\n", check=False)
    assert proc.returncode != 0, A.describe(proc)
    assert login(srv, "longer", "exactly8") == 200


def test_password_change_while_serving_takes_effect(srv):
    A.add_user(srv.data, "pat", "pat-old-Pw1")
    assert login(srv, "pat", "pat-old-Pw1") == 200  # now remembered by the server
    A.cli(srv.data, "user", "passwd", "pat", "--password-stdin", input="pat-new-Pw2\n")
    srv.wait_for(lambda: login(srv, "pat", "pat-old-Pw1") == 401, timeout=5, what="old password refused")
    assert login(srv, "pat", "pat-new-Pw2") == 200
    assert [r.actor for r in A.audit(srv.data) if r.action == "user.passwd" and r.subject == "pat"] == ["cli"]


def test_removed_account_loses_its_password_and_tokens_while_serving(srv, dists):
    A.add_user(srv.data, "gone", "gone-Pw-123")
    token = A.create_token(srv.data, "gone")
    assert login(srv, "gone", "gone-Pw-123") == 200
    assert A.raw_upload(srv, support.make_wheel(dists, "gone-pkg", "1.0"), A.token_basic(token)).status == 200
    A.cli(srv.data, "user", "remove", "gone")
    assert "gone" not in A.user_names(srv.data)
    A.assert_unauthorized(srv.get("/api/v1/tokens", A.token_basic(token)))
    srv.wait_for(lambda: login(srv, "gone", "gone-Pw-123") == 401, timeout=5, what="removed account refused")
    r = A.raw_upload(srv, support.make_wheel(dists, "gone-pkg", "1.1"), A.token_basic(token))
    A.assert_unauthorized(r)
    assert [f["filename"] for f in srv.files("gone-pkg")] == ["gone_pkg-1.0-py3-none-any.whl"]
    assert [r.actor for r in A.audit(srv.data) if r.action == "user.remove" and r.subject == "gone"] == ["cli"]
