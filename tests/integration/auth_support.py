"""Helpers for the authentication, token and permission tests (``test_auth_*.py``).

No fixtures here: the tests use conftest's ``server_factory`` / ``module_server_factory``
and ``clients``.  What this adds:

- starting servers that need credentials with a known admin password,
- accounts and tokens through the binary's CLI (``user add``, ``token create``, ...),
- ``Authorization`` headers, raw uploads and admin-API calls with chosen credentials,
- ``clients_as``: the real twine / uv / pip runners with other credentials,
- the audit log as rows, the stored blobs (to prove "nothing stored"),
- htpasswd lines in the formats pyindex imports (bcrypt, ``$apr1$``, ``{SHA}``),
- a bare ``pyindex serve`` process for addresses the Server fixture does not use.
"""

from __future__ import annotations

import base64
import copy
import ctypes
import ctypes.util
import dataclasses
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Sequence

import support
from support import Dist, RawResponse

REPO = Path(__file__).resolve().parents[2]

# The admin password handed to every server started here (PYINDEX_ADMIN_PASSWORD), so that no
# start prints a generated one.
ADMIN_PASSWORD = "admin-Pw-4f1c9e"
TOKEN_RE = re.compile(r"^pyindex_[0-9a-f]{16}_[A-Za-z0-9_-]+$")
REALM = 'Basic realm="pyindex"'


def pyindex_bin() -> Path:
    return Path(os.environ.get("PYINDEX_BIN") or REPO / "target" / "debug" / "pyindex")


def tool(name: str) -> str:
    p = Path(sys.executable).parent / name
    if p.exists():
        return str(p)
    found = shutil.which(name)
    assert found, f"client program {name!r} not found"
    return found


def server_args(mode: str | None = "upload", *, admin_password: str | None = ADMIN_PASSWORD, env: dict | None = None):
    """kwargs for ``server_factory``: ``--auth MODE`` and a known first-admin password."""
    extra_env = dict(env or {})
    if admin_password is not None:
        extra_env["PYINDEX_ADMIN_PASSWORD"] = admin_password
    return {
        "extra_args": ["--auth", mode] if mode else [],
        "extra_env": extra_env,
    }


# --------------------------------------------------------------------------- CLI


def cli(data: Path, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """``pyindex ARGS --data DATA``; stdout and stderr kept apart (the secret is on stdout)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYINDEX_")}
    proc = subprocess.run(
        [str(pyindex_bin()), *args, "--data", str(data)],
        env=env,
        input=input if input is not None else "",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
    )
    if check:
        assert proc.returncode == 0, describe(proc)
    return proc


def describe(proc: subprocess.CompletedProcess) -> str:
    return f"$ {' '.join(map(str, proc.args))}\n(exit {proc.returncode})\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"


def add_user(data: Path, name: str, password: str | None = None, *, admin: bool = False) -> str:
    """Create an account; returns its password (the generated one when ``password`` is None)."""
    args = ["user", "add", name] + (["--admin"] if admin else [])
    if password is None:
        proc = cli(data, *args)
        generated = proc.stdout.strip().splitlines()[-1].strip()
        assert len(generated) >= 8 and " " not in generated, describe(proc)
        return generated
    cli(data, *args, "--password-stdin", input=password + "\n")
    return password


@dataclasses.dataclass(frozen=True)
class Token:
    id: int
    secret: str

    @property
    def public_id(self) -> str:
        return self.secret.split("_")[1]


def create_token(
    data: Path,
    user: str,
    *,
    projects: Sequence[str] = (),
    read_only: bool = False,
    expires: int | None = None,
    description: str | None = None,
) -> Token:
    args = ["token", "create", "--user", user]
    for p in projects:
        args += ["--project", p]
    if read_only:
        args.append("--read-only")
    if expires is not None:
        args += ["--expires", str(expires)]
    if description is not None:
        args += ["--description", description]
    proc = cli(data, *args)
    secret = proc.stdout.strip().splitlines()[-1].strip()
    assert TOKEN_RE.match(secret), describe(proc)
    m = re.search(r"token (\d+)", proc.stdout)
    assert m, describe(proc)
    return Token(int(m.group(1)), secret)


def token_rows(data: Path, user: str | None = None) -> list[list[str]]:
    """``token list`` without its header line, split on tabs."""
    proc = cli(data, "token", "list", *(["--user", user] if user else []))
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    return [ln.split("\t") for ln in lines if not ln.startswith("id\t")]


def user_names(data: Path) -> set[str]:
    proc = cli(data, "user", "list")
    return {ln.split("\t")[0] for ln in proc.stdout.splitlines() if ln.strip()}


def roles(data: Path, project: str) -> str:
    return cli(data, "project", "roles", project).stdout


@dataclasses.dataclass(frozen=True)
class AuditRow:
    time: str
    actor: str
    action: str
    subject: str
    address: str
    detail: str


def audit(data: Path, limit: int | None = None) -> list[AuditRow]:
    proc = cli(data, "audit", *(["--limit", str(limit)] if limit else []))
    rows = []
    for line in proc.stdout.splitlines():
        if not line.strip():
            continue
        cols = line.split("\t")
        assert len(cols) >= 5, f"audit line is not tab-separated: {line!r}\n{proc.stdout}"
        cols += [""] * (6 - len(cols))
        rows.append(AuditRow(*cols[:5], "\t".join(cols[5:])))
    return rows


def password_hash(data: Path, user: str) -> str:
    """The stored hash of an account, read straight from the catalog (read-only)."""
    import sqlite3

    con = sqlite3.connect(f"file:{data / 'catalog.sqlite3'}?mode=ro", uri=True, timeout=10)
    try:
        row = con.execute("SELECT password_hash FROM users WHERE name = ?", (user,)).fetchone()
    finally:
        con.close()
    assert row, f"no account {user!r}"
    return row[0]


# --------------------------------------------------------------------------- HTTP


def basic(user: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def token_basic(token: Token | str) -> dict[str, str]:
    return basic("__token__", token.secret if isinstance(token, Token) else token)


def bearer(token: Token | str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token.secret if isinstance(token, Token) else token}"}


def raw_upload(server, dist: Dist, headers: dict[str, str] | None = None) -> RawResponse:
    """The legacy upload form for ``dist`` with exactly the given (auth) headers."""
    body, ctype = support.encode_multipart(
        support.upload_fields(dist), [("content", dist.filename, dist.data, "application/octet-stream")]
    )
    return server.request("POST", "/legacy/", {"Content-Type": ctype, **(headers or {})}, body)


def api(server, method: str, path: str, headers: dict[str, str] | None = None, body=None) -> RawResponse:
    hdrs = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    elif method in ("POST", "PUT"):
        data = b""
    return server.request(method, path, hdrs, data)


def yank_path(project: str, version: str, action: str = "yank") -> str:
    return f"/api/v1/projects/{project}/releases/{version}/{action}"


def assert_unauthorized(r: RawResponse) -> None:
    assert r.status == 401, r
    assert r.header("WWW-Authenticate") == REALM, r


def with_credentials(url: str, user: str, password: str) -> str:
    u = urllib.parse.urlsplit(url)
    netloc = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}@{u.netloc}"
    return urllib.parse.urlunsplit(u._replace(netloc=netloc))


def clients_as(clients, username: str, password: str):
    """The session's client runners, acting with other credentials."""
    other = copy.copy(clients)
    other.credentials = dataclasses.replace(clients.credentials, username=username, password=password)
    return other


def clients_with_token(clients, token: Token | str):
    return clients_as(clients, "__token__", token.secret if isinstance(token, Token) else token)


# --------------------------------------------------------------------------- stored state


def stored_blobs(data: Path) -> set[str]:
    """Every file under the data dir's blob store and temp dir."""
    out = set()
    for sub in ("files", "tmp"):
        root = data / sub
        if root.exists():
            out |= {str(p.relative_to(data)) for p in root.rglob("*") if p.is_file()}
    return out


def index_state(server) -> tuple[frozenset, frozenset]:
    """(projects in /simple/, filenames of every listed project) as an anonymous reader sees it."""
    projects = server.root_projects()
    files = frozenset(f["filename"] for p in projects for f in server.files(p))
    return frozenset(projects), files


# --------------------------------------------------------------------------- htpasswd

BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _libcrypt(password: str, setting: str) -> str | None:
    name = ctypes.util.find_library("crypt")
    if not name:
        return None
    lib = ctypes.CDLL(name)
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    out = lib.crypt(password.encode(), setting.encode())
    if not out or out.startswith(b"*"):
        return None
    return out.decode()


def bcrypt_hash(password: str, prefix: str) -> str:
    """A bcrypt hash with ``prefix`` ``2b`` or ``2y`` (cost 5): the ``bcrypt`` module, or
    ``htpasswd -B`` for ``2y``, or libcrypt (libxcrypt knows both)."""
    try:
        import bcrypt  # type: ignore

        h = bcrypt.hashpw(password.encode(), bcrypt.gensalt(5, prefix=b"2b")).decode()
        return f"${prefix}$" + h[4:]  # 2b and 2y are the same algorithm
    except ImportError:
        pass
    if prefix == "2y" and shutil.which("htpasswd"):
        out = subprocess.run(
            ["htpasswd", "-niB", "-C", "5", "u"], input=password, capture_output=True, text=True, check=True
        ).stdout
        return out.strip().split(":", 1)[1]
    salt = "".join(secrets.choice(BCRYPT_ALPHABET) for _ in range(21)) + secrets.choice(".Oeu")
    h = _libcrypt(password, f"${prefix}$05${salt}")
    if h is None:
        import pytest

        pytest.skip("no bcrypt generator (bcrypt module, htpasswd or libcrypt with bcrypt)")
    return h


def apr1_hash(password: str) -> str:
    if shutil.which("htpasswd"):
        out = subprocess.run(["htpasswd", "-nim", "u"], input=password, capture_output=True, text=True, check=True)
        return out.stdout.strip().split(":", 1)[1]
    out = subprocess.run(
        ["openssl", "passwd", "-apr1", "-stdin"], input=password + "\n", capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def sha_hash(password: str) -> str:
    return "{SHA}" + base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()


def htpasswd_hash(scheme: str, password: str) -> str:
    if scheme in ("2y", "2b"):
        return bcrypt_hash(password, scheme)
    if scheme == "apr1":
        return apr1_hash(password)
    if scheme == "sha":
        return sha_hash(password)
    raise ValueError(scheme)


# --------------------------------------------------------------------------- bare server process


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class BareServer:
    """``pyindex serve`` started by hand (for listen addresses other than 127.0.0.1); always
    stopped by its own PID (use as a context manager)."""

    def __init__(
        self, workdir: Path, listen: str, *args: str, env: dict[str, str] | None = None, data: Path | None = None
    ) -> None:
        self.workdir = workdir
        self.data = data or workdir / "data"
        self.listen = listen
        self.port = int(listen.rsplit(":", 1)[1])
        self.log_path = workdir / "server.log"
        workdir.mkdir(parents=True, exist_ok=True)
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("PYINDEX_")}
        full_env.update(env or {})
        self.cmd = [str(pyindex_bin()), "serve", "--listen", listen, "--data", str(self.data), *args]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=full_env, cwd=workdir
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method, path, headers=None, body=None, timeout: float = 30) -> RawResponse:
        return support.raw_request(self.url, method, path, headers, body, timeout=timeout)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"exited with {self.proc.returncode}:\n{self.log_text()}"
            try:
                if self.request("GET", "/health", timeout=2).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"not ready within {timeout}s:\n{self.log_text()}")

    def wait_exit(self, timeout: float = 30) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after {timeout}s:\n{self.log_text()}") from None

    def log_text(self) -> str:
        return support.read_server_log(self.log_path, self.proc)

    def stop(self) -> None:
        support.terminate(self.proc)

    def __enter__(self) -> "BareServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
