"""Secrets never reach the server log: after publishing (twine, uv, raw Basic and Bearer),
installing (pip, uv) in the `all` mode, token creation through the admin API, failed logins
with wrong passwords and tokens, revoked and expired tokens, htpasswd logins and yanks, the log
of a server running with RUST_LOG=debug contains no token, no password and no encoded
Authorization value."""

from __future__ import annotations

import base64
import re

import auth_support as A
import support

ALICE_PW = "alice-Secret-Pw-31"
HT_PW = "ht-Secret-Pw-32"


def encodings(user: str, password: str) -> list[str]:
    return [password, base64.b64encode(f"{user}:{password}".encode()).decode()]


def test_no_secret_in_the_log_after_every_auth_flow(server_factory, clients, dists, make_venv, tmp_path):
    srv = server_factory("secrets", **A.server_args("all", env={"RUST_LOG": "debug"}))
    secrets: list[str] = encodings("admin", A.ADMIN_PASSWORD)

    # accounts: a password from stdin, an htpasswd import
    A.add_user(srv.data, "alice", ALICE_PW)
    secrets += encodings("alice", ALICE_PW)
    ht = tmp_path / "htpasswd"
    ht.write_text(f"hty:{A.htpasswd_hash('sha', HT_PW)}\n")
    A.cli(srv.data, "user", "import-htpasswd", str(ht))
    secrets += encodings("hty", HT_PW)

    # tokens from the CLI and from the admin API
    cli_token = A.create_token(srv.data, "alice")
    r = A.api(srv, "POST", "/api/v1/tokens", A.basic("alice", ALICE_PW), {"description": "api"})
    assert r.status == 201, r
    api_token = A.Token(r.json()["id"], r.json()["token"])
    r = A.api(srv, "POST", "/api/v1/tokens", A.basic("alice", ALICE_PW), {"read_only": True})
    read_token = A.Token(r.json()["id"], r.json()["token"])
    expired = A.create_token(srv.data, "alice", expires=0)
    for t in (cli_token, api_token, read_token, expired):
        secrets += encodings("__token__", t.secret) + [t.secret.split("_", 2)[2]]

    # publishing: twine with a token and with a password, uv publish, raw Bearer
    w1 = support.make_wheel(dists, "sec-pkg", "1.0").path
    support.check(A.clients_with_token(clients, cli_token).twine_upload(srv.upload_url, [w1]))
    w2 = support.make_wheel(dists, "sec-pkg", "1.1").path
    support.check(A.clients_as(clients, "alice", ALICE_PW).twine_upload(srv.upload_url, [w2]))
    w3 = support.make_sdist(dists, "sec-pkg", "1.1").path
    support.check(A.clients_with_token(clients, api_token).uv_publish(srv.upload_url, [w3]))
    assert A.raw_upload(srv, support.make_wheel(dists, "sec-pkg", "1.2"), A.bearer(api_token)).status == 200
    w4 = support.make_wheel(dists, "hty-pkg", "1.0").path
    support.check(A.clients_as(clients, "hty", HT_PW).twine_upload(srv.upload_url, [w4]))

    # installs with credentials in the index URL
    venv = make_venv()
    support.check(venv.pip_install("sec-pkg==1.1", index_url=A.with_credentials(srv.simple_url, "__token__", read_token.secret)))
    venv2 = make_venv()
    support.check(venv2.uv_install("sec-pkg==1.0", index_url=A.with_credentials(srv.simple_url, "alice", ALICE_PW)))

    # failures: wrong passwords, a real token id with a wrong secret, revoked and expired tokens
    wrong_pw = "alice-Wrong-Pw-99"
    secrets += encodings("alice", wrong_pw)
    A.assert_unauthorized(srv.get("/simple/", A.basic("alice", wrong_pw)))
    forged = f"pyindex_{cli_token.public_id}_forgedSecretValue123"
    secrets += [forged, "forgedSecretValue123"]
    A.assert_unauthorized(srv.get("/simple/", A.token_basic(forged)))
    assert A.api(srv, "DELETE", f"/api/v1/tokens/{api_token.id}", A.basic("alice", ALICE_PW)).status == 200
    A.assert_unauthorized(srv.get("/simple/", A.bearer(api_token)))
    A.assert_unauthorized(srv.get("/simple/", A.token_basic(expired)))
    proc = A.clients_as(clients, "alice", wrong_pw).twine_upload(srv.upload_url, [w1])
    assert proc.returncode != 0

    # management
    r = A.api(srv, "POST", A.yank_path("sec-pkg", "1.0"), A.token_basic(cli_token), {"reason": "log check"})
    assert r.status == 200, r

    log = srv.log_text()
    assert "sec_pkg-1.0-py3-none-any.whl" in log or "published" in log  # the log is really written
    assert "failed login" in log
    leaked = [s for s in secrets if s in log]
    assert not leaked, f"secrets in the server log: {leaked!r}"
    token_shaped = re.findall(r"pyindex_[0-9a-f]{16}_[A-Za-z0-9_-]+", log)
    assert not token_shaped, f"token-shaped strings in the server log: {token_shaped!r}"
