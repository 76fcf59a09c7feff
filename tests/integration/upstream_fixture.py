"""A static upstream simple index, served on loopback by the test suite itself.

Two variants: ``json=False`` answers PEP 503 HTML only (no sizes, no upload times);
``json=True`` also answers PEP 691 JSON with PEP 700 sizes and upload times when the client
asks for it.  Links are relative.  A file can be ``tampered`` (served bytes differ from the
listed hash) or ``slow`` (sent in small pieces with pauses).  ``hits`` counts requests per
path, so a test can assert how often pyindex went upstream.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import hashlib
import html
import json
import socket
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import support
from support import Dist

JSON_V1 = "application/vnd.pypi.simple.v1+json"


@dataclasses.dataclass
class Entry:
    dist: Dist
    upload_time: datetime.datetime | None = None
    yanked: str | None = None
    requires_python: str | None = None
    tampered: bool = False
    slow: bool = False

    @property
    def served(self) -> bytes:
        data = self.dist.data
        return data[:-1] + bytes([data[-1] ^ 0xFF]) if self.tampered else data

    @property
    def metadata(self) -> bytes | None:
        if self.dist.filetype != "bdist_wheel":
            return None
        with zipfile.ZipFile(self.dist.path) as zf:
            name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
            return zf.read(name)


class StaticIndex:
    def __init__(self, *, json: bool) -> None:
        self.json = json
        self.projects: dict[str, list[Entry]] = collections.defaultdict(list)
        self.files: dict[str, Entry] = {}
        self.hits: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None
        self._connections: set[socket.socket] = set()

    # -- content
    def add(self, dist: Dist, **kw) -> Entry:
        entry = Entry(dist=dist, **kw)
        self.projects[dist.project].append(entry)
        self.files[dist.filename] = entry
        return entry

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/simple/"

    def hit_count(self, path: str) -> int:
        with self._lock:
            return self.hits[path]

    def file_path(self, filename: str) -> str:
        return f"/files/{filename}"

    # -- rendering
    def page_html(self, project: str) -> bytes:
        links = []
        for e in self.projects[project]:
            attrs = f'href="../../files/{e.dist.filename}#sha256={e.dist.sha256}"'
            if e.requires_python:
                attrs += f' data-requires-python="{html.escape(e.requires_python)}"'
            if e.yanked is not None:
                attrs += f' data-yanked="{html.escape(e.yanked)}"'
            meta = e.metadata
            if meta is not None:
                attrs += f' data-dist-info-metadata="sha256={hashlib.sha256(meta).hexdigest()}"'
            links.append(f"<a {attrs}>{e.dist.filename}</a><br>")
        return f"<!DOCTYPE html><html><body><h1>{project}</h1>{''.join(links)}</body></html>".encode()

    def page_json(self, project: str) -> bytes:
        files = []
        for e in self.projects[project]:
            f = {
                "filename": e.dist.filename,
                "url": f"../../files/{e.dist.filename}",
                "hashes": {"sha256": e.dist.sha256},
                "requires-python": e.requires_python,
                "size": len(e.dist.data),
                "yanked": e.yanked if e.yanked else (e.yanked is not None),
            }
            if e.upload_time is not None:
                f["upload-time"] = e.upload_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            meta = e.metadata
            if meta is not None:
                f["core-metadata"] = {"sha256": hashlib.sha256(meta).hexdigest()}
            files.append(f)
        versions = sorted({e.dist.version for e in self.projects[project]})
        page = {"meta": {"api-version": "1.1"}, "name": project, "versions": versions, "files": files}
        return json.dumps(page).encode()

    # -- serving
    def start(self) -> "StaticIndex":
        index = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def setup(self) -> None:
                super().setup()
                with index._lock:
                    index._connections.add(self.connection)

            def send(self, status: int, body: bytes, ctype: str, etag: str | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                if etag:
                    self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?")[0]
                with index._lock:
                    index.hits[path] = index.hits[path] + 1
                parts = path.strip("/").split("/")
                if len(parts) == 2 and parts[0] == "simple" and parts[1] in index.projects:
                    return self.page(parts[1])
                if len(parts) == 2 and parts[0] == "files":
                    return self.file(parts[1])
                self.send(404, b"not found", "text/plain")

            def page(self, project: str) -> None:
                wants_json = index.json and JSON_V1 in self.headers.get("Accept", "")
                body = index.page_json(project) if wants_json else index.page_html(project)
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send(200, body, JSON_V1 if wants_json else "text/html", etag)

            def file(self, filename: str) -> None:
                if filename.endswith(".metadata") and filename[: -len(".metadata")] in index.files:
                    meta = index.files[filename[: -len(".metadata")]].metadata
                    if meta is not None:
                        return self.send(200, meta, "text/plain")
                entry = index.files.get(filename)
                if entry is None:
                    return self.send(404, b"not found", "text/plain")
                body = entry.served
                if not entry.slow:
                    return self.send(200, body, "application/octet-stream")
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                step = max(1, len(body) // 10)
                for i in range(0, len(body), step):
                    self.wfile.write(body[i : i + step])
                    self.wfile.flush()
                    time.sleep(0.1)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port or 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        # Also end kept-alive connections: a stopped upstream answers nothing.
        with self._lock:
            for conn in self._connections:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._connections.clear()


def wheel(out_dir, name: str, version: str, **kw) -> Dist:
    return support.make_wheel(out_dir, name, version, **kw)
