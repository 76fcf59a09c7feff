#!/usr/bin/env python3
"""pyindex-only benchmark parts that the shared harness does not have; `bench/run` calls this.

Starts pyindex once with the corpus loaded (through the harness, as run.py does), then:

  snapshot  writes every index page pyindex serves (/simple/ and each project page, in each of the
            three formats, identity and gzip) with its response headers, the headers of every file
            URL and the bodies of the PEP 658 metadata files, for the ceiling server
            (bench/ceiling) to answer from memory;
  mixed     reads project pages with wrk while a second client publishes a new wheel to ONE project
            every 100 ms, and compares req/s and p99 with the same reads on the quiet server, for
            the pages of the other projects and of the written-to project separately.

    BENCH_PYINDEX_CMD='target/release/pyindex serve ...' python3 bench/extras.py \\
        --snapshot DIR --mixed-md bench/results-mixed.md [--duration 10] [--corpus small]

Loopback only; every loop is bounded (the publisher stops with the reads, and at most
--max-publishes files are made).
"""

from __future__ import annotations

import argparse
import base64
import html.parser
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

HARNESS = Path(os.environ.get("BENCH_HARNESS", Path(__file__).resolve().parent.parent.parent / "shared" / "bench"))
sys.path.insert(0, str(HARNESS))
sys.dont_write_bytecode = True

import make_corpus  # noqa: E402
import run as harness  # noqa: E402
from servers import BENCH_HOME, get_adapter, launch, stop_all, upload_fields, _multipart  # noqa: E402

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
FORMATS = {"json": JSON_TYPE, "v1html": "application/vnd.pypi.simple.v1+html", "html": "text/html"}
# Per-request or per-connection headers that the ceiling must not replay.
SKIP_HEADERS = {"date", "content-length", "connection", "keep-alive", "transfer-encoding", "x-request-id"}
PUBLISH_INTERVAL = 0.1


def say(msg: str) -> None:
    print(msg, flush=True)


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[dict] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.links.append(dict(attrs))


def request(conn: http.client.HTTPConnection, method: str, path: str, headers: dict,
            body: bytes | None = None) -> tuple[int, list[tuple[str, str]], bytes]:
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    return r.status, r.getheaders(), data


def kept(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k.lower(), v) for k, v in headers if k.lower() not in SKIP_HEADERS]


# --------------------------------------------------------------------------------------------
# snapshot for the ceiling server

def snapshot(server, corpus, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    (out / "bodies").mkdir(parents=True)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    n = 0

    def store(data: bytes) -> str:
        nonlocal n
        n += 1
        rel = f"bodies/{n:06}"
        (out / rel).write_bytes(data)
        return rel

    paths = [server.adapter.simple_path] + [f"{server.adapter.simple_path}{p['norm']}/" for p in corpus.projects]
    pages, file_urls = [], {}
    for path in paths:
        variants = []
        for fmt, accept in FORMATS.items():
            for gzip in (False, True):
                headers = {"Accept": accept, **({"Accept-Encoding": "gzip"} if gzip else {})}
                status, got, body = request(conn, "GET", path, headers)
                if status != 200:
                    raise RuntimeError(f"snapshot: GET {path} ({accept}) answered {status}")
                variants.append({"format": fmt, "gzip": gzip, "headers": kept(got), "body": store(body)})
                if fmt == "html" and not gzip and path != server.adapter.simple_path:
                    p = Links()
                    p.feed(body.decode())
                    for a in p.links:
                        url = urlsplit(a["href"]).path
                        file_urls[url] = "data-core-metadata" in a
        pages.append({"path": path, "variants": variants})

    files = []
    for url, has_metadata in file_urls.items():
        status, got, _ = request(conn, "HEAD", url, {})
        if status != 200:
            raise RuntimeError(f"snapshot: HEAD {url} answered {status}")
        files.append({"path": url, "headers": kept(got), "name": unquote(url.rsplit("/", 1)[1])})
        if has_metadata:
            status, got, body = request(conn, "GET", url + ".metadata", {})
            if status != 200:
                raise RuntimeError(f"snapshot: GET {url}.metadata answered {status}")
            files.append({"path": url + ".metadata", "headers": kept(got), "body": store(body),
                          "name": unquote(url.rsplit("/", 1)[1]) + ".metadata"})
    conn.close()
    (out / "manifest.json").write_text(json.dumps({"pages": pages, "files": files}))
    return {"pages": len(pages), "files": len(files)}


# --------------------------------------------------------------------------------------------
# mixed read/write workload

def make_wheels(project: dict, count: int, work: Path) -> list[tuple[Path, dict, dict]]:
    """`count` small new wheels of `project`, versions 9000.0, 9000.1, ..."""
    out = []
    for i in range(count):
        version = f"9000.{i}"
        filename = f"{project['import_name']}-{version}-py3-none-any.whl"
        path = work / filename
        modules = {f"{project['import_name']}/__init__.py": f'__version__ = "{version}"\n'.encode()}
        make_corpus.build_wheel(path, project, version, None, modules)
        f = {"filename": filename, "version": version, "requires_python": None, "filetype": "bdist_wheel",
             "pyversion": "py3", "metadata_version": "2.1", **make_corpus.file_digests(path)}
        out.append((path, f, project))
    return out


class Publisher(threading.Thread):
    """POSTs one prepared wheel every PUBLISH_INTERVAL seconds until stopped or out of wheels."""

    def __init__(self, server, wheels):
        super().__init__(daemon=True)
        self.server, self.wheels = server, list(wheels)
        self.stop_event = threading.Event()
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.published: list[str] = []

    def run(self):
        parts = urlsplit(self.server.upload_url)
        user, password = self.server.adapter.credentials
        auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        next_at = time.monotonic()
        for path, f, p in self.wheels:
            if self.stop_event.wait(max(0.0, next_at - time.monotonic())):
                break
            next_at += PUBLISH_INTERVAL
            boundary = "mixed" + f["sha256"][:24]
            head, tail = _multipart(upload_fields(f, p), f["filename"], boundary)
            body = head + path.read_bytes() + tail
            t0 = time.monotonic()
            try:
                status, _, text = request(conn, "POST", parts.path, {
                    "Content-Type": f"multipart/form-data; boundary={boundary}", "Authorization": auth}, body)
            except (OSError, http.client.HTTPException) as e:
                self.failures.append(f"{f['filename']}: {e}")
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
                continue
            self.latencies.append(time.monotonic() - t0)
            if status == 200:
                self.published.append(f["filename"])
            else:
                self.failures.append(f"{f['filename']}: HTTP {status} {text[:200]!r}")
        conn.close()

    def stop(self):
        self.stop_event.set()
        self.join(timeout=120)


def mixed(server, corpus, args, work: Path) -> dict:
    ordinary = [p for p in corpus.projects if p["norm"] != corpus.manifest["big_project"]]
    target = ordinary[len(ordinary) // 2]
    others = [f"{server.adapter.simple_path}{p['norm']}/" for p in ordinary if p is not target]
    mine = [f"{server.adapter.simple_path}{target['norm']}/"]
    per_phase = int(2 * (args.duration + args.warmup) / PUBLISH_INTERVAL) + 20
    wheels = make_wheels(target, min(per_phase, args.max_publishes), work)
    kw = dict(duration=args.duration, connections=args.connections, threads=args.threads, accept=JSON_TYPE,
              timeout_s=30, seed=args.seed, workdir=work, cpus=None)
    out = {"target": target["norm"], "other_projects": len(others)}

    def reads(label):
        for name, paths in (("other", others), ("target", mine)):
            if args.warmup > 0:
                harness.run_wrk(server.url, paths, **{**kw, "duration": args.warmup})
            r = harness.run_wrk(server.url, paths, **kw)
            out[f"{label}-{name}"] = r
            say(f"  {label:5} {name:6} {r['rps']:>10,.1f} req/s  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms"
                + (f"  ERRORS {r['errors']}" if r["errors"] else ""))

    reads("quiet")
    publisher = Publisher(server, wheels)
    t0 = time.monotonic()
    publisher.start()
    try:
        reads("mixed")
    finally:
        publisher.stop()
    secs = time.monotonic() - t0
    lat = sorted(publisher.latencies)
    out["publisher"] = {
        "published": len(publisher.published), "seconds": round(secs, 1),
        "per_s": round(len(publisher.published) / secs, 1),
        "p50_ms": round(statistics.median(lat) * 1000, 1) if lat else None,
        "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 1) if lat else None,
        "failures": publisher.failures[:5], "failed": len(publisher.failures),
    }
    say(f"  publisher: {out['publisher']}")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    status, _, body = request(conn, "GET", mine[0], {"Accept": "text/html"})
    conn.close()
    text = body.decode() if status == 200 else ""
    listed = sum(1 for name in publisher.published if f">{name}</a>" in text)
    out["check"] = f"{listed}/{len(publisher.published)} published files listed on {mine[0]} afterwards"
    say(f"  {out['check']}")
    return out


INTERLEAVED = [("GET /simple/ (root index)", "root", "text/html"),
               ("GET project page, HTML", "project-html", "text/html"),
               ("GET project page, JSON", "project-json", JSON_TYPE)]


def cpu_seconds(server) -> float:
    """User + system CPU time so far of every process of a running server (from /proc)."""
    ticks = 0
    for pid in server.pids():
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def interleaved(servers: dict, corpus, args, work: Path) -> str:
    """Short wrk runs taking turns between servers that all run at once, median per server:
    ratios that hold up when other work on the machine comes and goes during the run. Also the
    server's CPU time per answered request in each run (utime + stime of its processes), which
    other work on the machine moves far less than req/s."""
    projects = [f"/simple/{p['norm']}/" for p in corpus.projects]
    rps = {(name, wl): [] for name in servers for _, wl, _ in INTERLEAVED}
    cpu = {(name, wl): [] for name in servers for _, wl, _ in INTERLEAVED}
    la0 = os.getloadavg()[0]
    for rnd in range(args.rounds):
        for label, wl, accept in INTERLEAVED:
            for name, server in servers.items():
                paths = ["/simple/"] if wl == "root" else projects
                kw = dict(connections=args.connections, threads=args.threads, accept=accept, timeout_s=30,
                          seed=args.seed + rnd, workdir=work, cpus=None)
                harness.run_wrk(server.url, paths, **{**kw, "duration": 1})
                before = cpu_seconds(server)
                result = harness.run_wrk(server.url, paths, duration=args.round_seconds, **kw)
                rps[(name, wl)].append(result["rps"])
                cpu[(name, wl)].append((cpu_seconds(server) - before) / result["requests"] * 1e6)
        say(f"  round {rnd + 1}: " + ", ".join(f"{n} {wl} {rps[(n, wl)][-1]:,.0f} ({cpu[(n, wl)][-1]:.1f} µs)"
                                               for n in servers for _, wl, _ in INTERLEAVED))
    med = {k: statistics.median(v) for k, v in rps.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    names = list(servers)
    others = [n for n in names if n not in ("nginx", "pyindex", "ceiling")]
    lines = ["# Interleaved: index pages, servers taking turns", "",
             f"Run {time.strftime('%Y-%m-%d %H:%M:%S')}; {args.rounds} rounds; in each round every server gets "
             f"a {args.round_seconds:.0f} s wrk run (`-t{args.threads} -c{args.connections}`, after 1 s of warm-up) "
             "per workload, in turn, while all of them are running; median req/s of the rounds. Load avg "
             f"before / after {la0:.2f} / {os.getloadavg()[0]:.2f}.", "",
             "| req/s (median) | " + " | ".join(names) + " | pyindex / nginx | pyindex / ceiling |"
             + "".join(f" {n} / ceiling |" for n in others),
             "|---|" + "---|" * (len(names) + 2 + len(others))]
    for label, wl, _ in INTERLEAVED:
        cells = [f"{med[(n, wl)]:,.0f}" for n in names]
        lines.append(f"| {label} | {' | '.join(cells)} | {med[('pyindex', wl)] / med[('nginx', wl)]:.2f}× | "
                     f"{med[('pyindex', wl)] / med[('ceiling', wl)]:.2f}× |"
                     + "".join(f" {med[(n, wl)] / med[('ceiling', wl)]:.2f}× |" for n in others))
    lines += ["", "Server CPU time per request (µs, user + system of the server's processes over each run, "
              "median of the rounds):", "",
              "| µs CPU / request | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label, wl, _ in INTERLEAVED:
        lines.append(f"| {label} | " + " | ".join(f"{med_cpu[(n, wl)]:.1f}" for n in names) + " |")
    lines += ["", "Every round (req/s): " + "; ".join(
        f"{n} {wl} " + "/".join(f"{v:,.0f}" for v in rps[(n, wl)]) for n in names for _, wl, _ in INTERLEAVED) + ".",
        "", "Every round (µs CPU / request): " + "; ".join(
        f"{n} {wl} " + "/".join(f"{v:.1f}" for v in cpu[(n, wl)]) for n in names for _, wl, _ in INTERLEAVED) + "."]
    return "\n".join(lines) + "\n"


def mixed_markdown(res: dict, meta: dict) -> str:
    pub = res["publisher"]
    lines = [
        "# Mixed read/write: project pages while one project is published to every 100 ms",
        "",
        f"Run {meta['started']}; pyindex {meta['version']}; corpus `{meta['corpus']}`; wrk `-t{meta['threads']} "
        f"-c{meta['connections']} -d{meta['duration']:.0f}s` after a {meta['warmup']:.0f} s warm-up, "
        f"`Accept: {JSON_TYPE}`; load avg before / after {meta['loadavg'][0]} / {meta['loadavg'][1]}.",
        f"Written-to project: `{res['target']}` (a new wheel every 100 ms through `POST /legacy/`); "
        f"other projects: {res['other_projects']}, a random one per request. Quiet and mixed are measured "
        "one after the other on the same server in the same run; mixed / quiet is the ratio (goal: ≥ 0.9×).",
        "",
        "| pages | quiet req/s | mixed req/s | mixed / quiet | quiet p50 / p99 ms | mixed p50 / p99 ms |",
        "|---|---|---|---|---|---|",
    ]
    for name, label in (("other", "other projects"), ("target", "the written-to project")):
        q, m = res[f"quiet-{name}"], res[f"mixed-{name}"]
        flag = " (!)" if q["errors"] or m["errors"] else ""
        lines.append(f"| {label}{flag} | {q['rps']:,.0f} | {m['rps']:,.0f} | {m['rps'] / q['rps']:.2f}× | "
                     f"{q['p50_ms']:.2f} / {q['p99_ms']:.2f} | {m['p50_ms']:.2f} / {m['p99_ms']:.2f} |")
    lines += [
        "",
        f"Publisher: {pub['published']} files in {pub['seconds']} s ({pub['per_s']}/s), publish latency "
        f"p50 {pub['p50_ms']} ms, p99 {pub['p99_ms']} ms, {pub['failed']} failed{': ' + '; '.join(pub['failures']) if pub['failures'] else ''}.",
        f"Check: {res['check']}.",
    ]
    return "\n".join(lines) + "\n"


CEILING_ROWS = [("GET /simple/ (root index)", "root"), ("GET project page, HTML", "project-html"),
                ("GET project page, JSON", "project-json"), ("GET small file", "small-file")]


def ceiling_markdown(results: dict, name: str = "pyindex", ceiling: str = "ceiling") -> str:
    """pyindex's req/s as a share of the ceiling's, and both against nginx, from one run.py result."""
    by = {s["name"]: s.get("metrics", {}) for s in results["servers"]}
    base = results["meta"]["baseline"]
    lines = ["## pyindex against the ceiling (same run)", "",
             f"`{ceiling}`: bench/ceiling, a bare axum server answering the bytes and headers pyindex served "
             "(snapshot taken just before the run) from memory, no middleware: the speed limit of this "
             "HTTP stack on this machine. Goal: pyindex at least 0.9× of it for cached pages.", "",
             f"| req/s | {base} | {name} | {ceiling} | {name} / {base} | {ceiling} / {base} | {name} / {ceiling} |",
             "|---|---|---|---|---|---|---|"]
    for label, wl in CEILING_ROWS:
        v = {n: (by.get(n, {}).get(wl) or {}).get("rps") for n in (base, name, ceiling)}
        cells = [f"{v[n]:,.0f}" if v[n] else "—" for n in (base, name, ceiling)]
        ratio = lambda a, b: f"{v[a] / v[b]:.2f}×" if v[a] and v[b] else "—"  # noqa: E731
        lines.append(f"| {label} | {' | '.join(cells)} | {ratio(name, base)} | {ratio(ceiling, base)} | "
                     f"{ratio(name, ceiling)} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="small")
    ap.add_argument("--snapshot", type=Path, help="write the ceiling's snapshot here")
    ap.add_argument("--mixed-md", type=Path, help="run the mixed workload and write its table here")
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-publishes", type=int, default=1000)
    ap.add_argument("--interleaved-md", type=Path,
                    help="also start nginx and the ceiling (needs --snapshot and $BENCH_CEILING_CMD) and write "
                         "the interleaved index-page comparison here")
    ap.add_argument("--also", action="append", default=[], metavar="NAME",
                    help="one more server in the interleaved comparison, started from $BENCH_<NAME>_CMD "
                         "(e.g. pyindex-main: the main branch's binary, for before / after in one run)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--round-seconds", type=float, default=5)
    ap.add_argument("--ceiling-summary", type=Path, metavar="RESULTS_JSON",
                    help="only print (and --append) the pyindex / ceiling table of a run.py JSON result")
    ap.add_argument("--append", type=Path, metavar="MD", help="append the ceiling table to this Markdown file")
    args = ap.parse_args(argv)
    if args.ceiling_summary:
        md = ceiling_markdown(json.loads(args.ceiling_summary.read_text()))
        say("\n" + md)
        if args.append:
            with open(args.append, "a") as f:
                f.write("\n" + md)
        return 0
    corpus = harness.ensure_corpus(args.corpus)
    adapter = get_adapter("pyindex")
    work = Path(tempfile.mkdtemp(prefix="extras-", dir=BENCH_HOME))
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    try:
        server, _ = launch(adapter, corpus, work / "data", log=work / "server.log", say=say)
        if args.snapshot:
            t0 = time.monotonic()
            info = snapshot(server, corpus, args.snapshot)
            say(f"snapshot for the ceiling: {info['pages']} pages, {info['files']} file URLs in "
                f"{time.monotonic() - t0:.1f} s -> {args.snapshot}")
        if args.interleaved_md and args.snapshot:
            say("interleaved index pages: nginx, pyindex, ceiling")
            servers = {"nginx": launch(get_adapter("nginx"), corpus, work / "nginx", log=work / "nginx.log",
                                       say=say)[0],
                       "pyindex": server}
            for name in args.also:
                servers[name] = launch(get_adapter(name), corpus, work / name, log=work / f"{name}.log", say=say)[0]
            servers["ceiling"] = launch(get_adapter("ceiling"), corpus, work / "ceiling", log=work / "ceiling.log",
                                        say=say)[0]
            md = interleaved(servers, corpus, args, work)
            args.interleaved_md.write_text(md)
            say("\n" + md)
        if args.mixed_md:
            say("mixed read/write workload (pyindex):")
            la0 = os.getloadavg()[0]
            res = mixed(server, corpus, args, work)
            meta = {"started": started, "version": adapter.version(), "corpus": args.corpus,
                    "threads": args.threads, "connections": args.connections, "duration": args.duration,
                    "warmup": args.warmup, "loadavg": [round(la0, 2), round(os.getloadavg()[0], 2)]}
            md = mixed_markdown(res, meta)
            args.mixed_md.write_text(md)
            say("\n" + md)
        server.stop()
    finally:
        stop_all()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
