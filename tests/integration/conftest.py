"""Fixtures for the pyindex end-to-end suite.

The suite drives the real ``pyindex`` binary (env ``PYINDEX_BIN``, default
``<repo>/target/debug/pyindex``) on 127.0.0.1 with real clients from the venv
that runs pytest (see scripts/clients).  Key fixtures:

- ``server``: a fresh server on a free loopback port with its own data dir;
  ``module_server``: one per test module (tests there use distinct projects);
  ``server_factory``: start more servers (custom flags, env, config file).
- ``upload_credentials``: the ONE place that knows the upload credentials.
- ``clients``: pip / uv / twine / build runners with a hermetic environment.
- ``upload``: a raw multipart POST to the legacy upload API (for bad inputs).
- ``make_venv``: a fresh, empty venv to install into.
- ``dists``: a directory to write hand-made wheels/sdists into (see support.py).

Every server is checked after each test: a process that died unexpectedly or
logged "panicked" fails the test that was running.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Sequence

import pytest
import requests

import support
from support import Dist, RawResponse

REPO = Path(__file__).resolve().parents[2]
CLIENT_BIN = Path(sys.executable).parent
IS_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pyindex_bin() -> Path:
    return Path(os.environ.get("PYINDEX_BIN") or REPO / "target" / "debug" / "pyindex")


def tool(name: str) -> str:
    """Path of a client program: the venv running pytest first, then PATH."""
    p = CLIENT_BIN / name
    if p.exists():
        return str(p)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"client program {name!r} not found (run scripts/clients)")
    return found


# --------------------------------------------------------------------------- credentials


@dataclasses.dataclass(frozen=True)
class Credentials:
    username: str
    password: str


@pytest.fixture(scope="session")
def upload_credentials() -> Credentials:
    """The single source of upload credentials for every client and raw request.

    The server has no authentication yet; when accounts arrive, create the
    account/token here and everything else follows."""
    return Credentials(username="__token__", password="pyindex-test")


# --------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_ACTIVE_SERVERS: list["Server"] = []


class Server:
    """One pyindex process.  ``mode`` picks how it is configured:
    ``flags`` (--listen/--data/--max-upload-size), ``env`` (PYINDEX_* variables)
    or ``config`` (a TOML file passed with --config)."""

    def __init__(
        self,
        workdir: Path,
        data: Path | None = None,
        *,
        max_upload_size: str | None = None,
        mode: str = "flags",
        extra_args: Sequence[str] = (),
        extra_env: dict[str, str] | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.workdir = workdir
        self.tls_context = tls_context  # set for a server started with --tls-cert/--tls-key
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data = data or (workdir / "data")
        self.max_upload_size = max_upload_size
        self.mode = mode
        self.extra_args = list(extra_args)
        self.extra_env = dict(extra_env or {})
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.log_path = workdir / "server.log"
        self.expected_down = True
        self._log_checked = 0
        self.starts = 0

    # -- addresses
    @property
    def url(self) -> str:
        scheme = "https" if self.tls_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def simple_url(self) -> str:
        return self.url + "/simple/"

    @property
    def upload_url(self) -> str:
        return self.url + "/legacy/"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    # -- lifecycle
    def command(self) -> tuple[list[str], dict[str, str]]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYINDEX_")}
        env.setdefault("RUST_BACKTRACE", "1")
        env.update(self.extra_env)
        listen = f"127.0.0.1:{self.port}"
        cmd = [str(pyindex_bin()), "serve"]
        if self.mode == "flags":
            cmd += ["--listen", listen, "--data", str(self.data)]
            if self.max_upload_size is not None:
                cmd += ["--max-upload-size", self.max_upload_size]
        elif self.mode == "env":
            env["PYINDEX_LISTEN"] = listen
            env["PYINDEX_DATA"] = str(self.data)
            if self.max_upload_size is not None:
                env["PYINDEX_MAX_UPLOAD_SIZE"] = self.max_upload_size
        elif self.mode == "config":
            cfg = self.workdir / "pyindex.toml"
            lines = [f'listen = "{listen}"', f"data = {json.dumps(str(self.data))}"]
            if self.max_upload_size is not None:
                v = self.max_upload_size
                lines.append(f"max_upload_size = {v if v.isdigit() else json.dumps(v)}")
            cfg.write_text("\n".join(lines) + "\n")
            cmd += ["--config", str(cfg)]
        else:
            raise ValueError(self.mode)
        return cmd + self.extra_args, env

    def start(self, timeout: float = 30) -> "Server":
        binary = pyindex_bin()
        if not binary.exists():
            pytest.fail(f"pyindex binary not found at {binary} (cargo build, or set PYINDEX_BIN)")
        last_error = ""
        for _attempt in range(3):
            self.port = free_port()
            cmd, env = self.command()
            self.starts += 1
            with open(self.log_path, "ab") as log:
                log.write(f"\n===== start #{self.starts}: {' '.join(cmd)}\n".encode())
                self.proc = subprocess.Popen(
                    cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env, cwd=self.workdir
                )
            self.expected_down = False
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    r = support.raw_request(self.url, "GET", "/health", timeout=2, tls_context=self.tls_context)
                    if r.status == 200:
                        _ACTIVE_SERVERS.append(self)
                        return self
                    last_error = f"/health answered {r.status}"
                except OSError as e:
                    last_error = repr(e)
                time.sleep(0.05)
            code = self.proc.poll()
            self._terminate()
            if code is None:
                break  # running but never healthy: not a port clash
            last_error = f"exited with {code}"
            if "address" not in self.log_text().lower():
                break
        pytest.fail(f"pyindex did not become ready ({last_error}); log:\n{self.log_tail()}")

    def _terminate(self) -> None:
        self.expected_down = True
        if self.proc is not None:
            support.terminate(self.proc)

    def stop(self) -> None:
        self._terminate()
        if self in _ACTIVE_SERVERS:
            _ACTIVE_SERVERS.remove(self)

    def kill9(self) -> None:
        """SIGKILL the process (crash simulation)."""
        self.expected_down = True
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        if self in _ACTIVE_SERVERS:
            _ACTIVE_SERVERS.remove(self)

    def restart(self) -> "Server":
        self.stop()
        return self.start()

    # -- diagnostics
    def log_text(self) -> str:
        return support.read_server_log(self.log_path, self.proc)

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    def health_problems(self) -> list[str]:
        problems = []
        text = self.log_text()
        new = text[self._log_checked :]
        self._log_checked = len(text)
        if "panicked" in new:
            start = max(0, new.find("panicked") - 300)
            problems.append(f"server {self.url} panicked:\n{new[start : start + 3000]}")
        if not self.expected_down and self.proc is not None and self.proc.poll() is not None:
            problems.append(f"server {self.url} died unexpectedly (exit {self.proc.returncode}):\n{self.log_tail()}")
            self.expected_down = True
        return problems

    def rss_peak_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM")

    # -- the binary's other subcommands on the same data dir
    def cli(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYINDEX_")}
        proc = subprocess.run(
            [str(pyindex_bin()), *args, "--data", str(self.data)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=timeout,
        )
        if check:
            assert proc.returncode == 0, support.describe(proc)
        return proc

    # -- HTTP helpers
    def request(self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None) -> RawResponse:
        return support.raw_request(self.url, method, path, headers, body, tls_context=self.tls_context)

    def get(self, path: str, headers: dict[str, str] | None = None) -> RawResponse:
        return self.request("GET", path, headers)

    def project_json(self, project: str) -> dict | None:
        """PEP 691 JSON of /simple/<normalized>/, or None on 404."""
        r = self.get(f"/simple/{support.normalize(project)}/", {"Accept": support.JSON_V1})
        if r.status == 404:
            return None
        assert r.status == 200, r
        return r.json()

    def files(self, project: str) -> list[dict]:
        page = self.project_json(project)
        return [] if page is None else page["files"]

    def file_named(self, project: str, filename: str) -> dict | None:
        return next((f for f in self.files(project) if f["filename"] == filename), None)

    def project_html(self, project: str) -> str:
        r = self.get(f"/simple/{support.normalize(project)}/", {"Accept": "text/html"})
        assert r.status == 200, r
        return r.text

    def root_projects(self) -> set[str]:
        r = self.get("/simple/", {"Accept": support.JSON_V1})
        assert r.status == 200, r
        return {support.normalize(p["name"]) for p in r.json()["projects"]}

    def download(self, url: str) -> bytes:
        """GET a file URL as listed in the index (absolute path or absolute URL)."""
        full = urllib.parse.urljoin(self.url + "/", url)
        path = urllib.parse.urlsplit(full)
        target = path.path + (f"?{path.query}" if path.query else "")
        r = self.get(target)
        assert r.status == 200, (url, r)
        return r.body

    def wait_for(self, predicate, timeout: float = 10, what: str = ""):
        return support.wait_until(predicate, timeout=timeout, what=what)


class ServerPool:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.servers: list[Server] = []

    def __call__(self, name: str | None = None, **kwargs) -> Server:
        name = name or f"server{len(self.servers)}"
        srv = Server(self.root / name, **kwargs)
        self.servers.append(srv)
        return srv.start()

    def close(self) -> list[str]:
        problems = []
        for s in self.servers:
            problems += s.health_problems()
            s.stop()
            text = s.log_text()
            if "panicked" in text[s._log_checked :]:
                problems.append(f"server {s.workdir} panicked during shutdown:\n{s.log_tail()}")
        return problems


@pytest.fixture
def server_factory(tmp_path_factory):
    pool = ServerPool(tmp_path_factory.mktemp("servers"))
    yield pool
    problems = pool.close()
    if problems:
        pytest.fail("\n\n".join(problems))


@pytest.fixture
def server(server_factory) -> Server:
    """A fresh server with an empty data dir, for tests that must not share state."""
    return server_factory("main")


@pytest.fixture(scope="module")
def module_server_factory(tmp_path_factory):
    """Start servers that live until the end of the module."""
    pool = ServerPool(tmp_path_factory.mktemp("module-servers"))
    yield pool
    problems = pool.close()
    if problems:
        pytest.fail("\n\n".join(problems))


@pytest.fixture(scope="module")
def module_server(module_server_factory) -> Server:
    """One server for a whole test module; tests there use distinct project names."""
    return module_server_factory("main")


@pytest.fixture(autouse=True)
def _server_health_guard():
    """Fail the running test if any live server died or panicked during it."""
    yield
    problems = []
    for s in list(_ACTIVE_SERVERS):
        problems += s.health_problems()
    if problems:
        pytest.fail("\n\n".join(problems))


# --------------------------------------------------------------------------- clients


_DROP_PREFIXES = ("PIP_", "UV_", "TWINE_", "POETRY_", "PDM_", "HATCH_", "FLIT_", "PYINDEX_", "PYTHON")
# REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE override pip's --cert (requests prefers them to the
# session's CA file), so a machine that sets them would break the TLS tests.
_DROP = {
    "VIRTUAL_ENV", "CONDA_PREFIX", "GITHUB_ACTIONS", "ACTIONS_ID_TOKEN_REQUEST_URL",
    "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
}


@pytest.fixture(scope="session")
def client_env(tmp_path_factory) -> dict[str, str]:
    """A hermetic environment for client programs: no user config, private caches,
    no keyring, no prompts, the clients venv first on PATH."""
    home = tmp_path_factory.mktemp("client-home")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _DROP and not k.startswith(_DROP_PREFIXES)
    }
    env.update(
        PATH=f"{CLIENT_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_DATA_HOME=str(home / "data"),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        PIP_CONFIG_FILE=os.devnull,
        PIP_CACHE_DIR=str(home / "pip-cache"),
        PIP_PROGRESS_BAR="off",
        UV_CACHE_DIR=str(home / "uv-cache"),
        UV_NO_CONFIG="1",
        UV_PYTHON_DOWNLOADS="never",
        UV_NO_PROGRESS="1",
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
        TWINE_NON_INTERACTIVE="1",
        POETRY_CONFIG_DIR=str(home / "poetry-config"),
        POETRY_CACHE_DIR=str(home / "poetry-cache"),
        POETRY_DATA_DIR=str(home / "poetry-data"),
        POETRY_NO_INTERACTION="1",
        POETRY_KEYRING_ENABLED="false",
        PDM_HOME=str(home / "pdm-home"),
        PDM_CACHE_DIR=str(home / "pdm-cache"),
        PDM_CONFIG_FILE=str(home / "pdm-config.toml"),
        PDM_CHECK_UPDATE="false",
        PDM_NON_INTERACTIVE="1",
        HATCH_DATA_DIR=str(home / "hatch-data"),
        HATCH_CACHE_DIR=str(home / "hatch-cache"),
        NO_COLOR="1",
        TERM="dumb",
        COLUMNS="200",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


class Clients:
    """Runs the real client programs with the shared environment and credentials."""

    def __init__(self, env: dict[str, str], credentials: Credentials, scratch: Path) -> None:
        self.env = env
        self.credentials = credentials
        self.scratch = scratch

    def run(self, *cmd, cwd: Path | None = None, timeout: float = 300, env: dict | None = None):
        full_env = dict(self.env)
        full_env.update(env or {})
        return support.run(list(cmd), env=full_env, cwd=cwd, timeout=timeout)

    def pip(self, *args, **kw):
        return self.run(tool("pip"), *args, **kw)

    def uv(self, *args, **kw):
        return self.run(tool("uv"), *args, **kw)

    def twine_upload(self, repository_url: str, files: Sequence[Path | str], *extra: str, **kw):
        c = self.credentials
        return self.run(
            tool("twine"), "upload", "--non-interactive", "--disable-progress-bar",
            "--repository-url", repository_url, "-u", c.username, "-p", c.password,
            *extra, *map(str, files), **kw,
        )

    def uv_publish(self, publish_url: str, files: Sequence[Path | str], *extra: str, **kw):
        c = self.credentials
        auth = ["--token", c.password] if c.username == "__token__" else ["-u", c.username, "-p", c.password]
        return self.run(
            tool("uv"), "publish", "--no-config", "--trusted-publishing", "never",
            "--publish-url", publish_url, *auth, *extra, *map(str, files), **kw,
        )

    def pip_index_versions(self, project: str, index_url: str, *extra: str):
        return self.pip("index", "versions", project, "--index-url", index_url, *extra)

    def build(self, project_dir: Path, outdir: Path | None = None) -> list[Path]:
        """``python -m build --no-isolation`` (hatchling from the clients venv)."""
        outdir = outdir or project_dir / "dist"
        proc = self.run(sys.executable, "-m", "build", "--no-isolation", "--outdir", str(outdir), str(project_dir))
        support.check(proc)
        return sorted(outdir.iterdir())


@pytest.fixture(scope="session")
def clients(client_env, upload_credentials, tmp_path_factory) -> Clients:
    return Clients(client_env, upload_credentials, tmp_path_factory.mktemp("clients"))


@pytest.fixture
def project_tree(tmp_path):
    """Write a buildable project: ``project_tree(name, version, dependencies=[...])``."""
    counter = iter(range(1000))

    def make(name: str, version: str, **kw) -> Path:
        return support.write_project(tmp_path / f"src-{next(counter)}-{name}", name, version, **kw)

    return make


# --------------------------------------------------------------------------- raw uploads


class Uploader:
    """POST the legacy upload form by hand (requests sends our bytes verbatim)."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": support.basic_auth_header(self.credentials)}

    def __call__(
        self,
        server: Server,
        dist: Dist | None = None,
        *,
        overrides: dict[str, str | None] | None = None,
        fields: list[tuple[str, str]] | None = None,
        digests: Sequence[str] = ("sha256",),
        filename: str | None = None,
        content: bytes | None = None,
        part_content_type: str | None = "application/octet-stream",
        include_content: bool = True,
        extra_parts: Sequence[tuple[str, str, bytes, str | None]] = (),
        path: str = "/legacy/",
        timeout: float = 120,
    ) -> requests.Response:
        if fields is None:
            assert dist is not None
            fields = support.upload_fields(dist, digests=digests)
        fields = support.with_overrides(fields, overrides)
        files = []
        if include_content:
            assert dist is not None or content is not None
            files.append(
                (
                    "content",
                    filename or dist.filename,
                    content if content is not None else dist.data,
                    part_content_type,
                )
            )
        files.extend(extra_parts)
        body, ctype = support.encode_multipart(fields, files)
        return self.post(server, body, ctype, path=path, timeout=timeout)

    def post(self, server: Server, body: bytes, content_type: str, path: str = "/legacy/", timeout: float = 120) -> requests.Response:
        headers = {"Content-Type": content_type, **self.auth_headers()}
        return requests.post(server.url + path, data=body, headers=headers, allow_redirects=False, timeout=timeout)


@pytest.fixture(scope="session")
def upload(upload_credentials) -> Uploader:
    return Uploader(upload_credentials)


@pytest.fixture
def dists(tmp_path) -> Path:
    d = tmp_path / "dists"
    d.mkdir()
    return d


@pytest.fixture(scope="module")
def module_dists(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("module-dists")


# --------------------------------------------------------------------------- venvs


class Venv:
    def __init__(self, path: Path, clients: Clients) -> None:
        self.path = path
        self.python = path / "bin" / "python"
        self.clients = clients

    def pip(self, *args: str):
        return self.clients.pip("--python", str(self.python), *args)

    def pip_install(self, *args: str, index_url: str):
        return self.pip("install", "--index-url", index_url, *args)

    def uv_install(self, *args: str, index_url: str):
        return self.clients.uv("pip", "install", "--python", str(self.python), "--index-url", index_url, *args)

    def installed(self) -> dict[str, str]:
        """normalized distribution name -> version, as installed in this venv."""
        code = (
            "import importlib.metadata as m, json, re\n"
            "print(json.dumps({re.sub(r'[-_.]+','-',d.metadata['Name']).lower(): d.version "
            "for d in m.distributions()}))"
        )
        proc = support.check(support.run([str(self.python), "-c", code], env=self.clients.env))
        return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def make_venv(tmp_path, clients):
    counter = iter(range(1000))

    def make() -> Venv:
        path = tmp_path / f"venv-{next(counter)}"
        support.check(clients.uv("venv", "--no-config", "--python", sys.executable, str(path)))
        return Venv(path, clients)

    return make


# --------------------------------------------------------------------------- conformance data set


@dataclasses.dataclass
class ConformanceIndex:
    """The standards section N fixture, published on ``server``."""

    server: Server
    dists: dict[str, Dist]  # key -> Dist (see conformance_index)
    yank_reason: str = 'bad <build> & "x"'


@pytest.fixture(scope="module")
def conformance_index(module_server, upload, module_dists) -> ConformanceIndex:
    """Project ``Shared_Pkg``: sdist 0.1.0 (PKG-INFO 2.4, no Dynamic), wheel 0.1.0
    (Requires-Python >=3.8), wheel 0.1.1 (no Requires-Python) yanked with reason
    ``bad <build> & "x"``, wheel 0.1.2 yanked without reason.  Project
    ``other_pkg``: wheel 1.0+cu1.  ``old-sdist`` (PKG-INFO 2.1) and ``dyn-sdist``
    (2.2 with Dynamic) sdists that must not get a .metadata file."""
    d = module_dists / "conformance"
    dists = {
        "sdist": support.make_sdist(d, "Shared_Pkg", "0.1.0", requires_python=">=3.8"),
        "wheel": support.make_wheel(d, "Shared_Pkg", "0.1.0", requires_python=">=3.8"),
        "yanked": support.make_wheel(d, "Shared_Pkg", "0.1.1"),
        "yanked_noreason": support.make_wheel(d, "Shared_Pkg", "0.1.2"),
        "local": support.make_wheel(d, "other_pkg", "1.0+cu1"),
        "old_sdist": support.make_sdist(d, "old-sdist", "1.0", metadata_version="2.1"),
        "dyn_sdist": support.make_sdist(d, "dyn-sdist", "1.0", metadata_version="2.2", dynamic=["Requires-Dist"]),
    }
    srv = module_server
    for key, dist in dists.items():
        r = upload(srv, dist, digests=("sha256", "md5"))
        assert r.status_code == 200, (key, r.status_code, r.reason, r.text)
    srv.cli("yank", "shared-pkg", "0.1.1", "--reason", 'bad <build> & "x"')
    srv.cli("yank", "shared-pkg", "0.1.2")

    def yanks_visible():
        files = {f["filename"]: f for f in srv.files("shared-pkg")}
        return (
            files["shared_pkg-0.1.1-py3-none-any.whl"].get("yanked") not in (None, False)
            and files["shared_pkg-0.1.2-py3-none-any.whl"].get("yanked") not in (None, False)
        )

    srv.wait_for(yanks_visible, what="yanks of shared-pkg 0.1.1 and 0.1.2 visible in JSON")
    return ConformanceIndex(server=srv, dists=dists)
