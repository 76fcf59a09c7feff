"""The catalog database goes away under a running server (PostgreSQL): what the server can answer
from memory it keeps answering, everything else gets a quick 503, and it recovers by itself.

- Before: publish, and read the pages and files once (as pip does), so they are cached.
- Database stopped: the project and root pages are still 200 and pip installs the published
  project in a fresh venv (page, metadata file and wheel answered from the cache, the bytes
  from the file store); a page never read and an upload get 503 with ``Retry-After`` and a
  message saying the catalog database is unreachable, within the acquire timeout (a yank
  too); ``/ready``
  is 503 naming the database.
- Database started again: ``/ready`` is 200 and an upload succeeds, without restarting the
  server.

Skipped unless PYINDEX_TEST_DATABASE_URL is set (PostgreSQL tools are there then). The test
starts a PostgreSQL cluster of its own with ``scripts/postgres start``, so that stopping it
leaves the shared one alone, and removes it at the end.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import requests

import auth_support as A
import support

pytestmark = pytest.mark.skipif(
    not os.environ.get("PYINDEX_TEST_DATABASE_URL"),
    reason="PYINDEX_TEST_DATABASE_URL is not set: `eval \"$(scripts/postgres start)\"` starts a database",
)

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "postgres"
PGBIN = os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")
# The server waits this long for a connection before answering 503.
ACQUIRE_TIMEOUT = 2


class Cluster:
    """A PostgreSQL cluster of this test's own, which it can stop and start again."""

    def __init__(self) -> None:
        # Start looking for a free port away from the shared cluster's.
        env = {**os.environ, "PYINDEX_TEST_PG_PORT": str(56432 + os.getpid() % 500)}
        out = subprocess.run(
            [str(SCRIPT), "start"], env=env, check=True, capture_output=True, text=True, timeout=120
        ).stdout
        exported = dict(
            line.removeprefix("export ").split("=", 1) for line in out.splitlines() if line.startswith("export ")
        )
        self.url = exported["PYINDEX_TEST_DATABASE_URL"]
        self.dir = exported["PYINDEX_TEST_PG_DIR"]
        self.port = self.url.rsplit(":", 1)[1].split("/", 1)[0]

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", f"{PGBIN}/pg_ctl", "-D", self.dir, *args],
            check=True, capture_output=True, timeout=120,
        )

    def stop(self) -> None:
        self.pg_ctl("-m", "fast", "-w", "stop")

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off"
        self.pg_ctl("-l", f"{self.dir}/server.log", "-w", "-t", "30", "start", "-o", options)

    def remove(self) -> None:
        subprocess.run([str(SCRIPT), "stop", self.dir], check=False, capture_output=True, timeout=120)


@pytest.fixture
def cluster():
    c = Cluster()
    yield c
    c.remove()


def assert_unavailable(response: requests.Response | support.RawResponse, elapsed: float) -> None:
    status = getattr(response, "status_code", None) or response.status
    text = response.text if hasattr(response, "text") else response.body.decode()
    headers = response.headers if isinstance(response, requests.Response) else dict(response.headers)
    assert status == 503, (status, text)
    assert "The catalog database is unreachable" in text and "retry later" in text, text
    assert int(headers.get("Retry-After") or headers.get("retry-after")) > 0, headers
    # Bounded by the acquire timeout (and a margin for a busy machine), not a hang.
    assert elapsed < ACQUIRE_TIMEOUT + 20, elapsed


def timed(call):
    start = time.monotonic()
    result = call()
    return result, time.monotonic() - start


def test_cached_reads_go_on_writes_get_503_and_the_server_recovers(
    server_factory, cluster, upload, dists, make_venv
):
    srv = server_factory(
        "dbdown",
        extra_args=["--database", cluster.url, "--database-acquire-timeout", f"{ACQUIRE_TIMEOUT}s"],
    )
    first = support.make_wheel(dists, "survivor", "1.0")
    r = upload(srv, first)
    assert r.status_code == 200, r.text
    # Read as clients do, so that the pages, metadata file and wheel answers are cached.
    warm = make_venv()
    support.check(warm.pip_install("survivor", index_url=srv.simple_url))
    support.check(make_venv().uv_install("survivor", index_url=srv.simple_url))
    html_before = srv.get("/simple/survivor/")
    root_before = srv.get("/simple/")
    assert html_before.status == 200 and root_before.status == 200
    assert srv.get("/ready").status == 200

    starts = srv.starts
    cluster.stop()

    page = srv.get("/simple/survivor/")
    assert (page.status, page.body) == (200, html_before.body)
    assert srv.get("/simple/").body == root_before.body
    venv = make_venv()
    support.check(venv.pip_install("survivor", index_url=srv.simple_url))
    assert venv.installed().get("survivor") == "1.0"
    uv_venv = make_venv()
    support.check(uv_venv.uv_install("survivor", index_url=srv.simple_url))
    assert uv_venv.installed().get("survivor") == "1.0"

    never_read, elapsed = timed(lambda: srv.get("/simple/never-read/"))
    assert_unavailable(never_read, elapsed)
    second = support.make_wheel(dists, "survivor", "2.0")
    refused, elapsed = timed(lambda: upload(srv, second))
    assert_unavailable(refused, elapsed)
    yank, elapsed = timed(lambda: A.api(srv, "POST", A.yank_path("survivor", "1.0")))
    assert_unavailable(yank, elapsed)
    ready = srv.get("/ready")
    assert ready.status == 503, ready
    assert srv.get("/live").status == 200  # the process serves: orchestrators keep it
    assert "database: the catalog database does not answer" in ready.body.decode(), ready.body

    cluster.start()

    deadline = time.monotonic() + 60
    while srv.get("/ready").status != 200:
        assert time.monotonic() < deadline, "the server did not find the database again"
        time.sleep(0.5)
    again = upload(srv, second)
    assert again.status_code == 200, again.text
    listed = {f["filename"] for f in srv.files("survivor")}
    assert listed == {first.filename, second.filename}
    assert srv.starts == starts, "the server was not restarted"
    assert srv.project_json("survivor")["versions"] == ["1.0", "2.0"]
