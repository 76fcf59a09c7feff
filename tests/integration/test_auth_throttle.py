"""Failed-login throttling: after 10 failed logins within 5 minutes from one client address,
further attempts from that address get 429 with Retry-After, even with the right credentials;
other addresses are not affected.  Each test has its own server (the throttle is per process
and per client address)."""

from __future__ import annotations

import http.client

import pytest

import auth_support as A
import support

MAX_FAILURES = 10
WINDOW_SECS = 300


@pytest.fixture
def srv(server_factory):
    s = server_factory("throttle", **A.server_args("upload"))
    A.add_user(s.data, "victim", "victim-Pw-901")
    return s


def get_tokens(srv, headers):
    return srv.get("/api/v1/tokens", headers)


def from_address(srv, source_ip: str, path: str, headers: dict) -> support.RawResponse:
    """A request from another loopback source address (127.0.0.0/8 is all local on Linux)."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30, source_address=(source_ip, 0))
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return support.RawResponse(resp.status, resp.reason, list(resp.getheaders()), resp.read())
    finally:
        conn.close()


def assert_throttled(r):
    assert r.status == 429, r
    retry = r.header("Retry-After")
    assert retry is not None and retry.isdigit(), r
    assert 1 <= int(retry) <= WINDOW_SECS, r
    assert not r.has_header("WWW-Authenticate"), r


def test_eleventh_attempt_after_ten_wrong_passwords_is_429_even_with_the_right_one(srv, dists):
    right = A.basic("victim", "victim-Pw-901")
    assert get_tokens(srv, right).status == 200  # the password works to begin with
    for i in range(MAX_FAILURES):
        r = get_tokens(srv, A.basic("victim", f"wrong-password-{i}"))
        A.assert_unauthorized(r)

    r = get_tokens(srv, right)
    assert_throttled(r)
    assert "Too many failed logins" in r.text, r

    # every kind of credential and route is throttled for this address, uploads included
    token = A.create_token(srv.data, "victim")
    assert_throttled(get_tokens(srv, A.bearer(token)))
    dist = support.make_wheel(dists, "throttled-pkg", "1.0")
    assert_throttled(A.raw_upload(srv, dist, A.token_basic(token)))
    assert srv.project_json("throttled-pkg") is None

    # anonymous reads need no login and are not refused
    assert srv.get("/simple/").status == 200
    assert srv.get("/health").status == 200

    # the lockout is per client address: another loopback address still logs in
    r = from_address(srv, "127.0.0.2", "/api/v1/tokens", right)
    assert r.status == 200, r

    # and the server says why in its log, without the passwords
    log = srv.log_text()
    assert "failed login" in log
    assert "wrong-password-" not in log and "victim-Pw-901" not in log


def test_a_successful_login_does_not_reset_the_failure_count(srv):
    """An address that mixes in logins with its own valid token must still be locked out after
    10 failures in the window; otherwise anyone holding any token can guess other accounts'
    passwords without limit."""
    own = A.create_token(srv.data, "victim", read_only=True)
    failures = 0
    for _round in range(2):
        for _ in range(MAX_FAILURES // 2):
            r = get_tokens(srv, A.token_basic(f"pyindex_{'0' * 16}_guess{failures}"))
            A.assert_unauthorized(r)
            failures += 1
        r = get_tokens(srv, A.token_basic(own))
        assert r.status in (200, 429), r
    assert failures == MAX_FAILURES
    r = get_tokens(srv, A.basic("victim", "victim-Pw-901"))
    assert_throttled(r)
