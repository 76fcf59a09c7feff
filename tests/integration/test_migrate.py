"""`pyindex migrate`: a populated single-machine data directory (twine uploads, a yank, a project
status, an account with a token, a reservation) moved to PostgreSQL + S3 and served from there
(pip and uv install, the token works, the yank and status hold, downloads byte-identical), then
moved back to a fresh SQLite + disk with every file intact; an interrupted move resumed; a target
holding another index refused; a source being served refused.

The SQLite -> SQLite cases need no services. The PostgreSQL + S3 case is skipped unless both
PYINDEX_TEST_DATABASE_URL (`eval "$(scripts/postgres start)"`) and PYINDEX_TEST_S3_ENDPOINT
(`eval "$(scripts/s3 start)"`) are set."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import signal
import sqlite3
import subprocess
import urllib.parse
import uuid
from pathlib import Path

import pytest

import auth_support as A
import support
from conftest import pyindex_bin

DATABASE_URL = os.environ.get("PYINDEX_TEST_DATABASE_URL")
ENDPOINT = os.environ.get("PYINDEX_TEST_S3_ENDPOINT")
BUCKET = os.environ.get("PYINDEX_TEST_S3_BUCKET")

needs_services = pytest.mark.skipif(
    not (DATABASE_URL and ENDPOINT and BUCKET),
    reason="SKIPPED: needs PYINDEX_TEST_DATABASE_URL and PYINDEX_TEST_S3_ENDPOINT "
    "(`eval \"$(scripts/postgres start)\"; eval \"$(scripts/s3 start)\"`)",
)

ALICE_PW = "alice-Pw-9931"


@dataclasses.dataclass
class Populated:
    data: Path
    token: A.Token
    dists: list[support.Dist]


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYINDEX_")}
    proc = subprocess.run(
        [str(pyindex_bin()), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=300,
    )
    if check:
        assert proc.returncode == 0, support.describe(proc)
    return proc


def populate(server_factory, clients, dists: Path, payload: int = 2048) -> Populated:
    """A SQLite + disk index with files uploaded by twine with alice's token, a yank, a status,
    a reservation; its server stopped."""
    srv = server_factory("source", **A.server_args("upload"))
    A.add_user(srv.data, "alice", ALICE_PW)
    token = A.create_token(srv.data, "alice", description="CI")
    made = [
        support.make_wheel(dists, "moving", "1.0", payload=os.urandom(payload)),
        support.make_wheel(dists, "moving", "2.0", payload=os.urandom(payload)),
        support.make_sdist(dists, "moving", "2.0"),
    ]
    as_alice = A.clients_with_token(clients, token)
    support.check(as_alice.twine_upload(srv.upload_url, [d.path for d in made]))
    srv.cli("yank", "moving", "1.0", "--reason", "broken build")
    srv.cli("project", "status", "moving", "deprecated", "--reason", "use moved")
    srv.cli("project", "reserve", "private-thing")
    srv.stop()
    return Populated(srv.data, token, made)


def counts(output: str) -> dict[str, int]:
    line = next(l for l in output.splitlines() if l.startswith("Catalog: "))
    return {what: int(n) for n, what in re.findall(r"(\d+) ([a-z ]+?)(?=,| \()", line)}


def blobs(output: str) -> tuple[int, int]:
    """(blobs copied, blobs already in the target) from a report."""
    copied = int(re.search(r"(\d+) blobs copied", output).group(1))
    present = int(re.search(r"(\d+) already in the target", output).group(1))
    return copied, present


def target_projects(catalog: Path) -> int:
    if not catalog.exists():
        return 0
    with sqlite3.connect(catalog) as db:
        return db.execute("SELECT count(*) FROM projects").fetchone()[0]


def blob_path(files: Path, sha256: str) -> Path:
    return files / "sha256" / sha256[:2] / sha256[2:4] / sha256


def check_served(srv, populated: Populated, clients, make_venv, dists: Path) -> None:
    """What the source served, the target serves: listings, bytes, yank, status, the token."""
    listed = {f["filename"]: f for f in srv.files("moving")}
    assert set(listed) == {d.filename for d in populated.dists}
    for dist in populated.dists:
        assert listed[dist.filename]["hashes"]["sha256"] == dist.sha256
        assert srv.download(listed[dist.filename]["url"]) == dist.data
    assert listed[populated.dists[0].filename].get("yanked") == "broken build"
    r = srv.get("/simple/moving/", {"Accept": support.TEXT_HTML})
    metas = {m["name"]: m["content"] for m in support.parse_html(r.text).metas if m.get("name")}
    assert metas.get("pypi:project-status") == "deprecated", metas
    assert srv.get("/simple/private-thing/").status == 404
    venv = make_venv()
    support.check(venv.pip_install("moving", index_url=srv.simple_url))
    assert venv.installed()["moving"] == "2.0"
    uv_venv = make_venv()
    support.check(uv_venv.uv_install("moving", index_url=srv.simple_url))
    assert uv_venv.installed()["moving"] == "2.0"
    # alice's token still publishes (its hash was copied), and alice owns the project.
    extra = support.make_wheel(dists / "after", "moving", "3.0")
    r = A.raw_upload(srv, extra, A.token_basic(populated.token))
    assert r.status == 200, r
    populated.dists.append(extra)


def test_sqlite_to_a_new_directory_then_resume_and_refusals(server_factory, clients, dists, make_venv, tmp_path):
    populated = populate(server_factory, clients, dists)
    new = tmp_path / "new"
    to = ["--to-database", f"sqlite://{new}/catalog.sqlite3", "--to-storage", f"file://{new}/files"]
    proc = run("migrate", "--data", str(populated.data), *to)
    got = counts(proc.stdout)
    assert got["projects"] == 2 and got["files"] == 3 and got["accounts"] == 2, proc.stdout
    assert got["tokens"] == 1 and got["audit log entries"] > 5, proc.stdout
    copied, present = blobs(proc.stdout)
    assert copied >= 5 and present == 0, proc.stdout
    assert "upstream proxy's cache" in proc.stdout
    run("verify", "--data", str(new))
    for dist in populated.dists:
        assert hashlib.sha256(blob_path(new / "files", dist.sha256).read_bytes()).hexdigest() == dist.sha256

    # Run again: nothing copied, everything checked.
    again = run("migrate", "--data", str(populated.data), *to)
    assert blobs(again.stdout) == (0, copied), again.stdout
    assert "held it already from an earlier run" in again.stdout, again.stdout

    srv = server_factory("target", data=new, **A.server_args("upload"))
    check_served(srv, populated, clients, make_venv, dists)
    # The source's audit log came along.
    rows = A.audit(new)
    assert any(r.action == "project.status" for r in rows), rows

    # A target holding another index is refused, and left as it was.
    proc = run("migrate", "--data", str(populated.data), *to, check=False)
    assert proc.returncode == 1, support.describe(proc)
    assert "already holds a different registry" in proc.stdout, proc.stdout
    assert "files" in proc.stdout.split("already holds")[1], proc.stdout

    # A source being served is refused.
    srv.stop()
    serving = server_factory("serving", data=populated.data, **A.server_args("upload"))
    proc = run("migrate", "--data", str(serving.data), "--to-database", f"sqlite://{tmp_path}/x.sqlite3",
               "--to-storage", f"file://{tmp_path}/x", check=False)
    assert proc.returncode == 1 and "a pyindex server is serving" in proc.stdout, support.describe(proc)
    assert not (tmp_path / "x.sqlite3").exists()


def test_an_interrupted_move_resumes(server_factory, clients, dists, tmp_path):
    # Large files, so that the move is still copying when it is killed.
    populated = populate(server_factory, clients, dists, payload=12 << 20)
    new = tmp_path / "new"
    to = ["--to-database", f"sqlite://{new}/catalog.sqlite3", "--to-storage", f"file://{new}/files"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYINDEX_")}
    proc = subprocess.Popen([str(pyindex_bin()), "migrate", "--data", str(populated.data), *to],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    first = blob_path(new / "files", populated.dists[0].sha256)
    support.wait_until(lambda: first.exists() or proc.poll() is not None, timeout=60, interval=0.01,
                       what="the first file copied")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    output = proc.stdout.read().decode()
    proc.stdout.close()
    assert "Migrated" not in output, f"the move finished before it was killed:\n{output}"
    # Killed before the catalog was copied: the target lists nothing yet.
    assert target_projects(new / "catalog.sqlite3") == 0

    resumed = run("migrate", "--data", str(populated.data), *to)
    copied, present = blobs(resumed.stdout)
    assert present >= 1 and copied >= 1, resumed.stdout
    assert target_projects(new / "catalog.sqlite3") == 2
    run("verify", "--data", str(new))
    for dist in populated.dists:
        assert hashlib.sha256(blob_path(new / "files", dist.sha256).read_bytes()).hexdigest() == dist.sha256


@pytest.fixture
def database() -> str:
    """A database URL whose tables live in a fresh schema."""
    schema = f"it_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    psql(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in DATABASE_URL else "?"
    yield f"{DATABASE_URL}{separator}options={urllib.parse.quote(f'-c search_path={schema}')}"
    psql(f"DROP SCHEMA {schema} CASCADE")


def psql(sql: str) -> None:
    proc = subprocess.run(["psql", DATABASE_URL, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout


@needs_services
def test_to_postgres_and_s3_and_back(server_factory, clients, dists, make_venv, tmp_path, database):
    populated = populate(server_factory, clients, dists)
    bucket = [f"s3://{BUCKET}/migrate-{uuid.uuid4().hex[:12]}"]
    proc = run("migrate", "--data", str(populated.data), "--to-database", database,
               "--to-storage", bucket[0], "--to-s3-endpoint", ENDPOINT)
    assert counts(proc.stdout)["files"] == 3, proc.stdout
    assert "SQLite" in proc.stdout and "PostgreSQL" in proc.stdout
    assert database not in proc.stdout, "never print a database URL (it may hold a password)"

    served = ["--database", database, "--storage", bucket[0], "--s3-endpoint", ENDPOINT]
    srv = server_factory("scaled", extra_args=["--auth", "upload", *served],
                         extra_env={"PYINDEX_ADMIN_PASSWORD": A.ADMIN_PASSWORD})
    check_served(srv, populated, clients, make_venv, dists)
    assert not (srv.data / "catalog.sqlite3").exists() and not (srv.data / "files").exists()
    srv.stop()
    run("verify", "--data", str(srv.data), *served)

    back = tmp_path / "back"
    proc = run("migrate", "--data", str(srv.data), *served, "--to-database", f"sqlite://{back}/catalog.sqlite3",
               "--to-storage", f"file://{back}/files")
    assert counts(proc.stdout)["files"] == 4, proc.stdout
    run("verify", "--data", str(back))
    for dist in populated.dists:
        assert hashlib.sha256(blob_path(back / "files", dist.sha256).read_bytes()).hexdigest() == dist.sha256
    home = server_factory("home", data=back, **A.server_args("upload"))
    listed = {f["filename"]: f for f in home.files("moving")}
    assert set(listed) == {d.filename for d in populated.dists}
    assert listed[populated.dists[0].filename].get("yanked") == "broken build"
    for dist in populated.dists:
        assert home.download(listed[dist.filename]["url"]) == dist.data
    assert home.get("/api/v1/tokens", A.token_basic(populated.token)).status == 200
