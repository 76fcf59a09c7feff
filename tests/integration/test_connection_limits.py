"""No client can wear the server down: header, keep-alive, body and shutdown bounds,
the raised open-file limit and the connection cap (README "Limits and timeouts")."""

from __future__ import annotations

import os
import resource
import selectors
import signal
import socket
import time
from pathlib import Path

import pytest

import support

# Margin for scheduling on a loaded 2-core machine when checking that a bound was kept.
SLACK = 8.0


def half_head(port: int) -> socket.socket:
    """A connection that sent half a request head and then nothing."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /simple/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slo")
    return s


def wait_closed(sockets: list[socket.socket], deadline: float) -> list[socket.socket]:
    """Waits until the server closed each socket (EOF or reset), until ``deadline``
    (time.monotonic()); returns those still open then."""
    sel = selectors.DefaultSelector()
    for s in sockets:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    open_ = set(sockets)
    try:
        while open_ and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=max(0.0, min(1.0, deadline - time.monotonic()))):
                s = key.fileobj
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(s)
                    open_.discard(s)
    finally:
        sel.close()
    return list(open_)


def read_response(s: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (or ``timeout``)."""
    s.settimeout(timeout)
    out = b""
    try:
        while chunk := s.recv(65536):
            out += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    return out


def close_all(sockets: list[socket.socket]) -> None:
    for s in sockets:
        try:
            s.close()
        except OSError:
            pass


def test_half_sent_heads_are_closed_within_the_header_timeout(server_factory):
    srv = server_factory("header", extra_args=["--header-timeout", "2s", "--keep-alive-timeout", "60s"])
    started = time.monotonic()
    slow = [half_head(srv.port) for _ in range(20)]
    try:
        still_open = wait_closed(slow, started + 2 + SLACK)
        assert not still_open, f"{len(still_open)} half-sent heads still open after the header timeout"
        assert srv.get("/health").status == 200
    finally:
        close_all(slow)


def test_idle_keep_alive_connection_is_closed_after_the_idle_bound(server_factory):
    srv = server_factory("idle", extra_args=["--keep-alive-timeout", "2s", "--header-timeout", "60s"])
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    try:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 200"), first
        answered = time.monotonic()
        assert wait_closed([s], answered + 1.0) == [s], "closed before the keep-alive timeout"
        assert not wait_closed([s], answered + 2 + SLACK), "idle connection not closed after the keep-alive timeout"
    finally:
        s.close()


def test_at_the_cap_the_connection_waiting_longest_makes_room(server_factory):
    srv = server_factory(
        "cap", extra_args=["--max-connections", "5", "--header-timeout", "120s", "--keep-alive-timeout", "120s"]
    )
    slow = []
    for _ in range(5):
        slow.append(half_head(srv.port))
        time.sleep(0.2)  # accepted in this order
    try:
        time.sleep(0.5)  # let the server accept all five
        client = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        client.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        # Served long before any slow connection's header timeout would free a place.
        answer = read_response(client, timeout=20)
        client.close()
        assert answer.startswith(b"HTTP/1.1 200"), answer
        assert not wait_closed(slow[:1], time.monotonic() + 20), "the connection waiting longest is still open"
        assert len(wait_closed(slow[1:], time.monotonic() + 1)) == 4, "newer slow connections were closed too"
    finally:
        close_all(slow)


def stalled_upload(srv, upload, dists) -> tuple[socket.socket, Path]:
    """Starts an upload whose body stops in the middle of the file; returns the socket
    once the server has spooled the first part, and the spool directory."""
    wheel = support.make_wheel(dists, "stall-pkg", "1.0", payload=os.urandom(2 * 1024 * 1024))
    head, body = support.raw_upload_bytes(srv.port, wheel, upload.auth_headers()["Authorization"])
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(head + body[: len(body) // 2])
    spool = srv.data / "tmp"
    support.wait_until(lambda: any(spool.iterdir()), timeout=5, what="the upload being spooled")
    return s, spool


def test_stalled_upload_is_aborted_and_its_spool_file_removed(server_factory, upload, dists):
    srv = server_factory("stall", extra_args=["--body-timeout", "2s"])
    s, spool = stalled_upload(srv, upload, dists)
    try:
        answer = read_response(s, timeout=2 + SLACK)
    finally:
        s.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
    assert b"stalled" in answer and b"--body-timeout" in answer, answer
    support.wait_until(lambda: not any(spool.iterdir()), timeout=5, what="spool directory emptied")
    assert srv.project_json("stall-pkg") is None


def test_shutdown_with_slow_clients_finishes_within_its_bound(server_factory, upload, dists):
    srv = server_factory(
        "shutdown",
        extra_args=["--shutdown-timeout", "2s", "--header-timeout", "120s", "--keep-alive-timeout", "120s",
                    "--body-timeout", "120s"],
    )
    slow = [half_head(srv.port) for _ in range(10)]
    stalled, _ = stalled_upload(srv, upload, dists)
    try:
        sent = time.monotonic()
        srv.expected_down = True
        os.kill(srv.pid, signal.SIGTERM)
        code = srv.proc.wait(timeout=2 + SLACK + 20)
        took = time.monotonic() - sent
    finally:
        close_all([*slow, stalled])
    assert code == 0, srv.log_tail()
    assert took < 2 + SLACK, f"shutdown took {took:.1f}s with a 2s bound"
    assert "shutdown timeout reached" in srv.log_text()


@pytest.fixture
def low_soft_limit():
    """Start servers with a soft RLIMIT_NOFILE of 1024 (children inherit it), then give this
    process the hard limit for its own sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2300:
        pytest.skip(f"the hard open-file limit ({hard}) is too low for 2,000 connections")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def soft_open_files(pid: int) -> str:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return line.split()[3]
    raise AssertionError("no open-file limit in /proc")


def server_sockets(pid: int) -> int:
    """How many sockets the server process holds (its own view of open connections)."""
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            count += os.readlink(fd).startswith("socket:")
        except OSError:
            pass  # closed meanwhile
    return count


def test_installs_succeed_beside_2000_slow_connections(
    server_factory, low_soft_limit, upload, dists, make_venv
):
    header_timeout = 30  # the default
    # Generous: on a loaded machine the server may accept (and start timing) a connection well
    # after the client's connect returned. The bound proven is "closed", not "closed promptly".
    margin = 60
    srv = server_factory("slowloris")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    assert soft_open_files(srv.pid) == ("unlimited" if hard == resource.RLIM_INFINITY else str(hard))
    assert "open-file limit (RLIMIT_NOFILE) set to the hard limit before=1024" in srv.log_text()
    wheel = support.make_wheel(dists, "slowloris-ok", "1.0")
    assert upload(srv, wheel).status_code == 200
    venv_pip, venv_uv = make_venv(), make_venv()
    idle_sockets = server_sockets(srv.pid)

    slow: list[socket.socket] = []
    try:
        started = time.monotonic()
        for _ in range(2000):
            slow.append(half_head(srv.port))
        opened = time.monotonic()
        support.check(venv_pip.pip_install("slowloris-ok", index_url=srv.simple_url))
        support.check(venv_uv.uv_install("slowloris-ok", index_url=srv.simple_url))
        assert venv_pip.installed().get("slowloris-ok") == "1.0"
        assert venv_uv.installed().get("slowloris-ok") == "1.0"
        if time.monotonic() - started > header_timeout:
            pytest.fail("the installs outlasted the header timeout: the slow connections were not all open")
        # All sockets are watched at once (epoll), so the test's reading speed does not matter.
        still_open = wait_closed(slow, opened + header_timeout + margin)
        assert not still_open, f"{len(still_open)} of 2000 slow connections still open after the header timeout"
        # The server's own view: it holds no more sockets than before (listener, idle clients).
        support.wait_until(
            lambda: server_sockets(srv.pid) <= idle_sockets + 2, timeout=10, what="the server's sockets closed"
        )
    finally:
        close_all(slow)


def test_client_that_stops_reading_is_dropped(server_factory, upload, dists):
    """A download whose client reads nothing: the server stops after keep-alive + body timeouts
    of silence instead of holding the connection (and the file) forever."""
    srv = server_factory("slow-reader", extra_args=["--keep-alive-timeout", "1s", "--body-timeout", "1s"])
    wheel = support.make_wheel(dists, "big-read", "1.0", payload=os.urandom(16 * 1024 * 1024))
    assert upload(srv, wheel).status_code == 200
    url = srv.files("big-read")[0]["url"]
    path = "/" + url.split("/", 3)[3] if "://" in url else url
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.connect(("127.0.0.1", srv.port))
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        time.sleep(2 + SLACK)  # read nothing
        s.settimeout(10)
        received = b""
        while chunk := s.recv(1 << 20):  # a timeout here means the server still holds it
            received += chunk
    except ConnectionResetError:
        pass
    finally:
        s.close()
    assert received.startswith(b"HTTP/1.1 200"), received[:200]
    assert len(received) < len(wheel.data), "the whole file arrived: the server never gave up"
