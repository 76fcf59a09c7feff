"""Helpers for the pyindex integration suite (no fixtures here; see conftest.py).

- building real wheels and sdists by hand (deterministic bytes, crafted bad inputs),
- a hand-written multipart/form-data encoder and the legacy upload form,
- raw HTTP requests without any client-side magic (no redirects, no decoding),
- parsing the simple index pages (HTML anchors, JSON),
- running client programs with a hermetic environment.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import html.parser
import http.client
import io
import json
import os
import signal
import ssl
import re
import subprocess
import sys
import tarfile
import time
import urllib.parse
import uuid
import zipfile
from pathlib import Path
from typing import Callable, Iterable, Sequence

JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
TEXT_HTML = "text/html"
# Exact Accept headers sent by the clients (standards M1).
PIP_ACCEPT = f"{JSON_V1}, {HTML_V1}; q=0.1, text/html; q=0.01"
UV_ACCEPT = f"{JSON_V1}, {HTML_V1};q=0.2, text/html;q=0.01"
POETRY_ACCEPT = f"{JSON_V1}, */*;q=0.1"
BROWSER_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
)

ZIP_EPOCH = (2020, 1, 1, 0, 0, 0)


# --------------------------------------------------------------------------- names


def normalize(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def dist_stem(name: str) -> str:
    """Project name as written in wheel and sdist filenames (PEP 625 / wheel spec)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- distributions


@dataclasses.dataclass
class Dist:
    """A distribution file on disk plus what the upload form needs to know about it."""

    path: Path
    name: str  # metadata Name (display form)
    version: str
    filetype: str  # "bdist_wheel" | "sdist"
    pyversion: str  # "py3" | "source"
    metadata: bytes | None  # METADATA / PKG-INFO bytes as stored in the archive
    metadata_version: str = "2.4"

    @property
    def filename(self) -> str:
        return self.path.name

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()

    @property
    def sha256(self) -> str:
        return file_sha256(self.path)

    @property
    def md5(self) -> str:
        return hashlib.md5(self.path.read_bytes()).hexdigest()

    @property
    def project(self) -> str:
        return normalize(self.name)


def render_metadata(
    name: str,
    version: str,
    *,
    metadata_version: str = "2.4",
    summary: str | None = "An integration-test package",
    requires_python: str | None = None,
    requires_dist: Sequence[str] = (),
    classifiers: Sequence[str] = (),
    dynamic: Sequence[str] = (),
    extra_headers: Sequence[tuple[str, str]] = (),
    description: str | None = "Built by the pyindex integration suite.\n",
) -> bytes:
    lines = [f"Metadata-Version: {metadata_version}", f"Name: {name}", f"Version: {version}"]
    if summary is not None:
        lines.append(f"Summary: {summary}")
    for c in classifiers:
        lines.append(f"Classifier: {c}")
    if requires_python is not None:
        lines.append(f"Requires-Python: {requires_python}")
    for r in requires_dist:
        lines.append(f"Requires-Dist: {r}")
    for d in dynamic:
        lines.append(f"Dynamic: {d}")
    for k, v in extra_headers:
        lines.append(f"{k}: {v}")
    text = "\n".join(lines) + "\n"
    if description is not None:
        text += "Description-Content-Type: text/plain\n\n" + description
    return text.encode("utf-8")


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def _zip_write(zf: zipfile.ZipFile, arcname: str, data: bytes, compress: bool = True) -> None:
    info = zipfile.ZipInfo(arcname, date_time=ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def make_wheel(
    out_dir: Path,
    name: str,
    version: str,
    *,
    requires_python: str | None = None,
    requires_dist: Sequence[str] = (),
    metadata: bytes | None = None,
    metadata_version: str = "2.4",
    classifiers: Sequence[str] = (),
    tag: str = "py3-none-any",
    filename: str | None = None,
    salt: str = "",
    payload: bytes = b"",
    include_metadata: bool = True,
    dist_info_name: str | None = None,
    extra_members: Sequence[tuple[str, bytes]] = (),
) -> Dist:
    """Write a real, installable wheel (METADATA, WHEEL, RECORD; deterministic bytes).

    ``salt`` changes the bytes without changing the metadata, to craft "same
    filename, different content".  ``metadata`` replaces the generated METADATA
    verbatim.  ``dist_info_name``/``filename`` let tests craft mismatches.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = dist_stem(name)
    filename = filename or f"{stem}-{version}-{tag}.whl"
    dist_info = dist_info_name or f"{stem}-{version}.dist-info"
    if metadata is None:
        metadata = render_metadata(
            name,
            version,
            metadata_version=metadata_version,
            requires_python=requires_python,
            requires_dist=requires_dist,
            classifiers=classifiers,
        )
    module = f"{stem}/__init__.py"
    module_src = f'__version__ = "{version}"\nSALT = {salt!r}\n'.encode()
    wheel_file = (
        "Wheel-Version: 1.0\nGenerator: pyindex-tests\nRoot-Is-Purelib: true\n"
        + "".join(f"Tag: {t}\n" for t in _expand_tag(tag))
    ).encode()
    members: list[tuple[str, bytes]] = [(module, module_src)]
    if payload:
        members.append((f"{stem}/payload.bin", payload))
    members.extend(extra_members)
    if include_metadata:
        members.append((f"{dist_info}/METADATA", metadata))
    members.append((f"{dist_info}/WHEEL", wheel_file))
    record_lines = [f"{n},{_record_hash(d)},{len(d)}" for n, d in members]
    record_lines.append(f"{dist_info}/RECORD,,")
    members.append((f"{dist_info}/RECORD", ("\n".join(record_lines) + "\n").encode()))
    path = out_dir / filename
    with zipfile.ZipFile(path, "w") as zf:
        for n, d in members:
            # store the big random payload uncompressed (fast, and keeps its bytes visible)
            _zip_write(zf, n, d, compress=not (payload and n.endswith("payload.bin")))
    return Dist(
        path=path,
        name=name,
        version=version,
        filetype="bdist_wheel",
        pyversion=tag.split("-")[0],
        metadata=metadata if include_metadata else None,
        metadata_version=metadata_version,
    )


def _expand_tag(tag: str) -> list[str]:
    py, abi, plat = tag.split("-")
    return [f"{p}-{a}-{q}" for p in py.split(".") for a in abi.split(".") for q in plat.split(".")]


def make_sdist(
    out_dir: Path,
    name: str,
    version: str,
    *,
    requires_python: str | None = None,
    requires_dist: Sequence[str] = (),
    metadata_version: str = "2.4",
    dynamic: Sequence[str] = (),
    metadata: bytes | None = None,
    filename: str | None = None,
    salt: str = "",
) -> Dist:
    """Write a PEP 625 sdist ``{stem}-{version}.tar.gz`` with a PKG-INFO (deterministic bytes)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = dist_stem(name)
    top = f"{stem}-{version}"
    if metadata is None:
        metadata = render_metadata(
            name,
            version,
            metadata_version=metadata_version,
            requires_python=requires_python,
            requires_dist=requires_dist,
            dynamic=dynamic,
        )
    pyproject = (
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n\n'
        f'[project]\nname = "{name}"\nversion = "{version}"\n'
    ).encode()
    members = [
        (f"{top}/PKG-INFO", metadata),
        (f"{top}/pyproject.toml", pyproject),
        (f"{top}/{stem}/__init__.py", f'__version__ = "{version}"\nSALT = {salt!r}\n'.encode()),
    ]
    path = out_dir / (filename or f"{top}.tar.gz")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for n, d in members:
            ti = tarfile.TarInfo(n)
            ti.size = len(d)
            ti.mtime = 1577836800
            ti.mode = 0o644
            ti.uname = ti.gname = ""
            tf.addfile(ti, io.BytesIO(d))
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0) as g:
        g.write(raw.getvalue())
    path.write_bytes(gz.getvalue())
    return Dist(
        path=path,
        name=name,
        version=version,
        filetype="sdist",
        pyversion="source",
        metadata=metadata,
        metadata_version=metadata_version,
    )


def write_project(
    root: Path,
    name: str,
    version: str,
    *,
    dependencies: Sequence[str] = (),
    requires_python: str | None = None,
    backend: str = "hatchling",
) -> Path:
    """A real source tree for ``name`` (one import package named after it)."""
    root.mkdir(parents=True, exist_ok=True)
    pkg = dist_stem(name)
    (root / pkg).mkdir(exist_ok=True)
    (root / pkg / "__init__.py").write_text(f'"""{name} test package."""\n__version__ = "{version}"\n')
    (root / "README.md").write_text(f"# {name}\n\nIntegration-test package.\n")
    deps = ", ".join(json.dumps(d) for d in dependencies)
    rp = f'requires-python = "{requires_python}"\n' if requires_python else ""
    if backend == "hatchling":
        build_system = '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
    elif backend == "poetry":
        build_system = '[build-system]\nrequires = ["poetry-core>=2"]\nbuild-backend = "poetry.core.masonry.api"\n'
    elif backend == "flit":
        build_system = '[build-system]\nrequires = ["flit_core>=3.4"]\nbuild-backend = "flit_core.buildapi"\n'
    else:
        raise ValueError(backend)
    (root / "pyproject.toml").write_text(
        f"{build_system}\n[project]\nname = \"{name}\"\nversion = \"{version}\"\n"
        f'description = "{name} integration-test package"\nreadme = "README.md"\n{rp}'
        f"dependencies = [{deps}]\n"
    )
    return root


# --------------------------------------------------------------------------- multipart + upload


def encode_multipart(
    fields: Iterable[tuple[str, str]],
    files: Iterable[tuple[str, str, bytes, str | None]] = (),
    boundary: str | None = None,
) -> tuple[bytes, str]:
    """Encode multipart/form-data by hand so that tests control every byte.

    ``files`` items are (field name, filename, bytes, part content type or None).
    Filenames are written verbatim (only ``"`` is escaped) so that bad names reach
    the server unchanged.
    """
    boundary = boundary or "pyindex-" + uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields:
        out.write(f"--{boundary}\r\n".encode())
        out.write(f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.write(value.encode("utf-8"))
        out.write(b"\r\n")
    for name, filename, data, ctype in files:
        out.write(f"--{boundary}\r\n".encode())
        fn = filename.replace('"', "%22").encode("utf-8", "surrogateescape")
        out.write(f'Content-Disposition: form-data; name="{name}"; filename="'.encode() + fn + b'"\r\n')
        if ctype:
            out.write(f"Content-Type: {ctype}\r\n".encode())
        out.write(b"\r\n")
        out.write(data)
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def upload_fields(dist: Dist, *, digests: Sequence[str] = ("sha256",)) -> list[tuple[str, str]]:
    """The text fields twine would send for ``dist`` (subset that the server needs)."""
    fields = [
        (":action", "file_upload"),
        ("protocol_version", "1"),
        ("metadata_version", dist.metadata_version),
        ("name", dist.name),
        ("version", dist.version),
        ("filetype", dist.filetype),
        ("pyversion", dist.pyversion),
    ]
    data = dist.data
    if "sha256" in digests:
        fields.append(("sha256_digest", hashlib.sha256(data).hexdigest()))
    if "md5" in digests:
        fields.append(("md5_digest", hashlib.md5(data).hexdigest()))
    if "blake2_256" in digests:
        fields.append(("blake2_256_digest", hashlib.blake2b(data, digest_size=32).hexdigest()))
    return fields


def raw_upload_bytes(port: int, dist: Dist, authorization: str) -> tuple[bytes, bytes]:
    """The head and body of an HTTP/1.1 upload of ``dist`` to ``/legacy/``, for tests that send
    them over a raw socket at their own pace."""
    body, ctype = encode_multipart(
        upload_fields(dist), [("content", dist.filename, dist.data, "application/octet-stream")]
    )
    head = (
        f"POST /legacy/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\nAuthorization: {authorization}\r\n\r\n"
    ).encode()
    return head, body


def basic_auth_header(credentials) -> str:
    token = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
    return f"Basic {token}"


def with_overrides(
    fields: list[tuple[str, str]],
    overrides: dict[str, str | None] | None = None,
) -> list[tuple[str, str]]:
    """Replace (value) or drop (None) fields; unknown keys are appended."""
    overrides = dict(overrides or {})
    out = []
    for k, v in fields:
        if k in overrides:
            nv = overrides.pop(k)
            if nv is not None:
                out.append((k, nv))
        else:
            out.append((k, v))
    out.extend((k, v) for k, v in overrides.items() if v is not None)
    return out


# --------------------------------------------------------------------------- raw HTTP


@dataclasses.dataclass
class RawResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        vals = self.header_all(name)
        return ", ".join(vals) if vals else None

    def header_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def has_header(self, name: str) -> bool:
        return bool(self.header_all(name))

    def header_tokens(self, name: str) -> set[str]:
        v = self.header(name) or ""
        return {t.strip().lower() for t in v.split(",") if t.strip()}

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def __repr__(self) -> str:  # shows up in assertion messages
        hdrs = "; ".join(f"{k}: {v}" for k, v in self.headers)
        return f"<{self.status} {self.reason} [{hdrs}] body={self.body[:300]!r}>"


def raw_request(
    base_url: str,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 30,
    tls_context: ssl.SSLContext | None = None,
) -> RawResponse:
    """One HTTP/1.1 request with exactly the given headers (plus Host), no redirects,
    no content decoding.  ``path`` is sent verbatim (already percent-encoded).  An
    ``https`` base URL is reached with ``tls_context``."""
    u = urllib.parse.urlsplit(base_url)
    if u.scheme == "https":
        conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=timeout, context=tls_context)
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        hdrs = dict(headers or {})
        if body is not None and not any(k.lower() == "content-length" for k in hdrs):
            hdrs["Content-Length"] = str(len(body))
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        return RawResponse(resp.status, resp.reason, list(resp.getheaders()), data)
    finally:
        conn.close()


# --------------------------------------------------------------------------- index pages


@dataclasses.dataclass
class Anchor:
    href: str
    text: str
    attrs: dict[str, str | None]
    raw: str  # the raw start tag as written by the server

    @property
    def filename(self) -> str:
        path = urllib.parse.urlsplit(self.href).path
        return urllib.parse.unquote(path.rsplit("/", 1)[-1])

    @property
    def fragment(self) -> str:
        return urllib.parse.urlsplit(self.href).fragment

    @property
    def url(self) -> str:
        return self.href.split("#", 1)[0]


class _AnchorParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[Anchor] = []
        self.metas: list[dict[str, str | None]] = []
        self._current: Anchor | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._current = Anchor(
                href=dict(attrs).get("href") or "",
                text="",
                attrs=dict(attrs),
                raw=self.get_starttag_text() or "",
            )
        elif tag == "meta":
            self.metas.append(dict(attrs))

    def handle_data(self, data):
        if self._current is not None:
            self._current.text += data

    def handle_endtag(self, tag):
        if tag == "a" and self._current is not None:
            self._current.text = self._current.text.strip()
            self.anchors.append(self._current)
            self._current = None


def parse_html(text: str) -> _AnchorParser:
    p = _AnchorParser()
    p.feed(text)
    p.close()
    return p


# --------------------------------------------------------------------------- processes


def run(
    cmd: Sequence[str | os.PathLike],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
    input: str | None = None,
) -> subprocess.CompletedProcess:
    """Run a command; stdout and stderr merged into ``.stdout``; never raises on failure."""
    cmd = [str(c) for c in cmd]
    try:
        return subprocess.run(
            cmd,
            env=env,
            cwd=cwd,
            timeout=timeout,
            input=input if input is not None else "",
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        raise AssertionError(f"timed out after {timeout}s: {' '.join(cmd)}\n{out}") from None


def flat(text: str) -> str:
    """Collapse whitespace (rich-formatted client output wraps long lines)."""
    return " ".join(text.split())


def describe(proc: subprocess.CompletedProcess) -> str:
    return f"$ {' '.join(map(str, proc.args))}\n(exit {proc.returncode})\n{proc.stdout}"


def check(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, describe(proc)
    return proc


def wait_until(predicate: Callable[[], object], timeout: float = 10, interval: float = 0.1, what: str = ""):
    """Poll ``predicate`` until it returns a truthy value; return that value."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except AssertionError as e:  # allow predicates that assert
            last_exc = e
        if time.monotonic() > deadline:
            msg = f"condition not met within {timeout}s: {what}"
            if last_exc is not None:
                msg += f" (last: {last_exc})"
            raise AssertionError(msg)
        time.sleep(interval)


def python_version_tag() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def terminate(proc: subprocess.Popen, timeout: float = 10) -> None:
    """Stop a process we started, by its PID: SIGTERM, then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


# The server writes its log lines in batches from a thread of its own, a few milliseconds after
# they happen; a reader waits until the file stops growing for this long (at most a second).
LOG_SETTLE_SECONDS = 0.03


def read_server_log(path, proc) -> str:
    """The server's log file, once lines still on their way have landed (at once if it exited)."""

    def read() -> str:
        try:
            return path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    text = read()
    if proc is None or proc.poll() is not None:
        return text
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        time.sleep(LOG_SETTLE_SECONDS)
        again = read()
        if again == text:
            break
        text = again
    return text
