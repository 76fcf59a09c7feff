#!/usr/bin/env python3
"""Web UI benchmark: a project page with 500 versions and 2,000 files, and search over 10,000
projects, beside the simple-index pages of the same server in the same run.

Generates (once; reused while the parameters are the same) a flat directory of small valid
distributions with the shared harness's generator: one project with 500 versions of three
wheels and an sdist each (2,000 files, a Markdown README), and 10,000 projects of one wheel
each. Loads them into an empty data directory with `pyindex import` (the CLI, as an operator
would: no SQL), starts the release binary and measures, in wrk turns (--rounds rounds,
median), req/s and p99 of:

  simple-small   GET /simple/<one of the 10,000>/       (baseline: a cached simple page)
  simple-big     GET /simple/<big project>/             (baseline: the same project's simple page)
  project-big    GET /project/<big project>/            (UI: 500 versions, 2,000 files)
  search-name    GET /search?q=<one of 200 names>       (UI: exact name first, over 10,000)
  search-word    GET /search?q=generated                (UI: a word in all 10,000 summaries)

It also counts the SQL statements one project page costs (a second server started with
RUST_LOG=sqlx::query=debug): the page must not run a query per file or per release.

    cargo build --release -p pyindex
    python3 bench/ui.py --md bench/results-ui.md [--bin target/release/pyindex]

Loopback only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.machinery
import importlib.util
import json
import multiprocessing
import os
import random
import shutil
import statistics
import sys
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HARNESS = Path(os.environ.get("BENCH_HARNESS", REPO.parent / "shared" / "bench"))
sys.path.insert(0, str(HARNESS))
sys.dont_write_bytecode = True

import make_corpus  # noqa: E402
import run as harness  # noqa: E402


def _growth():
    """bench/growth (a script without the .py suffix) as a module: its Server, timed and load."""
    loader = importlib.machinery.SourceFileLoader("bench_growth", str(REPO / "bench" / "growth"))
    spec = importlib.util.spec_from_loader("bench_growth", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


growth = _growth()
BENCH_HOME = Path(os.environ.get("BENCH_HOME", "/tmp/bench"))
BIG_VERSIONS = 500
WHEEL_TAGS = ["py3-none-any", "cp312-cp312-manylinux_2_17_x86_64", "cp312-cp312-win_amd64"]
SEARCH_WORD = "generated"  # every generated summary says "a generated benchmark package"
WORKLOADS = [
    ("simple-small", "GET /simple/<project>/ (10,000 projects), HTML"),
    ("simple-big", "GET /simple/<big>/ (2,000 files), HTML"),
    ("project-big", "GET /project/<big>/ (500 versions, 2,000 files)"),
    ("search-name", "GET /search?q=<exact name> (10,000 projects)"),
    ("search-word", f"GET /search?q={SEARCH_WORD} (matches all 10,000)"),
]


def say(msg: str) -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------------------------
# corpus

def write_files(job) -> int:
    """Every file of one project: for each version an sdist and one wheel per tag in `tags`."""
    project, out_dir, tags = job
    out = Path(out_dir)
    escaped = make_corpus.dist_escape(project["name"])
    for version, rp in zip(project["versions"], project["requires_python"]):
        modules = {f"{project['import_name']}/__init__.py": f'__version__ = "{version}"\n'.encode()}
        for tag in tags:
            make_corpus.build_wheel(out / f"{escaped}-{version}-{tag}.whl", project, version, rp, modules)
        if len(tags) > 1:
            make_corpus.build_sdist(out / f"{escaped}-{version}.tar.gz", project, version, rp, modules)
    return len(project["versions"]) * (len(tags) + (1 if len(tags) > 1 else 0))


def make_ui_corpus(out: Path, projects: int, seed: int, jobs: int) -> dict:
    params = {"projects": projects, "big_versions": BIG_VERSIONS, "tags": WHEEL_TAGS, "seed": seed, "v": 1}
    stamp = out / "ui-corpus.json"
    if stamp.exists() and json.loads(stamp.read_text()).get("params") == params:
        return json.loads(stamp.read_text())
    shutil.rmtree(out, ignore_errors=True)
    files = out / "files"
    files.mkdir(parents=True)
    t0 = time.monotonic()
    big = make_corpus.plan_projects(seed, 1, BIG_VERSIONS, prefix="big-", tag="big")[0]
    many = make_corpus.plan_projects(seed, projects, 1, tag="many")
    jobs_list = [(big, str(files), WHEEL_TAGS)] + [(p, str(files), ["py3-none-any"]) for p in many]
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        counts = pool.map(write_files, jobs_list, chunksize=64)
    info = {"params": params, "source": str(files), "files": sum(counts), "big": big["norm"],
            "big_versions": len(big["versions"]), "big_files": counts[0],
            "names": [p["norm"] for p in many], "seconds": round(time.monotonic() - t0, 1)}
    stamp.write_text(json.dumps(info))
    return info


# --------------------------------------------------------------------------------------------
# measurements

def get(server, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        conn.request("GET", path, headers={"Accept": "text/html"})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def check_pages(server, corpus: dict) -> dict:
    """The pages answer 200 with what they must show; sizes in bytes."""
    big = corpus["big"]
    sizes = {}
    for wl, path, must in [
        ("project-big", f"/project/{big}/", f"/project/{big}/"),
        ("simple-big", f"/simple/{big}/", ".tar.gz"),
        ("search-name", f"/search?q={corpus['names'][0]}", f"/project/{corpus['names'][0]}/"),
        ("search-word", f"/search?q={SEARCH_WORD}", f"{len(corpus['names']) + 1} projects"),
    ]:
        status, body = get(server, path)
        text = body.decode(errors="replace")
        if status != 200 or must not in text:
            raise RuntimeError(f"GET {path} answered {status} without {must!r}: {text[:300]}")
        sizes[wl] = len(body)
    versions = get(server, f"/project/{big}/")[1].decode().count(f'href="/project/{big}/')
    if versions < corpus["big_versions"]:
        raise RuntimeError(f"the project page links {versions} versions, not {corpus['big_versions']}")
    return sizes


def statements(log: Path) -> int:
    """sqlx's statement log lines, but the change watcher's reads of the change log (every
    0.5 s, whatever the requests)."""
    return sum(1 for line in log.read_text(errors="replace").splitlines()
               if "sqlx::query" in line and "FROM changes" not in line)


def count_queries(binary: Path, data: Path, path: str, work: Path) -> int:
    """SQL statements one GET of `path` costs, from sqlx's statement log (second request, so
    start-up work and first-view rendering are not counted)."""
    log = work / "server-queries.log"
    log.unlink(missing_ok=True)
    env_before = os.environ.get("RUST_LOG")
    os.environ["RUST_LOG"] = "warn,sqlx::query=debug"
    try:
        server = growth.Server(binary, data, log)
    finally:
        if env_before is None:
            os.environ.pop("RUST_LOG")
        else:
            os.environ["RUST_LOG"] = env_before
    try:
        get(server, path)
        time.sleep(2)  # the background README step and the log writer settle
        before = statements(log)
        status, _ = get(server, path)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}")
        time.sleep(0.5)
        return statements(log) - before
    finally:
        server.stop()


def reads(server, corpus: dict, args, work: Path) -> dict:
    rng = random.Random(args.seed)
    names = rng.sample(corpus["names"], min(200, len(corpus["names"])))
    big = corpus["big"]
    paths = {
        "simple-small": [f"/simple/{n}/" for n in names],
        "simple-big": [f"/simple/{big}/"],
        "project-big": [f"/project/{big}/"],
        "search-name": [f"/search?q={urllib.parse.quote(n)}" for n in names],
        "search-word": [f"/search?q={SEARCH_WORD}"],
    }
    runs = {wl: [] for wl, _ in WORKLOADS}
    for rnd in range(args.rounds):
        for wl, _ in WORKLOADS:
            kw = dict(connections=args.connections, threads=2, accept="text/html", timeout_s=30,
                      seed=args.seed + rnd, workdir=work, cpus=None)
            try:
                harness.run_wrk(server.url, paths[wl], duration=1, **kw)
            except RuntimeError:
                pass  # a warm-up in which no slow page completed is still a warm-up
            runs[wl].append(harness.run_wrk(server.url, paths[wl], duration=args.round_seconds, **kw))
        say(f"  round {rnd + 1} (load {growth.load()}): "
            + ", ".join(f"{wl} {runs[wl][-1]['rps']:,.0f}" for wl, _ in WORKLOADS))
    alone = {}
    for wl, _ in WORKLOADS:  # the latency of one request at a time
        kw = dict(connections=1, threads=1, accept="text/html", timeout_s=30, seed=args.seed,
                  workdir=work, cpus=None)
        alone[wl] = harness.run_wrk(server.url, paths[wl], duration=args.round_seconds, **kw)
    say("  one connection: " + ", ".join(f"{wl} p50 {alone[wl]['p50_ms']:.2f} ms" for wl, _ in WORKLOADS))
    return {wl: {"rps": statistics.median(r["rps"] for r in rs),
                 "alone": alone[wl],
                 "p50_ms": statistics.median(r["p50_ms"] for r in rs),
                 "p99_ms": statistics.median(r["p99_ms"] for r in rs),
                 "errors": sum(sum(r["errors"].values()) for r in rs),
                 "all": [r["rps"] for r in rs]} for wl, rs in runs.items()}


def markdown(corpus: dict, m: dict, args) -> str:
    r = m["reads"]
    base = r["simple-small"]["rps"]
    lines = [
        "# Web UI: a project with 500 versions and 2,000 files, search over 10,000 projects",
        "",
        f"Run {m['started']}; pyindex {m['version']}; load average {m['load_before']} before, "
        f"{m['load_after']} after (2 shared cores: server, wrk and other work). Corpus: "
        f"`{corpus['big']}` with {corpus['big_versions']} versions and {corpus['big_files']:,} files "
        f"(3 wheels and an sdist per version, Markdown README), and {len(corpus['names']):,} projects "
        f"of one wheel each: {corpus['files']:,} files loaded with `pyindex import --jobs {args.jobs}` "
        f"in {m['import_s']:.0f} s. wrk `-t2 -c{args.connections}`, {args.rounds} rounds of "
        f"{args.round_seconds:.0f} s per workload in turns (after 1 s of warm-up), median of the rounds; "
        f"then one {args.round_seconds:.0f} s run per workload with one connection (`-t1 -c1`): the "
        "latency of a request on its own.",
        "",
        "| workload | req/s | p50 ms | p99 ms | one connection: p50 / p99 ms | page bytes | req/s / simple page |",
        "|---|---|---|---|---|---|---|",
    ]
    for wl, label in WORKLOADS:
        label = label.replace("10,000", f"{len(corpus['names']):,}")
        v = r[wl]
        flag = f" ({v['errors']} errors)" if v["errors"] else ""
        a = v["alone"]
        lines.append(f"| {label}{flag} | {v['rps']:,.0f} | {v['p50_ms']:.2f} | {v['p99_ms']:.2f} | "
                     f"{a['p50_ms']:.2f} / {a['p99_ms']:.2f} | "
                     f"{m['sizes'].get(wl, m['sizes'].get('simple-small', 0)):,} | {v['rps'] / base:.3f}× |")
    lines += [
        "",
        f"SQL statements per project page view (`/project/{corpus['big']}/`, from sqlx's statement log): "
        f"{m['queries']}, whatever the number of files and releases.",
        "",
        "Every round (req/s): " + "; ".join(f"{wl} " + "/".join(f"{x:,.0f}" for x in r[wl]["all"])
                                            for wl, _ in WORKLOADS) + ".",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", type=Path, default=REPO / "target" / "release" / "pyindex")
    ap.add_argument("--md", type=Path, default=REPO / "bench" / "results-ui.md")
    ap.add_argument("--work", type=Path, default=BENCH_HOME / "ui")
    ap.add_argument("--projects", type=int, default=10_000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--round-seconds", type=float, default=5)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    say(f"ui: corpus ({args.projects:,} projects and one of {BIG_VERSIONS} versions; load {growth.load()})")
    corpus = make_ui_corpus(args.work / "corpus", args.projects, args.seed, args.jobs)
    say(f"  {corpus['files']:,} files")
    data = args.work / "data"
    shutil.rmtree(data, ignore_errors=True)
    log = args.work / "commands.log"
    import_s, text = growth.timed([args.bin, "import", corpus["source"], "--data", data, "--jobs", args.jobs],
                                  log, timeout=3600)
    say(f"  import {import_s:.1f} s: {next((ln for ln in text.splitlines() if ln.startswith('Imported')), '')}")
    m = {"started": started, "import_s": import_s, "load_before": growth.load()}
    m["version"] = os.environ.get("BENCH_PYINDEX_VERSION") or growth.timed([args.bin, "--version"], log, 60)[1]
    m["queries"] = count_queries(args.bin, data, f"/project/{corpus['big']}/", args.work)
    say(f"  SQL statements per project page view: {m['queries']}")
    server = growth.Server(args.bin, data, args.work / "server.log")
    try:
        m["sizes"] = check_pages(server, corpus)
        status, body = get(server, f"/simple/{corpus['names'][0]}/")
        m["sizes"]["simple-small"] = len(body)
        m["reads"] = reads(server, corpus, args, args.work)
    finally:
        server.stop()
    m["load_after"] = growth.load()
    md = markdown(corpus, m, args)
    args.md.write_text(md)
    say("\n" + md)
    shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
