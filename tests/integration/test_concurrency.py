"""Concurrent uploads (standards I7, N65): one filename raced with different
bytes has exactly one winner; unrelated concurrent uploads all land."""

from __future__ import annotations

import concurrent.futures
import threading

import pytest

import support

THREADS = 8


def race(upload, server, dists):
    barrier = threading.Barrier(len(dists))

    def one(dist):
        barrier.wait(timeout=30)
        return upload(server, dist)

    with concurrent.futures.ThreadPoolExecutor(len(dists)) as pool:
        return list(pool.map(one, dists))


@pytest.mark.parametrize("round_", range(3))
def test_same_filename_different_bytes_has_one_winner(module_server, upload, dists, round_):
    version = f"1.{round_}"
    contenders = [
        support.make_wheel(dists / f"c{i}", "racer", version, salt=f"contender-{i}") for i in range(THREADS)
    ]
    assert len({c.sha256 for c in contenders}) == THREADS
    responses = race(upload, module_server, contenders)
    codes = [r.status_code for r in responses]
    assert codes.count(200) == 1, [(r.status_code, r.reason) for r in responses]
    assert codes.count(409) == THREADS - 1, [(r.status_code, r.reason, r.text[:200]) for r in responses]
    for r in responses:
        if r.status_code == 409:
            assert r.text.startswith("File already exists"), r.text
    winner = contenders[codes.index(200)]
    listed = [f for f in module_server.files("racer") if f["filename"] == winner.filename]
    assert len(listed) == 1, listed
    assert listed[0]["hashes"]["sha256"] == winner.sha256
    assert module_server.download(listed[0]["url"]) == winner.data


def test_same_filename_same_bytes_all_succeed(module_server, upload, dists):
    w = support.make_wheel(dists, "twins", "1.0")
    responses = race(upload, module_server, [w] * THREADS)
    assert [r.status_code for r in responses] == [200] * THREADS, [(r.status_code, r.reason, r.text) for r in responses]
    assert [f["filename"] for f in module_server.files("twins")] == [w.filename]


def test_unrelated_concurrent_uploads_all_land(module_server, upload, dists):
    batch = [support.make_wheel(dists, f"crowd-{i % 3}", f"2.{i}") for i in range(THREADS * 2)]
    responses = race(upload, module_server, batch)
    assert all(r.status_code == 200 for r in responses), [(r.status_code, r.reason, r.text) for r in responses]
    for i in range(3):
        listed = {f["filename"]: f["hashes"]["sha256"] for f in module_server.files(f"crowd-{i}")}
        expected = {d.filename: d.sha256 for d in batch if d.name == f"crowd-{i}"}
        assert listed == expected
    assert {f"crowd-{i}" for i in range(3)} <= module_server.root_projects()


def test_reads_during_uploads_stay_consistent(module_server, upload, dists):
    """Index pages read while uploads land always list files that download intact."""
    batch = [support.make_wheel(dists, "busy", f"3.{i}") for i in range(THREADS)]
    stop = threading.Event()
    problems: list[str] = []

    def reader():
        while not stop.is_set():
            try:
                for f in module_server.files("busy"):
                    body = module_server.download(f["url"])
                    if support.sha256_hex(body) != f["hashes"]["sha256"] or len(body) != f["size"]:
                        problems.append(f"{f['filename']}: listed but content differs")
            except Exception as e:  # noqa: BLE001 - reported below
                problems.append(repr(e))

    t = threading.Thread(target=reader)
    t.start()
    try:
        responses = race(upload, module_server, batch)
    finally:
        stop.set()
        t.join(timeout=30)
    assert all(r.status_code == 200 for r in responses)
    assert not problems, problems
    assert len(module_server.files("busy")) == THREADS


def test_cli_yanks_while_uploads_land(module_server, upload, dists):
    """The CLI and the server share the catalog: neither may fail with a lock error."""
    base = support.make_wheel(dists / "base", "flip", "1.0")
    assert upload(module_server, base).status_code == 200
    batch = [support.make_wheel(dists, "busy-cli", f"4.{i}") for i in range(THREADS * 2)]
    cli_results = []

    def flipper():
        for i in range(6):
            verb = "yank" if i % 2 == 0 else "unyank"
            cli_results.append(module_server.cli(verb, "flip", "1.0", check=False))

    t = threading.Thread(target=flipper)
    t.start()
    responses = race(upload, module_server, batch)
    t.join(timeout=120)
    assert all(r.status_code == 200 for r in responses), [(r.status_code, r.text) for r in responses]
    failed = [support.describe(p) for p in cli_results if p.returncode != 0]
    assert len(cli_results) == 6 and not failed, failed
    assert len(module_server.files("busy-cli")) == len(batch)
    # six flips end unyanked
    module_server.wait_for(lambda: module_server.files("flip")[0].get("yanked", False) is False, timeout=5,
                           what="flip 1.0 unyanked")
