"""Crash safety: kill -9 during an upload or right after one, restart on the same
data dir, and the index is consistent (nothing partial published, nothing
acknowledged lost)."""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path

import support

BIG = 50 * 1024 * 1024
TEMP_DIR_RE = re.compile(r"(^|[-_.])(tmp|temp|spool|staging|incoming|partial|uploads?)([-_.]|$)", re.I)


def files_containing(root: Path, marker: bytes) -> list[Path]:
    hits = []
    for p in root.rglob("*"):
        if not p.is_file() or p.is_symlink():
            continue
        tail = b""
        with open(p, "rb") as f:
            while chunk := f.read(4 << 20):
                if marker in tail + chunk:
                    hits.append(p)
                    break
                tail = chunk[-len(marker) :]
    return hits


def in_temp_area(path: Path, data: Path) -> bool:
    return any(TEMP_DIR_RE.search(part) for part in path.relative_to(data).parts[:-1])


def assert_index_consistent(server) -> int:
    """Every listed file downloads, with the listed size and sha256; returns the count."""
    count = 0
    for project in server.root_projects():
        page = server.project_json(project)
        assert page is not None, project
        for f in page["files"]:
            body = server.download(f["url"])
            assert len(body) == f["size"], f
            assert support.sha256_hex(body) == f["hashes"]["sha256"], f
            count += 1
    return count


def start_partial_upload(server, upload, dist, send_bytes: int) -> socket.socket:
    """Send headers and the first ``send_bytes`` of the file part, then stop."""
    fields = support.upload_fields(dist)
    body, ctype = support.encode_multipart(fields, [("content", dist.filename, dist.data, "application/octet-stream")])
    head = (
        f"POST /legacy/ HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: {ctype}\r\n"
        f"Authorization: {upload.auth_headers()['Authorization']}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    prefix_len = body.index(dist.data[:64])  # fields + part headers
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(head)
    sock.sendall(body[: prefix_len + send_bytes])
    return sock


def test_kill9_mid_upload_leaves_no_trace_and_retry_works(server, upload, dists):
    small = support.make_wheel(dists, "steady", "1.0")
    assert upload(server, small).status_code == 200

    payload = os.urandom(BIG)
    big = support.make_wheel(dists, "bigfile", "1.0", payload=payload)
    marker = payload[:64]

    sock = start_partial_upload(server, upload, big, send_bytes=BIG // 2)
    try:
        time.sleep(1.0)  # let the server spool what it received
        server.kill9()
    finally:
        sock.close()

    server.start()  # same data dir
    assert server.project_json("bigfile") is None or server.files("bigfile") == []
    assert "bigfile" not in server.root_projects()
    leftovers = [p for p in files_containing(server.data, marker) if not in_temp_area(p, server.data)]
    assert not leftovers, f"partial upload data outside the temp area: {leftovers}"
    assert assert_index_consistent(server) == 1

    r = upload(server, big, timeout=300)
    assert r.status_code == 200, (r.status_code, r.reason, r.text)
    f = server.file_named("bigfile", big.filename)
    assert f and f["hashes"]["sha256"] == big.sha256 and f["size"] == len(big.data)
    assert assert_index_consistent(server) == 2


def test_kill9_right_after_acknowledged_uploads_loses_nothing(server, upload, dists):
    published = []
    for i in range(5):
        w = support.make_wheel(dists, "durable", f"1.{i}", payload=os.urandom(64 * 1024))
        r = upload(server, w)
        assert r.status_code == 200, r.text
        published.append(w)
    server.kill9()
    server.start()
    listed = {f["filename"]: f["hashes"]["sha256"] for f in server.files("durable")}
    assert listed == {w.filename: w.sha256 for w in published}
    assert assert_index_consistent(server) == len(published)


def test_kill9_during_concurrent_uploads_keeps_index_consistent(server, upload, dists):
    """Several uploads in flight when the server dies: afterwards every listed file is whole,
    and re-uploading all of them succeeds (200) without conflicts."""
    import threading

    wheels = [support.make_wheel(dists / f"w{i}", "inflight", f"2.{i}", payload=os.urandom(2 * 1024 * 1024)) for i in range(6)]
    results: list[object] = []

    def send(w):
        try:
            results.append(upload(server, w, timeout=30).status_code)
        except Exception as e:  # noqa: BLE001 - connection errors are expected here
            results.append(type(e).__name__)

    threads = [threading.Thread(target=send, args=(w,)) for w in wheels]
    for t in threads:
        t.start()
    time.sleep(0.05)
    server.kill9()
    for t in threads:
        t.join(timeout=60)
    server.start()
    assert_index_consistent(server)
    for w in wheels:
        r = upload(server, w)
        assert r.status_code == 200, (w.filename, r.status_code, r.reason, r.text)
    listed = {f["filename"]: f["hashes"]["sha256"] for f in server.files("inflight")}
    assert listed == {w.filename: w.sha256 for w in wheels}
    assert assert_index_consistent(server) == len(wheels)
