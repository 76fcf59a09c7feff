"""The catalog on PostgreSQL (scale-out): a server whose catalog is a PostgreSQL database publishes,
lists and installs as one on SQLite does, keeps nothing of the catalog in its data directory, and
a yank made with the CLI on another host (another data directory, the same database) holds on
the running server.

Skipped unless PYINDEX_TEST_DATABASE_URL is set: `.ci/run` starts a throwaway PostgreSQL on
loopback with `scripts/postgres start`. Each test works in a schema of its own (dropped after it),
reached through the URL's `options=-c search_path=...`.
"""

from __future__ import annotations

import os
import subprocess
import urllib.parse
import uuid

import pytest

import support
from conftest import pyindex_bin

DATABASE_URL = os.environ.get("PYINDEX_TEST_DATABASE_URL")

pytestmark = pytest.mark.skipif(
    not DATABASE_URL,
    reason="PYINDEX_TEST_DATABASE_URL is not set: `eval \"$(scripts/postgres start)\"` starts a database",
)


def psql(sql: str) -> None:
    proc = subprocess.run(
        ["psql", DATABASE_URL, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout


@pytest.fixture
def database() -> str:
    """A database URL whose tables live in a fresh schema."""
    schema = f"it_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    psql(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in DATABASE_URL else "?"
    yield f"{DATABASE_URL}{separator}options={urllib.parse.quote(f'-c search_path={schema}')}"
    psql(f"DROP SCHEMA {schema} CASCADE")


def cli_on_another_host(tmp_path, database: str, *args: str) -> subprocess.CompletedProcess:
    """`pyindex ARGS` with its own data directory, on the shared database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYINDEX_")}
    proc = subprocess.run(
        [str(pyindex_bin()), *args, "--data", str(tmp_path / "another-host"), "--database", database],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, support.describe(proc)
    return proc


def test_publish_install_and_a_yank_from_another_host(server_factory, database, upload, dists, make_venv, tmp_path):
    srv = server_factory("pg", extra_args=["--database", database])
    published = [support.make_wheel(dists, "pgshared", v) for v in ("1.0", "1.1")]
    for dist in published:
        r = upload(srv, dist)
        assert r.status_code == 200, r.text
    assert not (srv.data / "catalog.sqlite3").exists(), "the catalog must be in PostgreSQL"
    listed = {f["filename"]: f for f in srv.files("pgshared")}
    for dist in published:
        assert listed[dist.filename]["hashes"]["sha256"] == dist.sha256
        assert srv.download(listed[dist.filename]["url"]) == dist.data

    venv = make_venv()
    proc = support.check(venv.pip_install("pgshared", index_url=srv.simple_url))
    assert venv.installed()["pgshared"] == "1.1", support.describe(proc)

    cli_on_another_host(tmp_path, database, "yank", "pgshared", "1.1", "--reason", "broken on replica b")

    def yanked():
        newest = next(f for f in srv.files("pgshared") if f["filename"] == published[1].filename)
        assert newest.get("yanked") == "broken on replica b", newest
        return True

    # The running server reads the shared change log: a write from any host holds there too.
    srv.wait_for(yanked, timeout=10, what="the yank made on another host")
    venv = make_venv()
    proc = support.check(venv.uv_install("pgshared", index_url=srv.simple_url))
    assert venv.installed()["pgshared"] == "1.0", support.describe(proc)


def test_one_winner_per_filename_on_postgres(server_factory, database, upload, dists):
    srv = server_factory("pg", extra_args=["--database", database])
    first = support.make_wheel(dists, "pgrace", "1.0")
    r = upload(srv, first)
    assert r.status_code == 200, r.text
    (dists / "other").mkdir()
    other_bytes = support.make_wheel(dists / "other", "pgrace", "1.0", salt="different bytes")
    assert other_bytes.filename == first.filename and other_bytes.data != first.data
    r = upload(srv, other_bytes)
    assert r.status_code == 409, r.text
    assert [f["filename"] for f in srv.files("pgrace")] == [first.filename]
