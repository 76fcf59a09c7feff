"""API tokens: revocation (CLI while serving, admin API), expiry, secrets shown once, and the
admin API for one's own tokens (a scoped token cannot mint a broader one; listing shows only
one's own tokens and never a secret; deleting another account's token is 404).

One server (``--auth upload``) for the module; tests use distinct projects and tokens."""

from __future__ import annotations

import datetime as dt
import pytest

import auth_support as A
import support

ALICE_PW = "alice-Pw-771"
BOB_PW = "bob-Pw-7720"


@pytest.fixture(scope="module")
def srv(module_server_factory):
    s = module_server_factory("auth-tokens", **A.server_args("upload"))
    A.add_user(s.data, "alice", ALICE_PW)
    A.add_user(s.data, "bob", BOB_PW)
    return s


def alice():
    return A.basic("alice", ALICE_PW)


def bob():
    return A.basic("bob", BOB_PW)


def works(srv, token) -> bool:
    r = srv.get("/api/v1/tokens", A.token_basic(token))
    assert r.status in (200, 401), r
    return r.status == 200


def api_create(srv, auth, **body) -> support.RawResponse:
    return A.api(srv, "POST", "/api/v1/tokens", auth, body)


def created(r) -> A.Token:
    assert r.status == 201, r
    doc = r.json()
    assert A.TOKEN_RE.match(doc["token"]), doc
    return A.Token(doc["id"], doc["token"])


def state_of(srv, token_id) -> str:
    rows = {int(r[0]): r for r in A.token_rows(srv.data)}
    return rows[token_id][7]


def revoke_rows(srv, token):
    """Audit rows of the revocation of ``token`` (the subject is its id or public id)."""
    return [r for r in A.audit(srv.data) if r.action == "token.revoke" and r.subject in (str(token.id), token.public_id)]


def parse_time(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


# --------------------------------------------------------------------------- revocation, expiry


def test_token_revoked_with_the_cli_while_serving_is_refused(srv, dists):
    token = A.create_token(srv.data, "alice", description="to revoke")
    dist = support.make_wheel(dists, "tok-revoke-cli", "1.0")
    assert A.raw_upload(srv, dist, A.token_basic(token)).status == 200

    A.cli(srv.data, "token", "revoke", str(token.id))
    assert state_of(srv, token.id) == "revoked"

    # the very next use is refused (no cache keeps a revoked token alive)
    r = srv.get("/api/v1/tokens", A.token_basic(token))
    A.assert_unauthorized(r)
    assert "revoked" in r.text, r
    dist2 = support.make_wheel(dists, "tok-revoke-cli", "1.1")
    r = A.raw_upload(srv, dist2, A.bearer(token))
    A.assert_unauthorized(r)
    assert srv.file_named("tok-revoke-cli", dist2.filename) is None
    rows = revoke_rows(srv, token)
    assert len(rows) == 1 and rows[0].actor == "cli", A.audit(srv.data)


def test_token_revoked_with_the_admin_api_is_refused(srv):
    token = created(api_create(srv, alice(), description="api token"))
    assert works(srv, token)
    r = A.api(srv, "DELETE", f"/api/v1/tokens/{token.id}", alice())
    assert r.status == 200, r
    assert r.json() == {"id": token.id, "revoked": True}
    assert not works(srv, token)
    listed = {t["id"]: t for t in srv.get("/api/v1/tokens", alice()).json()}
    assert listed[token.id]["revoked"] is not None
    rows = revoke_rows(srv, token)
    assert len(rows) == 1 and rows[0].actor == "alice" and rows[0].address == "127.0.0.1", rows


def test_token_created_with_expires_0_is_already_expired(srv, dists):
    token = A.create_token(srv.data, "alice", expires=0)
    assert state_of(srv, token.id) == "expired"
    r = srv.get("/api/v1/tokens", A.token_basic(token))
    A.assert_unauthorized(r)
    assert "expired" in r.text, r
    dist = support.make_wheel(dists, "tok-expired", "1.0")
    A.assert_unauthorized(A.raw_upload(srv, dist, A.token_basic(token)))
    assert srv.project_json("tok-expired") is None


def test_token_expiry_from_the_admin_api(srv):
    token = created(api_create(srv, alice(), expires_days=0))
    A.assert_unauthorized(srv.get("/api/v1/tokens", A.token_basic(token)))

    later = api_create(srv, alice(), expires_days=30)
    token = created(later)
    expires = parse_time(later.json()["expires"])
    now = dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(days=29) < expires - now <= dt.timedelta(days=30, minutes=1)
    assert works(srv, token)


def test_cli_shows_the_secret_once_and_never_again(srv):
    token = A.create_token(srv.data, "alice", projects=["tok-shown"], description="shown once")
    secret_part = token.secret.split("_", 2)[2]
    listing = A.cli(srv.data, "token", "list").stdout + A.cli(srv.data, "token", "list", "--user", "alice").stdout
    assert token.public_id in listing
    assert secret_part not in listing
    audit = A.cli(srv.data, "audit").stdout
    assert secret_part not in audit
    rows = {int(r[0]): r for r in A.token_rows(srv.data, "alice")}
    assert rows[token.id][1] == "alice" and "tok-shown" in rows[token.id][3], rows[token.id]
    assert rows[token.id][-1] == "shown once"


# --------------------------------------------------------------------------- admin API


def test_admin_api_needs_credentials(srv):
    for method, path in (("GET", "/api/v1/tokens"), ("POST", "/api/v1/tokens"), ("DELETE", "/api/v1/tokens/1")):
        A.assert_unauthorized(A.api(srv, method, path))


def test_scoped_token_cannot_create_a_broader_token(srv, dists):
    scoped = A.create_token(srv.data, "alice", projects=["tok-scope-a"])
    before = {t["id"] for t in srv.get("/api/v1/tokens", alice()).json()}

    for body in ({}, {"projects": []}, {"projects": ["tok-scope-a", "tok-scope-b"]}, {"projects": ["tok-scope-b"]}):
        r = api_create(srv, A.token_basic(scoped), **body)
        assert r.status == 403, (body, r)
        assert "tok-scope-a" in r.text, (body, r)
    assert {t["id"] for t in srv.get("/api/v1/tokens", alice()).json()} == before

    # within its own scope it may: the new token is limited to that project
    child = created(api_create(srv, A.token_basic(scoped), projects=["tok-scope-a"]))
    ok = support.make_wheel(dists, "tok-scope-a", "1.0")
    assert A.raw_upload(srv, ok, A.token_basic(child)).status == 200
    other = support.make_wheel(dists, "tok-scope-b", "1.0")
    r = A.raw_upload(srv, other, A.token_basic(child))
    assert r.status == 403, r
    assert srv.project_json("tok-scope-b") is None


def test_read_only_token_cannot_create_a_writing_token(srv, dists):
    ro = A.create_token(srv.data, "alice", read_only=True)
    r = api_create(srv, A.token_basic(ro), read_only=False)
    if r.status == 201:  # allowed only as another read-only token
        child = created(r)
        listed = {t["id"]: t for t in srv.get("/api/v1/tokens", alice()).json()}
        assert listed[child.id]["read_only"] is True, listed[child.id]
        dist = support.make_wheel(dists, "tok-ro-child", "1.0")
        r = A.raw_upload(srv, dist, A.token_basic(child))
        assert r.status == 403 and "read-only" in r.text, r
        assert srv.project_json("tok-ro-child") is None
    else:
        assert r.status == 403, r


def test_expiring_token_cannot_create_a_longer_lived_token(srv):
    """A token that expires in a day must not mint one that never expires (that would outlive
    it: a leaked short-lived CI token would become a permanent one)."""
    short = created(api_create(srv, alice(), expires_days=1, description="short-lived"))
    parent_expiry = {t["id"]: t for t in srv.get("/api/v1/tokens", alice()).json()}[short.id]["expires"]
    r = api_create(srv, A.token_basic(short), description="child of a short-lived token")
    if r.status == 201:
        child_expiry = r.json()["expires"]
        assert child_expiry is not None and parse_time(child_expiry) <= parse_time(parent_expiry), (
            f"POST /api/v1/tokens {{}} with a token expiring {parent_expiry} -> 201 {r.json()!r}"
        )
    else:
        assert r.status == 403, r


def test_listing_shows_only_own_tokens_and_never_a_secret(srv):
    mine = [created(api_create(srv, alice(), description="alice-list")), A.create_token(srv.data, "alice")]
    theirs = [created(api_create(srv, bob(), description="bob-list")), A.create_token(srv.data, "bob")]

    for user, auth, own, other in (("alice", alice(), mine, theirs), ("bob", bob(), theirs, mine)):
        r = srv.get("/api/v1/tokens", auth)
        assert r.status == 200, r
        assert r.header("Content-Type").startswith("application/json"), r
        listed = r.json()
        ids = {t["id"] for t in listed}
        assert {t.id for t in own} <= ids
        assert not ids & {t.id for t in other}
        assert {t["user"] for t in listed} == {user}
        for t in listed:
            assert "token" not in t and "secret" not in t and "secret_hash" not in t, t
        for t in mine + theirs:
            assert t.secret.split("_", 2)[2] not in r.text
    # a token lists the same (its account's) tokens
    r = srv.get("/api/v1/tokens", A.token_basic(mine[0]))
    assert {t["user"] for t in r.json()} == {"alice"}


def test_deleting_another_accounts_token_is_404(srv):
    bobs = created(api_create(srv, bob(), description="bob keeps it"))
    r = A.api(srv, "DELETE", f"/api/v1/tokens/{bobs.id}", alice())
    assert r.status == 404, r
    r = A.api(srv, "DELETE", f"/api/v1/tokens/{bobs.id}", A.token_basic(A.create_token(srv.data, "alice")))
    assert r.status == 404, r
    assert works(srv, bobs)
    assert state_of(srv, bobs.id) == "active"
    assert A.api(srv, "DELETE", "/api/v1/tokens/999999", alice()).status == 404
    assert not revoke_rows(srv, bobs)


def test_api_token_creation_is_audited_without_the_secret(srv):
    r = api_create(srv, alice(), projects=["tok-audit"], read_only=True, description="audited")
    token = created(r)
    rows = [row for row in A.audit(srv.data) if row.action == "token.create" and row.subject == token.public_id]
    assert len(rows) == 1, A.audit(srv.data)
    row = rows[0]
    assert (row.actor, row.address) == ("alice", "127.0.0.1"), row
    assert "tok-audit" in row.detail and "read-only" in row.detail, row
    assert token.secret.split("_", 2)[2] not in A.cli(srv.data, "audit").stdout


def test_read_only_token_cannot_revoke_tokens(srv):
    """A read-only token "can only read" (it is the one that ends up in pip.conf and Docker
    builds): it must not revoke the account's other tokens, e.g. the CI publishing token."""
    ci = A.create_token(srv.data, "alice", description="CI publishing")
    ro = A.create_token(srv.data, "alice", read_only=True, description="installs")
    r = A.api(srv, "DELETE", f"/api/v1/tokens/{ci.id}", A.token_basic(ro))
    assert r.status == 403, f"DELETE /api/v1/tokens/{ci.id} with a read-only token -> {r!r}"
    assert works(srv, ci)


def test_cli_revoke_of_an_unknown_token_fails(srv):
    proc = A.cli(srv.data, "token", "revoke", "999999", check=False)
    assert proc.returncode != 0, A.describe(proc)
    assert "999999" in proc.stdout + proc.stderr, A.describe(proc)
