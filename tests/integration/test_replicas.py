"""Replicas behave as one registry: three `pyindex serve` processes, each with its own data
directory, on one PostgreSQL schema and one bucket prefix.

- a publish through one replica is listed by the others at once (their cached pages are
  dropped by the PostgreSQL change signal), and pip and uv install through them;
- 8 racing uploads of one filename over the three give one winner, the same on every replica;
- a yank, a token revocation and a password change made with the CLI on another host hold on
  every replica; a reservation and the audit log are shared;
- a replica killed in the middle of an upload (receiving its body, or storing it in the
  bucket) leaves nothing listed; `verify` reports what it left and `verify --repair` removes
  it, and nothing else;
- behind nginx (round robin), a `uv pip install` of many packages survives a replica killed
  during it.

Skipped unless PYINDEX_TEST_DATABASE_URL and PYINDEX_TEST_S3_ENDPOINT are set (`.ci/run` starts
both with `scripts/postgres start` and `scripts/s3 start`); the nginx test also needs `nginx`.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import re
import socket
import subprocess
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest
import requests

import auth_support as A
import support
from conftest import Credentials, Server, free_port

DATABASE_URL = os.environ.get("PYINDEX_TEST_DATABASE_URL")
ENDPOINT = os.environ.get("PYINDEX_TEST_S3_ENDPOINT")
BUCKET = os.environ.get("PYINDEX_TEST_S3_BUCKET")

pytestmark = pytest.mark.skipif(
    not (DATABASE_URL and ENDPOINT and BUCKET),
    reason="needs PYINDEX_TEST_DATABASE_URL and PYINDEX_TEST_S3_ENDPOINT "
    '(`eval "$(scripts/postgres start)"; eval "$(scripts/s3 start)"`)',
)

# The README's bound for a change made through one replica (or the CLI) to reach the others:
# milliseconds through LISTEN/NOTIFY, at worst the 0.5 s poll. The waits below allow that bound
# plus scheduling slack on a loaded machine; they are not speed measurements.
FRESHNESS_BOUND = 0.5
SLACK = 1.5


def psql(sql: str) -> None:
    proc = subprocess.run(
        ["psql", DATABASE_URL, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout


@dataclasses.dataclass
class Cluster:
    """Three replicas on one database schema and one bucket prefix, and a CLI on another host."""

    replicas: list[Server]
    shared_args: list[str]
    host: Path  # the data directory of the CLI "on another host"
    token: A.Token  # an admin's API token

    @property
    def credentials(self) -> Credentials:
        return Credentials("__token__", self.token.secret)

    def cli(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        return A.cli(self.host, *args, *self.shared_args, input=input, check=check)

    def upload(self, srv: Server, dist, credentials: Credentials | None = None) -> requests.Response:
        return upload_as(srv, dist, credentials or self.credentials)


def upload_as(srv: Server, dist, credentials: Credentials) -> requests.Response:
    """A legacy-API upload of `dist` to `srv` with `credentials`."""
    body, ctype = support.encode_multipart(
        support.upload_fields(dist), [("content", dist.filename, dist.data, "application/octet-stream")]
    )
    headers = {"Content-Type": ctype, "Authorization": support.basic_auth_header(credentials)}
    return requests.post(srv.upload_url, data=body, headers=headers, timeout=120)


@pytest.fixture
def cluster(server_factory, tmp_path) -> Cluster:
    schema = f"rep_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    psql(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in DATABASE_URL else "?"
    database = f"{DATABASE_URL}{separator}options={urllib.parse.quote(f'-c search_path={schema}')}"
    prefix = f"rep-{uuid.uuid4().hex[:12]}"
    shared = ["--database", database, "--storage", f"s3://{BUCKET}/{prefix}", "--s3-endpoint", ENDPOINT]
    host = tmp_path / "another-host"
    kwargs = A.server_args("upload")
    # All three start at once on the new database: one migrates it and creates the first admin.
    started: dict[str, Server] = {}

    def start(name: str) -> None:
        started[name] = server_factory(name, extra_args=[*kwargs["extra_args"], *shared], extra_env=kwargs["extra_env"])

    threads = [threading.Thread(target=start, args=(name,)) for name in ("a", "b", "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert set(started) == {"a", "b", "c"}, "every replica started"
    replicas = [started[name] for name in ("a", "b", "c")]
    assert user_names_with(host, shared) == {"admin"}
    token = create_token(host, shared, "admin")
    yield Cluster(replicas, shared, host, token)
    for srv in replicas:
        srv.stop()
    psql(f"DROP SCHEMA {schema} CASCADE")


def create_token(host: Path, shared: list[str], user: str) -> A.Token:
    proc = A.cli(host, "token", "create", "--user", user, *shared)
    secret = proc.stdout.strip().splitlines()[-1].strip()
    match = re.search(r"token (\d+)", proc.stdout)
    assert A.TOKEN_RE.match(secret) and match, A.describe(proc)
    return A.Token(int(match.group(1)), secret)


def user_names_with(host: Path, shared: list[str]) -> set[str]:
    proc = A.cli(host, "user", "list", *shared)
    return {line.split("\t")[0] for line in proc.stdout.splitlines() if line.strip()}


def fresh(srv: Server, predicate, what: str):
    """`predicate()` holds on `srv` now, or within the documented freshness bound."""
    return support.wait_until(predicate, timeout=FRESHNESS_BOUND + SLACK, interval=0.02, what=what)


def listed(srv: Server, project: str) -> dict[str, dict]:
    return {f["filename"]: f for f in srv.files(project)}


def test_publish_on_one_replica_install_through_the_others(cluster, clients, dists, make_venv):
    a, b, c = cluster.replicas
    first = support.make_wheel(dists / "1", "shared-pkg", "1.0")
    second = support.make_wheel(dists / "2", "shared-pkg", "1.1")
    uploader = A.clients_with_token(clients, cluster.token)
    support.check(uploader.twine_upload(a.upload_url, [first.path]))
    # Every replica renders (and caches) the page and the project list as they are now.
    for srv in (a, b, c):
        assert set(fresh(srv, lambda srv=srv: listed(srv, "shared-pkg") or None, "first file")) == {first.filename}
        assert "shared-pkg" in srv.root_projects()

    support.check(uploader.twine_upload(a.upload_url, [second.path]))
    # B's cached page was dropped by the change signal: the new file is listed on its next
    # request (or, at worst, within the documented bound).
    got = fresh(b, lambda: listed(b, "shared-pkg").get(second.filename), "the new file on replica b")
    assert got["hashes"]["sha256"] == second.sha256
    assert b.download(got["url"]) == second.data

    venv = make_venv()
    support.check(venv.pip_install("shared-pkg", index_url=b.simple_url))
    assert venv.installed()["shared-pkg"] == "1.1"
    venv = make_venv()
    support.check(venv.uv_install("shared-pkg", index_url=c.simple_url))
    assert venv.installed()["shared-pkg"] == "1.1"


def test_racing_uploads_over_three_replicas_have_one_winner(cluster, dists):
    contenders = [
        support.make_wheel(dists / str(i), "race-pkg", "1.0", salt=f"contender {i}") for i in range(8)
    ]
    assert len({d.filename for d in contenders}) == 1 and len({d.sha256 for d in contenders}) == 8
    # The project exists first, so every replica has a cached page to drop.
    seed = support.make_wheel(dists / "seed", "race-pkg", "0.1")
    assert cluster.upload(cluster.replicas[0], seed).status_code == 200
    for srv in cluster.replicas:
        assert srv.files("race-pkg")

    barrier = threading.Barrier(len(contenders))
    results: dict[int, requests.Response] = {}

    def race(i: int) -> None:
        barrier.wait()
        results[i] = cluster.upload(cluster.replicas[i % 3], contenders[i])

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(contenders))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    codes = {i: r.status_code for i, r in results.items()}
    winners = [i for i, code in codes.items() if 200 <= code < 300]
    assert len(winners) == 1, codes
    for i, r in results.items():
        if i != winners[0]:
            assert r.status_code == 409 and "already exists" in r.text, (i, r.status_code, r.text)
    winner = contenders[winners[0]]
    for srv in cluster.replicas:
        files = fresh(srv, lambda srv=srv: listed(srv, "race-pkg").get(winner.filename), "the winner listed")
        assert files["hashes"]["sha256"] == winner.sha256, srv.url
        assert srv.download(files["url"]) == winner.data, srv.url
        assert len(listed(srv, "race-pkg")) == 2


def test_cli_yank_revocation_password_reservation_and_audit_hold_everywhere(cluster, dists):
    a, b, c = cluster.replicas
    dist = support.make_wheel(dists, "yank-pkg", "1.0")
    assert cluster.upload(a, dist).status_code == 200
    cluster.cli("user", "add", "bob", "--admin", "--password-stdin", input="bob-Pw-1234567\n")
    bob = Credentials("bob", "bob-Pw-1234567")
    revoked = create_token(cluster.host, cluster.shared_args, "admin")
    by_bob = []
    for i, srv in enumerate(cluster.replicas):
        # Cache the page, and a verified password on every replica.
        assert srv.file_named("yank-pkg", dist.filename).get("yanked") in (None, False)
        extra = support.make_wheel(dists / f"pw{i}", "yank-pkg", f"1.0.{i + 1}")
        assert cluster.upload(srv, extra, bob).status_code == 200
        by_bob.append(extra.filename)
    assert cluster.upload(b, support.make_wheel(dists / "t", "yank-pkg", "2.0"),
                          Credentials("__token__", revoked.secret)).status_code == 200

    cluster.cli("yank", "yank-pkg", "1.0", "--reason", "broken everywhere")
    cluster.cli("token", "revoke", str(revoked.id))
    cluster.cli("user", "passwd", "bob", "--password-stdin", input="bob-New-7654321\n")
    cluster.cli("project", "reserve", "Reserved_Across")

    for i, srv in enumerate(cluster.replicas):
        fresh(srv, lambda srv=srv: srv.file_named("yank-pkg", dist.filename).get("yanked") == "broken everywhere",
              f"the yank on {srv.url}")
        # Tokens are looked up on every request: refused at once, no wait.
        r = cluster.upload(srv, support.make_wheel(dists / f"r{i}", "yank-pkg", f"3.{i}"),
                           Credentials("__token__", revoked.secret))
        assert r.status_code in (401, 403) and "revoked" in r.text, (srv.url, r.status_code, r.text)
        # The remembered password check is dropped by the change signal.
        old = support.make_wheel(dists / f"o{i}", "yank-pkg", f"4.{i}")
        fresh(srv, lambda srv=srv, old=old: cluster.upload(srv, old, bob).status_code == 401,
              f"the old password refused on {srv.url}")
        new = Credentials("bob", "bob-New-7654321")
        assert cluster.upload(srv, old, new).status_code == 200
        r = srv.get("/simple/reserved-across/")
        assert r.status == 404 and "reserved" in r.text, (srv.url, r)

    # One audit log: the uploads through every replica and the CLI's changes, read anywhere.
    log = cluster.cli("audit").stdout
    published_by_bob = [line for line in log.splitlines() if "\tbob\tpublish\t" in line]
    for filename in by_bob:  # one through each replica
        assert any(filename in line for line in published_by_bob), (filename, log)
    for needle in ("broken everywhere", "token.revoke", "reserved-across"):
        assert needle in log, (needle, log)


def bucket_keys(prefix: str) -> list[str]:
    """Every key under `prefix/` in the test bucket (a signed ListObjectsV2 with curl)."""
    user = f"{os.environ['AWS_ACCESS_KEY_ID']}:{os.environ['AWS_SECRET_ACCESS_KEY']}"
    # Sorted: curl signs the query string as given, and S3 signatures need it sorted.
    query = urllib.parse.urlencode(sorted({"list-type": "2", "max-keys": "1000", "prefix": prefix + "/"}.items()))
    proc = subprocess.run(
        ["curl", "-s", "--fail", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", user,
         "-H", "x-amz-content-sha256:UNSIGNED-PAYLOAD", f"{ENDPOINT}/{BUCKET}?{query}"],
        stdout=subprocess.PIPE, check=True, timeout=30, text=True,
    )
    assert "<IsTruncated>true" not in proc.stdout
    return [k[len(prefix) + 1 :] for k in re.findall(r"<Key>([^<]+)</Key>", proc.stdout)]


def send_upload(srv: Server, dist, credentials: Credentials, *, fraction: float, kill_when=None) -> None:
    """Sends the upload's head and `fraction` of its body, in pieces (a slow client), then
    SIGKILLs the replica while the connection is still open (once `kill_when()` holds)."""
    head, body = support.raw_upload_bytes(srv.port, dist, support.basic_auth_header(credentials))
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
        sock.sendall(head)
        end, sent = int(len(body) * fraction), 0
        while sent < end:
            piece = body[sent : min(end, sent + len(body) // 20)]
            sock.sendall(piece)
            sent += len(piece)
            time.sleep(0.02)
        if kill_when is not None:
            support.wait_until(kill_when, timeout=120, interval=0.01, what="the moment to kill")
        srv.kill9()


def test_a_replica_killed_mid_upload_leaves_nothing_listed(cluster, dists):
    a, b, c = cluster.replicas
    kept = support.make_wheel(dists / "kept", "crash-pkg", "1.0", payload=os.urandom(4096))
    assert cluster.upload(a, kept).status_code == 200
    # Larger than one 8 MiB part: stored by multipart upload to a staging key, then a copy.
    partial = support.make_wheel(dists / "partial", "crash-pkg", "2.0", payload=os.urandom(12 << 20))
    send_upload(b, partial, cluster.credentials, fraction=0.5)
    # The whole body, then the kill once the replica has begun its multipart upload to the
    # bucket (its upload id recorded under uploads/), or has published the file if that was
    # quicker than this test could see.
    whole = support.make_wheel(dists / "whole", "crash-pkg", "3.0", payload=os.urandom(40 << 20))
    prefix = cluster.shared_args[cluster.shared_args.index("--storage") + 1].split("/", 3)[3]

    def storing() -> bool:
        return any(k.startswith("uploads/") for k in bucket_keys(prefix)) or whole.filename in listed(a, "crash-pkg")

    send_upload(c, whole, cluster.credentials, fraction=1.0, kill_when=storing)

    files = listed(a, "crash-pkg")
    assert partial.filename not in files
    assert set(files) - {kept.filename, whole.filename} == set(), files
    for dist in (kept, whole):
        if dist.filename in files:  # listed means whole
            assert a.download(files[dist.filename]["url"]) == dist.data

    report = cluster.cli("verify", "--grace", "0s")
    assert "all intact" in report.stdout, report.stdout
    repaired = cluster.cli("verify", "--repair", "--grace", "0s")
    if whole.filename not in files:
        # Killed while storing: verify reported what the upload left, and repair removed it.
        assert "left by an interrupted upload: an incomplete upload" in report.stdout, report.stdout
        assert "verify --repair` removes them" in report.stdout, report.stdout
        assert "1 interrupted upload(s)" in repaired.stdout, repaired.stdout
    assert "all intact" in cluster.cli("verify").stdout
    keys = bucket_keys(prefix)
    assert not [k for k in keys if k.startswith(("staging/", "uploads/"))], (keys, repaired.stdout)
    referenced = set()
    for f in listed(a, "crash-pkg").values():
        referenced.add(f["hashes"]["sha256"])
        if isinstance(f.get("core-metadata"), dict):
            referenced.add(f["core-metadata"]["sha256"])
    stored = {k.split("/", 1)[1] for k in keys if k.startswith("sha256/")}
    assert stored == referenced, (stored ^ referenced, repaired.stdout)
    for dist in (kept, whole):
        if dist.filename in files:
            assert a.download(files[dist.filename]["url"]) == dist.data

    # The killed replicas start again on their data directories (their spool is emptied) and
    # serve the same state.
    for srv in (b, c):
        srv.start()
        assert set(listed(srv, "crash-pkg")) == set(files)
        assert not any((srv.data / "tmp").iterdir())


# --------------------------------------------------------------------------- nginx


class Nginx:
    """nginx with a private prefix and config (no system service), balancing the replicas."""

    def __init__(self, root: Path, replicas: list[Server]) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        for sub in ("logs", "tmp"):
            (root / sub).mkdir(exist_ok=True)
        self.port = free_port()
        upstreams = "\n".join(f"        server 127.0.0.1:{s.port};" for s in replicas)
        (root / "nginx.conf").write_text(f"""
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {root}/logs/access.log;
    client_body_temp_path {root}/tmp/body; proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi; uwsgi_temp_path {root}/tmp/uwsgi; scgi_temp_path {root}/tmp/scgi;
    upstream pyindex {{
{upstreams}
    }}
    server {{
        listen 127.0.0.1:{self.port};
        location / {{
            proxy_pass http://pyindex;
            proxy_set_header Host $http_host;
            proxy_next_upstream error timeout http_502 http_503;
            proxy_connect_timeout 1s;
            client_max_body_size 0;
            proxy_request_buffering off;
        }}
    }}
}}
""")
        self.nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self._run("-t", "-q")
        self._run()
        support.wait_until(lambda: (root / "nginx.pid").exists(), timeout=10, what="nginx started")
        self.pid = int((root / "nginx.pid").read_text().strip())

    def _run(self, *args: str) -> None:
        r = self.root
        subprocess.run([self.nginx, "-e", f"{r}/logs/error.log", "-c", f"{r}/nginx.conf", "-p", f"{r}/", *args],
                       check=True, timeout=30)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def requests_logged(self) -> int:
        log = self.root / "logs" / "access.log"
        return len(log.read_text().splitlines()) if log.exists() else 0

    def stop(self) -> None:
        self._run("-s", "quit")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)


NGINX = shutil.which("nginx") or (Path("/usr/sbin/nginx").exists() and "/usr/sbin/nginx")


@pytest.mark.skipif(not NGINX, reason="nginx is not installed")
def test_uv_install_through_nginx_survives_a_killed_replica(cluster, clients, dists, make_venv, tmp_path):
    names = [f"many-pkg-{i:02d}" for i in range(20)]
    wheels = [support.make_wheel(dists / n, n, "1.0", payload=os.urandom(64 << 10)) for n in names]
    uploader = A.clients_with_token(clients, cluster.token)
    support.check(uploader.twine_upload(cluster.replicas[0].upload_url, [w.path for w in wheels]))
    nginx = Nginx(tmp_path / "nginx", cluster.replicas)
    try:
        venv = make_venv()
        before = nginx.requests_logged()
        proc = subprocess.Popen(
            [A.tool("uv"), "pip", "install", "--no-cache", "--python", str(venv.python),
             "--index-url", nginx.url + "/simple/", *names],
            env=clients.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        # Kill a replica as soon as the install's first requests have been answered.
        support.wait_until(lambda: nginx.requests_logged() > before or proc.poll() is not None,
                           timeout=60, interval=0.005, what="the install's first requests")
        assert proc.poll() is None, "the install ended before a replica could be killed"
        killed = cluster.replicas[1]
        killed.kill9()
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out
        installed = venv.installed()
        assert all(installed.get(n) == "1.0" for n in names), installed
        # nginx did send the install's requests to the dead replica, and moved them on.
        errors = (nginx.root / "logs" / "error.log").read_text()
        assert f"127.0.0.1:{killed.port}" in errors, errors
    finally:
        nginx.stop()
