"""Running as a service (README "Running as a service"): /health and /ready without
credentials on any Host, Prometheus /metrics counting what was requested (parsed with the
Prometheus text-format parser) and its guard, request ids in JSON logs, and SIGTERM in the
middle of a 200 MiB upload."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import threading
import time

from prometheus_client.parser import text_string_to_metric_families

import auth_support as A
import support

PROJECT_ROUTE = "/simple/{project}/"


def scrape(srv, headers: dict[str, str] | None = None) -> dict[tuple[str, frozenset], float]:
    """Every sample of /metrics, keyed by sample name and label set."""
    r = srv.get("/metrics", headers)
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("text/plain; version=0.0.4"), r
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def get_with_host(srv, path: str, host: str, headers: dict[str, str] | None = None) -> support.RawResponse:
    """GET ``path`` from the server's loopback address with exactly ``host`` in Host."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        for k, v in {"Host": host, **(headers or {})}.items():
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        return support.RawResponse(resp.status, resp.reason, list(resp.getheaders()), resp.read())
    finally:
        conn.close()


def test_health_and_ready_answer_any_host(server):
    for path, body in (("/health", "ok\n"), ("/ready", "ready\n")):
        for host in (f"127.0.0.1:{server.port}", "10.1.2.3:9001", "evil.example"):
            r = get_with_host(server, path, host)
            assert r.status == 200 and r.text == body, (path, host, r)
            assert r.header("Cache-Control") == "no-store", r
    # the index itself still refuses a foreign name on a loopback server (DNS rebinding)
    assert get_with_host(server, "/simple/", "evil.example").status == 421


def test_ready_fails_when_the_files_directory_is_unusable(server):
    files = server.data / "files"
    away = server.data / "files.away"
    files.rename(away)
    files.write_bytes(b"not a directory")  # root ignores permissions; a file in its place does not pass
    try:
        r = server.get("/ready")
        assert r.status == 503, r
        assert "storage" in r.text and "catalog" not in r.text, r
        assert server.get("/health").status == 200, "alive even when not ready"
        assert "readiness check: the file storage is not writable" in server.log_text()
    finally:
        files.unlink()
        away.rename(files)
    assert server.get("/ready").status == 200


def test_probes_and_public_metrics_need_no_credentials_in_all_mode(server_factory):
    srv = server_factory("all", **A.server_args("all"))
    A.assert_unauthorized(srv.get("/simple/"))
    assert srv.get("/health").status == 200
    assert srv.get("/ready").status == 200
    assert value(scrape(srv), "pyindex_http_requests_total", route="/simple/", method="GET", status="401") == 1


def test_metrics_count_what_was_requested(server, upload, dists):
    wheel = support.make_wheel(dists, "counted", "1.0")
    before_upload = scrape(server)
    assert upload(server, wheel).status_code == 200
    before = scrape(server)
    assert value(before, "pyindex_uploads_total", outcome="published") == 1
    assert value(before, "pyindex_catalog_generation") > value(before_upload, "pyindex_catalog_generation")

    n = 7
    bodies = set()
    for _ in range(n):
        r = server.get("/simple/counted/", {"Accept": "text/html"})
        assert r.status == 200, r
        bodies.add(r.body)
    assert len(bodies) == 1
    assert server.get("/simple/no-such-project/").status == 404
    other = support.make_wheel(dists, "counted", "1.0", salt="other bytes")
    assert upload(server, other).status_code == 409
    r = server.request("POST", "/legacy/", {"Content-Type": "text/plain"}, b"not a form")
    assert r.status == 400, r
    after = scrape(server)

    def grew(name: str, **labels) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ok = {"route": PROJECT_ROUTE, "method": "GET"}
    assert grew("pyindex_http_requests_total", **ok, status="200") == n
    assert grew("pyindex_http_requests_total", **ok, status="404") == 1
    assert grew("pyindex_http_requests_total", route="/legacy/", method="POST", status="409") == 1
    assert grew("pyindex_http_requests_total", route="/legacy/", method="POST", status="400") == 1
    assert grew("pyindex_http_request_duration_seconds_count", route=PROJECT_ROUTE) == n + 1
    assert grew("pyindex_http_request_duration_seconds_bucket", route=PROJECT_ROUTE, le="+Inf") == n + 1
    page_bytes = len(bodies.pop())
    not_found_bytes = len(server.get("/simple/no-such-project/").body)
    assert grew("pyindex_http_response_bytes_total", route=PROJECT_ROUTE) == n * page_bytes + not_found_bytes
    assert grew("pyindex_uploads_total", outcome="conflict") == 1
    assert grew("pyindex_uploads_total", outcome="bad_request") == 1
    assert grew("pyindex_uploads_total", outcome="published") == 0
    hits = grew("pyindex_cache_lookups_total", cache="page", result="hit")
    misses = grew("pyindex_cache_lookups_total", cache="page", result="miss")
    assert hits + misses == n + 1  # the n pages and the unknown project
    assert hits >= n - 1, (hits, misses)
    assert value(after, "pyindex_catalog_generation") == value(before, "pyindex_catalog_generation")


def test_private_metrics_need_an_admin(server_factory):
    args = A.server_args("upload")
    args["extra_args"] += ["--metrics", "private"]
    srv = server_factory("private", **args)
    A.assert_unauthorized(srv.get("/metrics"))
    A.add_user(srv.data, "bob", "bob-Pw-40331")
    assert srv.get("/metrics", A.basic("bob", "bob-Pw-40331")).status == 403
    assert srv.get("/metrics", A.basic("admin", A.ADMIN_PASSWORD)).status == 200
    token = A.create_token(srv.data, "admin", read_only=True, description="prometheus")
    samples = scrape(srv, A.bearer(token))
    assert value(samples, "pyindex_http_requests_total", route="/metrics", method="GET", status="401") == 1
    scoped = A.create_token(srv.data, "admin", projects=["one"])
    assert srv.get("/metrics", A.bearer(scoped)).status == 403
    assert get_with_host(srv, "/metrics", "evil.example", A.bearer(token)).status == 200


def test_metrics_off(server_factory):
    srv = server_factory("off", extra_env={"PYINDEX_METRICS": "off"})
    r = srv.get("/metrics")
    assert r.status == 404 and "--metrics off" in r.text, r


def test_json_logs_carry_the_request_id(server_factory):
    srv = server_factory("json", extra_args=["--log-format", "json"])
    r = srv.get("/simple/")
    generated = r.header("x-request-id")
    assert generated and re.fullmatch(r"[0-9a-f]{16}-[0-9a-f]{16}", generated), r
    mine = "req-from-the-client-42"
    assert srv.get("/simple/absent/", {"X-Request-Id": mine}).header("x-request-id") == mine

    def response_lines():
        lines = [ln for ln in srv.log_text().splitlines() if ln and not ln.startswith("===== start")]
        events = [json.loads(ln) for ln in lines]  # every line is one JSON object
        return [e for e in events if e.get("fields", {}).get("message") == "request answered"]

    support.wait_until(lambda: len(response_lines()) >= 2, timeout=5, what="two response log lines")
    by_id = {e["span"]["id"]: e for e in response_lines()}
    assert by_id[generated]["span"]["path"] == "/simple/"
    assert by_id[generated]["fields"]["status"] == 200
    assert by_id[mine]["span"]["method"] == "GET"
    assert by_id[mine]["fields"]["status"] == 404
    assert by_id[mine]["level"] == "INFO"
    assert isinstance(by_id[mine]["fields"]["latency_us"], int)


def test_request_log_off_writes_no_request_lines_but_keeps_the_rest(server_factory):
    srv = server_factory("quiet", extra_args=["--request-log", "off"])
    for path in ("/simple/", "/simple/absent/", "/health"):
        srv.get(path)
    # A line logged after the requests, through the same writer: when it is there, any request
    # line would be too.
    srv.stop()
    log = srv.log_text()
    assert "shutting down" in log, log
    assert "request answered" not in log, log
    assert "x-request-id" not in log and "request{" not in log, log


def connection_refused(port: int) -> bool:
    """No new connection is taken: refused, or reset when the listener closed with it queued."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except (ConnectionRefusedError, ConnectionResetError):
        return True
    return False


def test_sigterm_in_the_middle_of_a_200_mib_upload(server_factory, upload, dists):
    srv = server_factory("sigterm", extra_args=["--shutdown-timeout", "4s"])
    wheel = support.make_wheel(dists, "big-upload", "1.0", payload=os.urandom(200 * 1024 * 1024))
    head, body = support.raw_upload_bytes(srv.port, wheel, upload.auth_headers()["Authorization"])
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    half = len(body) // 2
    s.sendall(head + body[:half])
    spool = srv.data / "tmp"

    def spooled() -> int:
        return sum(p.stat().st_size for p in spool.iterdir())

    support.wait_until(lambda: spooled() > 50 * 1024 * 1024, timeout=60, what="half the upload spooled")
    stop_sending = threading.Event()

    def trickle():
        """The client keeps sending, slowly: the upload cannot finish within the bound."""
        offset = half
        try:
            while not stop_sending.is_set() and offset < len(body):
                s.sendall(body[offset : offset + 64 * 1024])
                offset += 64 * 1024
                time.sleep(0.05)
        except OSError:
            pass

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    try:
        sent = time.monotonic()
        srv.expected_down = True
        os.kill(srv.pid, signal.SIGTERM)
        support.wait_until(lambda: connection_refused(srv.port), timeout=5, what="new connections refused")
        code = srv.proc.wait(timeout=30)
        took = time.monotonic() - sent
    finally:
        stop_sending.set()
        sender.join(timeout=10)
        s.close()
    assert code == 0, srv.log_tail()
    assert took < 10, f"exit took {took:.1f}s after SIGTERM"
    assert "shutdown timeout reached" in srv.log_text(), srv.log_tail()
    assert list(spool.iterdir()) == [], "the unfinished upload's spool file was left behind"

    srv.start()
    # The body never arrived whole, so "whole or not at all" can only be "not at all".
    assert srv.file_named("big-upload", wheel.filename) is None
    assert srv.project_json("big-upload") is None
    assert list(spool.iterdir()) == []
    assert srv.get("/ready").status == 200
