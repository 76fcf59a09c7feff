#!/usr/bin/env python3
"""Upstream proxy benchmark (issue 11): installs straight from an upstream against installs
through pyindex, cold and warm, and a cached proxied page against a private one.

The upstream is a static PEP 503 / PEP 691 index of 50 small projects (3 versions of a wheel
and an sdist each, dependencies between some), generated with the shared harness's generator
and laid out like a real upstream: JSON pages with sizes, upload times and PEP 658 core-metadata
(the `.metadata` files beside the wheels), HTML pages with the same attributes, relative links.
nginx serves it on loopback (the harness's nginx adapter: sendfile, JSON picked by Accept).

In one run:

  direct   `uv pip install --no-cache` of the 50 projects into a fresh venv, --index-url nginx
  cold     the same through a pyindex started with an empty data directory (`--upstream nginx`),
           a new one for each run (the server's start is not timed)
  warm     the same again through that pyindex (pages and files cached)

each run does the three in turn (the machine drifts); median of --runs each (3), then wrk turns (--rounds rounds of --round-seconds, median; 32
connections) over the page of one proxied project (cached) and of a private project with the
same files under a name of the same length, imported into the same server, in JSON and HTML.

    cargo build --release -p pyindex
    python3 bench/upstream.py --md bench/results-upstream.md [--bin target/release/pyindex]

Put BENCH_HOME on a tmpfs (BENCH_HOME=/dev/shm/bench BENCH_TOOLS_VENV=/tmp/bench/venvs/tools; uv's
temporary directory is kept under it too): on ext4, creating and deleting a venv of 50 projects
per install slows the disk run after run (new inodes among recently deleted ones), so later
installs are slower than earlier ones whatever serves them.

Loopback only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HARNESS = Path(os.environ.get("BENCH_HARNESS", REPO.parent / "shared" / "bench"))
sys.path.insert(0, str(HARNESS))
sys.dont_write_bytecode = True

import make_corpus  # noqa: E402
import run as harness  # noqa: E402
from servers import Adapter, NginxAdapter, RunningServer, stop_all  # noqa: E402

BENCH_HOME = Path(os.environ.get("BENCH_HOME", "/tmp/bench"))
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
PROJECTS = 50
VERSIONS = 3
SEED = 20261129
# Upload times like a real upstream's: one release a month from 2023 on, microseconds included.
FIRST_UPLOAD = 1672531200  # 2023-01-01T00:00:00Z


def say(msg: str) -> None:
    print(msg, flush=True)


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


# --------------------------------------------------------------------------------------------
# the upstream: a static tree

def wheel_metadata(path: Path) -> bytes:
    with zipfile.ZipFile(path) as zf:
        return zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA")))


def upload_time(project_index: int, version_index: int) -> str:
    t = FIRST_UPLOAD + (version_index * 30 + project_index) * 86_400 + project_index * 3_607
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{(project_index * 7919) % 10**6:06d}Z"


def file_entry(project: dict, pi: int, record: dict, simple: Path) -> dict:
    """One file as the JSON page lists it; writes the wheel's `.metadata` file beside it."""
    vi = project["versions"].index(record["version"])
    entry = {"filename": record["filename"], "url": record["filename"],
             "hashes": {"sha256": record["sha256"]}, "requires-python": record["requires_python"],
             "size": record["size"], "upload-time": upload_time(pi, vi), "yanked": False}
    if record["filename"].endswith(".whl"):
        path = simple / project["norm"] / record["filename"]
        meta = wheel_metadata(path)
        Path(str(path) + ".metadata").write_bytes(meta)
        digest = {"sha256": hashlib.sha256(meta).hexdigest()}
        entry["core-metadata"] = entry["dist-info-metadata"] = digest
    return entry


def html_page(name: str, entries: list[dict]) -> str:
    links = []
    for e in entries:
        attrs = f'href="{e["url"]}#sha256={e["hashes"]["sha256"]}"'
        if e["requires-python"]:
            attrs += f' data-requires-python="{html.escape(e["requires-python"])}"'
        if "core-metadata" in e:
            meta = f'sha256={e["core-metadata"]["sha256"]}'
            attrs += f' data-dist-info-metadata="{meta}" data-core-metadata="{meta}"'
        links.append(f'    <a {attrs}>{e["filename"]}</a><br />\n')
    return ("<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.1\">\n"
            f"    <title>Links for {html.escape(name)}</title>\n  </head>\n  <body>\n"
            f"    <h1>Links for {html.escape(name)}</h1>\n" + "".join(links) + "  </body>\n</html>\n")


def write_pages(simple: Path, projects: list[dict]) -> None:
    (simple / "index.html").write_text(
        "<!DOCTYPE html>\n<html>\n  <body>\n"
        + "".join(f'    <a href="{p["norm"]}/">{p["norm"]}</a><br />\n' for p in projects)
        + "  </body>\n</html>\n")
    (simple / "index.v1.json").write_text(json.dumps(
        {"meta": {"api-version": "1.1"}, "projects": [{"name": p["norm"]} for p in projects]}))
    for pi, p in enumerate(projects):
        entries = [file_entry(p, pi, f, simple) for f in p["files"]]
        (simple / p["norm"] / "index.html").write_text(html_page(p["norm"], entries))
        (simple / p["norm"] / "index.v1.json").write_text(json.dumps(
            {"meta": {"api-version": "1.1"}, "name": p["norm"], "versions": p["versions"], "files": entries}))


def twin_of(project: dict, taken: set[str]) -> dict:
    """The same project under another name of the same length (for the private page)."""
    for lead in "qxzjkv":
        name = lead + project["norm"][1:]
        if name not in taken:
            break
    else:
        raise RuntimeError(f"no free twin name for {project['norm']}")
    return {**project, "name": name, "norm": make_corpus.normalize(name),
            "import_name": make_corpus.dist_escape(name)}


def make_upstream(out: Path) -> dict:
    params = {"projects": PROJECTS, "versions": VERSIONS, "seed": SEED, "v": 1,
              "generator_version": make_corpus.GENERATOR_VERSION}
    stamp = out / "upstream.json"
    if stamp.exists() and json.loads(stamp.read_text()).get("params") == params:
        return json.loads(stamp.read_text())
    shutil.rmtree(out, ignore_errors=True)
    simple = out / "www" / "simple"
    simple.mkdir(parents=True)
    make_corpus._POOL = make_corpus.text_pool(SEED)  # the generator's text, read by write_project_files
    projects = make_corpus.plan_projects(SEED, PROJECTS, VERSIONS, tag="main")
    for p in projects:
        p["files"] = make_corpus.write_project_files((p, str(simple / p["norm"])))
    write_pages(simple, projects)
    # The page compared: one project's (each has 6 files), and its private twin's.
    compared = projects[len(projects) // 2]
    twin = twin_of(compared, {p["norm"] for p in projects})
    private = out / "private"
    make_corpus.write_project_files((twin, str(private)))
    # A manifest for the harness's nginx adapter (it reads the corpus id and project list).
    (out / "manifest.json").write_text(json.dumps({"corpus_id": f"upstream-{SEED}", "projects": [
        {"norm": p["norm"], "files": []} for p in projects]}))
    info = {"params": params, "names": [p["norm"] for p in projects], "compared": compared["norm"],
            "twin": twin["norm"], "private": str(private),
            "files": sum(len(p["files"]) for p in projects),
            "bytes": sum(f["size"] for p in projects for f in p["files"]),
            "dependencies": sum(1 for p in projects for d in p["requires_dist"] if "extra ==" not in d)}
    stamp.write_text(json.dumps(info))
    return info


class StaticTree:
    """What the harness's nginx adapter needs of a corpus: the tree's root."""

    def __init__(self, path: Path):
        self.path = path
        self.root = path / "www"
        self.id = f"upstream-{SEED}"


# --------------------------------------------------------------------------------------------
# pyindex with an upstream

class ProxyAdapter(Adapter):
    name = "pyindex"

    def __init__(self, binary: Path, upstream: str):
        self.binary, self.upstream = binary, upstream

    def argv(self, corpus, data, port):
        # No request log, as the harness's nginx runs with `access_log off`.
        return [str(self.binary), "serve", "--listen", f"127.0.0.1:{port}", "--data", str(data / "data"),
                "--upstream", self.upstream, "--request-log", "off"]


def start_proxy(binary: Path, upstream: str, tree: StaticTree, work: Path, name: str, private: Path,
                log: Path) -> RunningServer:
    """A pyindex with an empty cache and the private twin imported, serving."""
    data = work / name
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    with open(log, "ab") as out:
        subprocess.run([str(binary), "import", str(private), "--data", str(data / "data")],
                       stdout=out, stderr=subprocess.STDOUT, check=True, timeout=300)
    server = RunningServer(ProxyAdapter(binary, upstream), tree, data, log=log)
    server.start()
    return server


# --------------------------------------------------------------------------------------------
# measurements

def uv_install(index_url: str, targets: list[str], work: Path) -> float:
    env = harness.client_env(work)
    # uv unpacks into the temporary directory even with --no-cache: keep it beside the venv.
    (work / "tmp").mkdir(exist_ok=True)
    env["TMPDIR"] = str(work / "tmp")
    venv = work / "venv"
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([harness.tool("uv"), "venv", "-q", "--python", sys.executable, str(venv)], check=True,
                   env=env, capture_output=True, timeout=120)
    seconds = harness.timed([harness.tool("uv"), "pip", "install", "--python", str(venv / "bin" / "python"),
                             "--index-url", index_url, "--no-cache", "--quiet", *targets], env, timeout=900)
    listing = subprocess.run([harness.tool("uv"), "pip", "list", "--python", str(venv / "bin" / "python"),
                              "--format", "json"], capture_output=True, text=True, env=env, timeout=120)
    installed = {p["name"] for p in json.loads(listing.stdout or "[]")}
    missing = [t for t in targets if t not in {make_corpus.normalize(n) for n in installed}]
    if missing:
        raise RuntimeError(f"uv pip install from {index_url} left out {missing}")
    shutil.rmtree(venv, ignore_errors=True)
    return seconds


def get(url: str, accept: str) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()


def page_reads(server: RunningServer, info: dict, args, work: Path) -> dict:
    pages = {"proxied": f"/simple/{info['compared']}/", "private": f"/simple/{info['twin']}/"}
    out = {}
    for fmt, accept in (("json", JSON_TYPE), ("html", "text/html")):
        sizes = {}
        for kind, path in pages.items():
            status, headers, body = get(server.url + path, accept)
            if status != 200 or (kind == "proxied") != ("x-pyindex-upstream" in headers):
                raise RuntimeError(f"GET {path} ({accept}): {status}, headers {headers}")
            sizes[kind] = len(body)
        runs = {kind: [] for kind in pages}
        for rnd in range(args.rounds):
            for kind, path in pages.items():
                runs[kind].append(harness.run_wrk(server.url, [path], duration=args.round_seconds,
                                                  connections=args.connections, threads=2, accept=accept,
                                                  timeout_s=30, seed=rnd, workdir=work, cpus=None))
            say(f"  {fmt} round {rnd + 1} (load {load()}): "
                + ", ".join(f"{k} {runs[k][-1]['rps']:,.0f} req/s" for k in pages))
        out[fmt] = {kind: {"rps": statistics.median(r["rps"] for r in rs),
                           "p99_ms": statistics.median(r["p99_ms"] for r in rs),
                           "errors": sum(sum(r["errors"].values()) for r in rs),
                           "all": [round(r["rps"]) for r in rs], "bytes": sizes[kind]}
                    for kind, rs in runs.items()}
    return out


def installs(binary: Path, nginx: RunningServer, tree: StaticTree, info: dict, args, work: Path, log: Path):
    """Each run installs straight from nginx, through a new pyindex (cold) and through the same
    pyindex again (warm): the three kinds side by side rather than one kind after the other, as
    the machine drifts over a minute. The direct install comes first in even runs and last in
    odd ones, so that neither it nor the warm install (always right after the cold one, while
    the server still writes what it fetched) always follows the heaviest step."""
    targets = info["names"]
    times = {"direct": [], "cold": [], "warm": []}
    server = None
    for i in range(args.runs):
        if i % 2 == 0:
            times["direct"].append(uv_install(nginx.simple_url, targets, work))
        if server is not None:
            server.stop()
        server = start_proxy(binary, nginx.simple_url, tree, work, f"pyindex-{i}", Path(info["private"]), log)
        times["cold"].append(uv_install(server.simple_url, targets, work))
        times["warm"].append(uv_install(server.simple_url, targets, work))
        if i % 2 == 1:
            times["direct"].append(uv_install(nginx.simple_url, targets, work))
        say(f"  run {i + 1}: direct {times['direct'][-1]:.2f} s, cold {times['cold'][-1]:.2f} s, "
            f"warm {times['warm'][-1]:.2f} s (load {load()})")
    return times, server


def markdown(info: dict, m: dict, args) -> str:
    t = {k: statistics.median(v) for k, v in m["times"].items()}
    direct = t["direct"]
    lines = [
        "# Upstream proxy: installs through pyindex against straight from the upstream",
        "",
        f"Run {m['started']}; pyindex {m['version']}; load average {m['load_before']} before, "
        f"{m['load_after']} after (2 cores shared by the servers, uv, wrk and other engineers' work). "
        f"Upstream: nginx {m['nginx']} serving a static PEP 503 / PEP 691 tree on loopback: "
        f"{len(info['names'])} projects, {info['files']} files ({info['bytes'] / 2**20:.1f} MiB; "
        f"{VERSIONS} versions of a wheel and an sdist each, {info['dependencies']} dependencies between "
        "them), JSON pages with sizes, upload times and PEP 658 core-metadata. "
        f"`uv pip install --no-cache` of all {len(info['names'])} projects into a fresh venv, "
        f"median of {args.runs} runs, each run installing direct, cold and warm in turn (direct first in "
        "even runs, last in odd ones), pyindex with `--request-log off` as nginx has `access_log off`; cold: a new "
        "pyindex with an empty data directory per run (start not timed); warm: the same server "
        "again right after, pages within `--upstream-ttl`.",
        "",
        "| install | median s | runs s | / direct (medians) | / direct (median of each run's ratio) | goal |",
        "|---|---|---|---|---|---|",
    ]
    goals = {"direct": "", "cold": "≤ 1.5×", "warm": "≤ 1.0×"}
    labels = {"direct": "straight from the upstream (nginx)", "cold": "through pyindex, cold cache",
              "warm": "through pyindex, warm cache"}
    for k in ("direct", "cold", "warm"):
        runs = " / ".join(f"{x:.2f}" for x in m["times"][k])
        paired = statistics.median(x / d for x, d in zip(m["times"][k], m["times"]["direct"]))
        lines.append(f"| {labels[k]} | {t[k]:.2f} | {runs} | {t[k] / direct:.2f}× | {paired:.2f}× | {goals[k]} |")
    lines += [
        "",
        f"Cached project pages on the same server (wrk `-t2 -c{args.connections}`, {args.rounds} rounds of "
        f"{args.round_seconds:.0f} s in turns, median): `{info['compared']}` proxied (6 files, served from "
        f"the page cache) and `{info['twin']}`, the same files imported as a private project (its page "
        "is larger only by its file URLs, which carry each file's sha256).",
        "",
        "| page | bytes | req/s | p99 ms | proxied / private |",
        "|---|---|---|---|---|",
    ]
    for fmt, label in (("json", "PEP 691 JSON"), ("html", "HTML")):
        r = m["pages"][fmt]
        for kind in ("proxied", "private"):
            v = r[kind]
            ratio = f"{v['rps'] / r['private']['rps']:.2f}×" if kind == "proxied" else ""
            err = f" ({v['errors']} errors)" if v["errors"] else ""
            lines.append(f"| {kind}, {label}{err} | {v['bytes']:,} | {v['rps']:,.0f} | {v['p99_ms']:.2f} | {ratio} |")
    lines += ["", "Every round (req/s): " + "; ".join(
        f"{kind} {fmt} " + "/".join(f"{x:,}" for x in m["pages"][fmt][kind]["all"])
        for fmt in ("json", "html") for kind in ("proxied", "private")) + "."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", type=Path, default=REPO / "target" / "release" / "pyindex")
    ap.add_argument("--md", type=Path, default=REPO / "bench" / "results-upstream.md")
    ap.add_argument("--work", type=Path, default=BENCH_HOME / "upstream")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--round-seconds", type=float, default=5)
    ap.add_argument("--connections", type=int, default=32)
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    m = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "load_before": load()}
    info = make_upstream(args.work / "corpus")
    say(f"upstream: {len(info['names'])} projects, {info['files']} files (load {m['load_before']})")
    tree = StaticTree(args.work / "corpus")
    log = args.work / "servers.log"
    nginx_adapter = NginxAdapter()
    m["nginx"] = nginx_adapter.version()
    m["version"] = os.environ.get("BENCH_PYINDEX_VERSION") or subprocess.run(
        [str(args.bin), "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
    nginx_data = args.work / "nginx"
    shutil.rmtree(nginx_data, ignore_errors=True)
    nginx_data.mkdir(parents=True)
    nginx = RunningServer(nginx_adapter, tree, nginx_data, log=log)
    try:
        nginx.start()
        m["times"], proxy = installs(args.bin, nginx, tree, info, args, args.work, log)
        m["pages"] = page_reads(proxy, info, args, args.work)
    finally:
        stop_all()
    m["load_after"] = load()
    md = markdown(info, m, args)
    args.md.write_text(md)
    say("\n" + md)
    for i in range(args.runs):
        shutil.rmtree(args.work / f"pyindex-{i}", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
