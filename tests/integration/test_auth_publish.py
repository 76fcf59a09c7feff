"""Publishing in the `upload` access mode: twine and `uv publish` with API tokens, Bearer and
password logins; a project-limited token used for another project; anonymous uploads.

One server (``--auth upload``) for the module; each test uses its own projects.  Failed logins
here stay well under the throttle's 10 per address."""

from __future__ import annotations

import socket
import time

import pytest

import auth_support as A
import support


@pytest.fixture(scope="module")
def srv(module_server_factory):
    return module_server_factory("auth-publish", **A.server_args("upload"))


@pytest.fixture(scope="module")
def alice(srv):
    password = A.add_user(srv.data, "alice", "alice-Pw-771")
    return {
        "password": password,
        "token": A.create_token(srv.data, "alice", description="alice all projects"),
        "scoped": A.create_token(srv.data, "alice", projects=["pub-scoped-a"]),
    }


def publish_rows(srv, filename):
    return [r for r in A.audit(srv.data) if r.action == "publish" and r.subject == filename]


def assert_published(srv, dist_paths, actor):
    for p in dist_paths:
        listed = srv.file_named(support.normalize(p.name.split("-")[0]), p.name)
        assert listed is not None, f"{p.name} not in the index"
        assert listed["hashes"]["sha256"] == support.file_sha256(p)
        assert srv.download(listed["url"]) == p.read_bytes()
        rows = publish_rows(srv, p.name)
        assert len(rows) == 1, rows
        assert rows[0].actor == actor, rows
        assert rows[0].address == "127.0.0.1", rows
        assert support.file_sha256(p) in rows[0].detail, rows


def test_twine_upload_with_token_publishes_and_is_audited(srv, alice, clients, dists):
    files = [support.make_wheel(dists, "pub-twine", "1.0").path, support.make_sdist(dists, "pub-twine", "1.0").path]
    proc = A.clients_with_token(clients, alice["token"]).twine_upload(srv.upload_url, files)
    support.check(proc)
    assert_published(srv, files, "alice")
    # the first publisher of a new project becomes its owner
    assert "alice" in A.roles(srv.data, "pub-twine")


def test_uv_publish_with_token_publishes_and_is_audited(srv, alice, clients, dists):
    files = [support.make_wheel(dists, "pub-uv", "2.0").path, support.make_sdist(dists, "pub-uv", "2.0").path]
    proc = A.clients_with_token(clients, alice["token"]).uv_publish(srv.upload_url, files)
    support.check(proc)
    assert_published(srv, files, "alice")
    # and pip, reading anonymously (reads are open in the upload mode), sees the release
    versions = support.check(clients.pip_index_versions("pub-uv", srv.simple_url))
    assert "pub-uv (2.0)" in versions.stdout, support.describe(versions)


def test_twine_upload_with_account_password(srv, alice, clients, dists):
    wheel = support.make_wheel(dists, "pub-password", "1.0").path
    support.check(A.clients_as(clients, "alice", alice["password"]).twine_upload(srv.upload_url, [wheel]))
    assert_published(srv, [wheel], "alice")


def test_bearer_token_upload(srv, alice, dists):
    dist = support.make_wheel(dists, "pub-bearer", "1.0")
    r = A.raw_upload(srv, dist, A.bearer(alice["token"]))
    assert r.status == 200, r
    assert srv.file_named("pub-bearer", dist.filename) is not None
    assert len(publish_rows(srv, dist.filename)) == 1


def test_project_limited_token_publishes_to_its_project(srv, alice, clients, dists):
    wheel = support.make_wheel(dists, "pub-scoped-a", "1.0").path
    support.check(A.clients_with_token(clients, alice["scoped"]).twine_upload(srv.upload_url, [wheel]))
    assert srv.file_named("pub-scoped-a", wheel.name) is not None


def test_project_limited_token_refused_for_another_project_twine(srv, alice, clients, dists):
    before, blobs = A.index_state(srv), A.stored_blobs(srv.data)
    wheel = support.make_wheel(dists, "pub-scoped-b", "1.0").path
    proc = A.clients_with_token(clients, alice["scoped"]).twine_upload(srv.upload_url, [wheel])
    assert proc.returncode != 0, support.describe(proc)
    out = support.flat(proc.stdout)
    assert "403" in out, support.describe(proc)
    assert "This token is limited to the project(s) pub-scoped-a and may not act on 'pub-scoped-b'." in out, (
        support.describe(proc)
    )
    assert A.index_state(srv) == before
    assert srv.project_json("pub-scoped-b") is None
    assert A.stored_blobs(srv.data) == blobs
    assert publish_rows(srv, wheel.name) == []


def test_project_limited_token_refused_for_another_project_uv(srv, alice, clients, dists):
    before, blobs = A.index_state(srv), A.stored_blobs(srv.data)
    wheel = support.make_wheel(dists, "pub-scoped-c", "1.0").path
    proc = A.clients_with_token(clients, alice["scoped"]).uv_publish(srv.upload_url, [wheel])
    assert proc.returncode != 0, support.describe(proc)
    out = support.flat(proc.stdout)
    assert "403" in out and "may not act on 'pub-scoped-c'" in out, support.describe(proc)
    assert A.index_state(srv) == before
    assert A.stored_blobs(srv.data) == blobs


def test_anonymous_raw_upload_is_401_with_challenge(srv, dists):
    before, blobs = A.index_state(srv), A.stored_blobs(srv.data)
    dist = support.make_wheel(dists, "pub-anon", "1.0")
    r = A.raw_upload(srv, dist)
    A.assert_unauthorized(r)
    assert "requires credentials" in r.text, r
    assert A.index_state(srv) == before
    assert srv.project_json("pub-anon") is None
    assert A.stored_blobs(srv.data) == blobs


def test_anonymous_uv_publish_and_twine_without_a_token_are_refused(srv, clients, dists):
    """twine cannot send an anonymous upload (it refuses locally without credentials), so the
    client-side check is `uv publish` without credentials (uv sends the request, gets 401 and
    reports missing credentials) and twine with an empty token (401 from the server)."""
    before, blobs = A.index_state(srv), A.stored_blobs(srv.data)
    wheel = support.make_wheel(dists, "pub-anon-client", "1.0").path
    uv = clients.run(
        A.tool("uv"), "publish", "--no-config", "--trusted-publishing", "never",
        "--publish-url", srv.upload_url, str(wheel),
    )
    assert uv.returncode != 0, support.describe(uv)
    assert "credentials" in uv.stdout.lower(), support.describe(uv)

    twine = A.clients_with_token(clients, "").twine_upload(srv.upload_url, [wheel])
    assert twine.returncode != 0, support.describe(twine)
    assert "401" in twine.stdout, support.describe(twine)

    assert A.index_state(srv) == before
    assert A.stored_blobs(srv.data) == blobs


def first_response_head(srv, head: bytes, timeout: float = 5) -> bytes:
    """Send only ``head`` (request line and headers, no body) and read the answer's head."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=timeout) as s:
        s.sendall(head)
        received = b""
        deadline = time.monotonic() + timeout
        try:
            while b"\r\n\r\n" not in received and time.monotonic() < deadline:
                chunk = s.recv(4096)
                if not chunk:
                    break
                received += chunk
        except socket.timeout:
            pass
    return received


def upload_head(srv, *extra: str) -> bytes:
    lines = [
        "POST /legacy/ HTTP/1.1",
        f"Host: 127.0.0.1:{srv.port}",
        "Content-Type: multipart/form-data; boundary=pyindex-x",
        "Content-Length: 50000000",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_anonymous_upload_with_expect_continue_gets_401_without_100_continue(srv):
    """curl sends `Expect: 100-continue` for large uploads: an anonymous one must get its 401
    straight away, without being invited to send the body."""
    received = first_response_head(srv, upload_head(srv, "Expect: 100-continue"))
    status_line = received.split(b"\r\n", 1)[0].decode(errors="replace")
    assert status_line.startswith("HTTP/1.1 401"), (
        f"expected an immediate 401 for an anonymous upload with Expect: 100-continue; got {received[:300]!r}"
    )
    assert b'www-authenticate: basic realm="pyindex"' in received.lower()


def test_anonymous_upload_is_answered_without_its_body(srv):
    """A client that announces 50 MB and sends nothing still gets its 401 (the credentials
    are checked before the body, and the server does not wait for all of it)."""
    started = time.monotonic()
    received = first_response_head(srv, upload_head(srv), timeout=10)
    status_line = received.split(b"\r\n", 1)[0].decode(errors="replace")
    assert status_line.startswith("HTTP/1.1 401"), f"got {received[:300]!r}"
    assert time.monotonic() - started < 8


def test_reads_stay_anonymous_in_upload_mode(srv, alice, dists):
    dist = support.make_wheel(dists, "pub-read", "1.0")
    assert A.raw_upload(srv, dist, A.token_basic(alice["token"])).status == 200
    for path in ("/simple/", "/simple/pub-read/"):
        r = srv.get(path)
        assert r.status == 200, (path, r)
    url = srv.files("pub-read")[0]["url"]
    assert srv.download(url) == dist.data
