#!/usr/bin/env python3
"""Scale-out benchmark (issue 14): one pyindex on SQLite + local disk, one on PostgreSQL + S3,
and three on PostgreSQL + S3 behind nginx, on the same corpus in the same run.

The shared harness (`../shared/bench/run.py`) measures the three configurations one after the
other, like it measures nginx and pyindex in `bench/run`: index pages (root, project HTML and
JSON), small and big downloads, `uv pip install` and `pip download`, 500 uploads and a big
upload with twine, memory; then the peak memory of one server on each engine while a 1 GiB wheel
is uploaded (the corpus `small-1g` of `bench/run`). Each configuration imports the corpus with `pyindex import` first
(the same files, into its own catalog and store). The report's ratios are against the first
(SQLite + disk).

Then the database work a hot request costs: a server on each engine with sqlx's statement log
on (`RUST_LOG=sqlx::query=debug`), one project imported; a cached project page, a cached file
download and an uncached one (the first request after a start) are each requested and the
statements they caused counted. The change watcher's reads of the change log are left out: they
happen twice a second whatever the requests.

PostgreSQL and the S3 server (SeaweedFS) are the throwaway ones of `scripts/postgres` and
`scripts/s3`, started here unless PYINDEX_TEST_DATABASE_URL and PYINDEX_TEST_S3_ENDPOINT are
set, and stopped at the end. Each configuration gets a schema and a key prefix of its own.

    cargo build --release -p pyindex
    python3 bench/scaleout.py [--md bench/results-scaleout.md] [run.py arguments, e.g. --duration 5]

Loopback only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shlex
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HARNESS = Path(os.environ.get("BENCH_HARNESS", REPO.parent / "shared" / "bench"))
sys.path.insert(0, str(HARNESS))
sys.dont_write_bytecode = True

import run as harness  # noqa: E402
from servers import Corpus, free_port  # noqa: E402

BIN = "target/release/pyindex"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
SERVE = "serve --listen {host}:{port} --data {data} --max-upload-size 2GiB --request-log off"


def say(msg: str) -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------------------------
# PostgreSQL and S3

def services() -> dict:
    """The database URL and the S3 settings; starts both (stopped at exit) unless already set."""
    for script, needed in (("postgres", "PYINDEX_TEST_DATABASE_URL"), ("s3", "PYINDEX_TEST_S3_ENDPOINT")):
        if os.environ.get(needed):
            continue
        out = subprocess.run([str(REPO / "scripts" / script), "start"], capture_output=True, text=True,
                             timeout=600)
        if out.returncode != 0:
            raise SystemExit(f"scripts/{script} start failed:\n{out.stderr[-2000:]}")
        for line in out.stdout.splitlines():
            for assignment in shlex.split(line.removeprefix("export ")):
                key, _, value = assignment.partition("=")
                os.environ[key] = value
        stop_dir = os.environ["PYINDEX_TEST_PG_DIR" if script == "postgres" else "PYINDEX_TEST_S3_DIR"]
        atexit.register(subprocess.run, [str(REPO / "scripts" / script), "stop", stop_dir], timeout=120)
    return {"database": os.environ["PYINDEX_TEST_DATABASE_URL"],
            "endpoint": os.environ["PYINDEX_TEST_S3_ENDPOINT"],
            "bucket": os.environ["PYINDEX_TEST_S3_BUCKET"]}


def psql(database: str, sql: str) -> None:
    subprocess.run(["psql", database, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True,
                   capture_output=True, timeout=120)


def place(svc: dict, name: str) -> dict:
    """A fresh schema and key prefix for one configuration: the PYINDEX_* settings that reach them."""
    schema = f"bench_{name}_{int(time.time())}"
    psql(svc["database"], f"CREATE SCHEMA {schema}")
    atexit.register(psql, svc["database"], f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    separator = "&" if "?" in svc["database"] else "?"
    options = urllib.parse.quote(f"-c search_path={schema}")
    return {"PYINDEX_DATABASE": f"{svc['database']}{separator}options={options}",
            "PYINDEX_STORAGE": f"s3://{svc['bucket']}/{schema}",
            "PYINDEX_S3_ENDPOINT": svc["endpoint"]}


def assignments(env: dict) -> str:
    """`env K=V ...`, a prefix for a command (the harness checks a command's first word)."""
    return "env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) if env else ""


# --------------------------------------------------------------------------------------------
# the three configurations, as harness adapters (BENCH_<NAME>_* variables)

def configure(svc: dict) -> list[str]:
    version = subprocess.run([BIN, "--version"], capture_output=True, text=True, cwd=REPO,
                             timeout=60).stdout.strip()
    pg, three = place(svc, "pg"), place(svc, "three")
    configs = {
        "pyindex": ("", f"{BIN} {SERVE}"),
        "pyindex-pg-s3": (assignments(pg), f"{BIN} {SERVE}"),
        "pyindex-3x-nginx": (assignments(three),
                             f"PYINDEX_BIN={BIN} bash bench/scaleout/replicas.sh {{host}} {{port}} {{data}}"),
    }
    for name, (env, cmd) in configs.items():
        key = "BENCH_" + name.upper().replace("-", "_")
        os.environ[f"{key}_CMD"] = f"{env} {cmd}".strip()
        os.environ[f"{key}_LOAD_CMD"] = f"{env} {BIN} import {{root}} --data {{data}}".strip()
        os.environ[f"{key}_VERSION"] = version
        os.environ[f"{key}_CWD"] = str(REPO)
    return list(configs)


# --------------------------------------------------------------------------------------------
# statements per hot request

def statements(log: Path) -> int:
    return sum(1 for line in log.read_text(errors="replace").splitlines()
               if "sqlx::query" in line and "FROM changes" not in line)


def get(url: str, accept: str = JSON_TYPE) -> int:
    req = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=60) as r:
        r.read()
        return r.status


def count_statements(corpus: Corpus, env: dict, work: Path) -> dict:
    """Statements per request on one server: a project imported, then each request counted."""
    project = next(p for p in corpus.projects if p["files"])
    tree = work / "tree"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(corpus.root / "simple" / project["norm"], tree / "simple" / project["norm"])
    run_env = {**os.environ, **env, "RUST_LOG": "warn,sqlx::query=debug"}
    subprocess.run([BIN, "import", str(tree), "--data", str(work / "data")], env=run_env, cwd=REPO,
                   check=True, capture_output=True, timeout=600)
    port, log = free_port(), work / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([BIN, *shlex.split(SERVE.format(host="127.0.0.1", port=port,
                                                                data=work / "data"))],
                                env=run_env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get(f"{base}/ready", "text/plain")
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"the server did not start; log {log}") from None
                time.sleep(0.1)
        first = project["files"][0]
        file_url = f"{base}/files/{first['sha256']}/{first['filename']}"
        page = f"{base}/simple/{project['norm']}/"
        counts = {}

        def count(label: str, url: str) -> None:
            time.sleep(1)  # the log writer settles
            before = statements(log)
            if get(url) != 200:
                raise RuntimeError(f"GET {url} failed")
            time.sleep(1)
            counts[label] = statements(log) - before

        count("project page, first request", page)
        count("project page, cached", page)
        count("file download, first request", file_url)
        count("file download, cached", file_url)
        return counts
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# --------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    global BIN
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--md", type=Path, default=REPO / "bench" / "results-scaleout.md")
    ap.add_argument("--work", type=Path, default=Path(os.environ.get("BENCH_HOME", "/tmp/bench")) / "scaleout")
    ap.add_argument("--skip-1g", action="store_true", help="leave out the 1 GiB upload pass")
    ap.add_argument("--bin", default=BIN, help=f"the binary, from the repository (default {BIN})")
    args, rest = ap.parse_known_args(argv)
    BIN = args.bin
    if not (REPO / BIN).exists():
        raise SystemExit(f"{BIN} is missing: cargo build --release -p pyindex")
    svc = services()
    names = configure(svc)
    corpus = harness.ensure_corpus("small")
    queries = {"SQLite + disk": count_statements(corpus, {}, args.work / "q-sqlite"),
               "PostgreSQL + S3": count_statements(corpus, place(svc, "queries"), args.work / "q-pg")}
    for engine, counts in queries.items():
        say(f"{engine}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    table = args.work / "harness.md"
    status = harness.main(["--servers", ",".join(names), "--baseline", names[0], "--md", str(table), *rest])
    # Peak memory while a 1 GiB wheel is uploaded: on local disk, and streamed to the bucket.
    big = args.work / "harness-1g.md"
    if not args.skip_1g:
        corpus_1g = harness.BENCH_HOME / "corpus" / "small-1g"
        if not (corpus_1g / "manifest.json").exists():
            subprocess.run([sys.executable, str(HARNESS / "make_corpus.py"), "--preset", "small", "--big-mb", "1024",
                            "--out", str(corpus_1g)], check=True, timeout=3600)
        names = configure(svc)  # fresh schemas and prefixes: the 1 GiB corpus is another index
        harness.main(["--servers", ",".join(names[:2]), "--baseline", names[0], "--corpus", str(corpus_1g),
                      "--only", "upload-big", "--md", str(big)])
    rows = list(next(iter(queries.values())))
    lines = ["", "## Database statements per request",
             "", "From sqlx's statement log, one request at a time, the change watcher's reads left out.", "",
             "| request | " + " | ".join(queries) + " |", "|---|" + "---|" * len(queries)]
    lines += [f"| {r} | " + " | ".join(str(queries[e][r]) for e in queries) + " |" for r in rows]
    if not args.skip_1g:
        lines += ["", "## A 1 GiB upload", "", big.read_text()]
    args.md.write_text("# Scale-out: SQLite + disk, PostgreSQL + S3, three replicas behind nginx\n\n"
                       + table.read_text() + "\n".join(lines) + "\n")
    say(f"written {args.md}")
    return status


if __name__ == "__main__":
    sys.exit(main())
