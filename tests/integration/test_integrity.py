"""Integrity and recovery: `pyindex verify` finds flipped bytes and deleted files by
filename, `verify --repair` removes unreferenced blobs and stale spool files but never a
listed file, and `pyindex backup` taken during uploads restores (into a wiped data dir) to an
index that serves every acknowledged file byte-identical."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from pathlib import Path

import support


def blob_path(data: Path, sha256: str) -> Path:
    return data / "files" / "sha256" / sha256[:2] / sha256[2:4] / sha256


def problem_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(("missing:", "corrupt:", "unreadable:"))]


def publish(server, upload, dists: Path, name: str, versions) -> list[support.Dist]:
    published = []
    for v in versions:
        w = support.make_wheel(dists / f"{name}-{v}", name, v, payload=os.urandom(4096))
        r = upload(server, w)
        assert r.status_code == 200, r.text
        published.append(w)
    return published


def test_verify_reports_flipped_and_deleted_files_by_name(server, upload, dists):
    flipped, deleted, intact = publish(server, upload, dists, "checked", ["1.0", "2.0", "3.0"])
    ok = server.cli("verify")
    assert "Checked 3 files (6 blobs" in ok.stdout and "all intact" in ok.stdout, ok.stdout
    assert problem_lines(ok.stdout) == []

    path = blob_path(server.data, flipped.sha256)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    blob_path(server.data, deleted.sha256).unlink()
    meta = server.file_named("checked", intact.filename)["core-metadata"]["sha256"]
    blob_path(server.data, meta).unlink()

    bad = server.cli("verify", check=False)
    assert bad.returncode == 1, support.describe(bad)
    assert sorted(problem_lines(bad.stdout)) == sorted(
        [
            f"corrupt: {flipped.filename} (expected sha256 {flipped.sha256}, "
            f"found {hashlib.sha256(bytes(data)).hexdigest()})",
            f"missing: {deleted.filename} (sha256 {deleted.sha256})",
            f"missing: {intact.filename}.metadata (sha256 {meta})",
        ]
    ), bad.stdout
    assert "3 missing or corrupt" in bad.stdout
    assert "error: 3 file(s) are missing or corrupt" in bad.stdout


def test_repair_removes_orphans_and_stale_spool_files_and_nothing_listed(server, upload, dists, make_venv):
    listed = publish(server, upload, dists, "repaired", ["1.0", "1.1"])
    orphan = os.urandom(1000)
    orphan_sha = hashlib.sha256(orphan).hexdigest()
    orphan_path = blob_path(server.data, orphan_sha)
    orphan_path.parent.mkdir(parents=True, exist_ok=True)
    orphan_path.write_bytes(orphan)
    stale = server.data / "tmp" / "upload-stale"
    stale.write_bytes(b"half an upload")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    fresh = server.data / "tmp" / "upload-fresh"
    fresh.write_bytes(b"an upload in progress")

    # Default grace period (1h): the new orphan may belong to an upload in progress.
    kept = server.cli("verify", "--repair")
    assert orphan_path.exists(), kept.stdout
    assert not stale.exists() and fresh.exists(), kept.stdout
    assert f"removed stale spool file {stale}" in kept.stdout

    repaired = server.cli("verify", "--repair", "--grace", "0s")
    assert f"removed unreferenced blob {orphan_sha} (1000 bytes)" in repaired.stdout, repaired.stdout
    assert "Repair removed 1 unreferenced blob(s)" in repaired.stdout
    assert not orphan_path.exists()
    for w in listed:
        assert blob_path(server.data, w.sha256).read_bytes() == w.data
        meta = server.file_named("repaired", w.filename)["core-metadata"]["sha256"]
        assert blob_path(server.data, meta).is_file()
    assert problem_lines(server.cli("verify").stdout) == []
    venv = make_venv()
    support.check(venv.pip_install("repaired==1.1", index_url=server.simple_url))
    assert venv.installed().get("repaired") == "1.1"


def test_backup_during_uploads_then_wipe_restore_and_serve(server, upload, dists, tmp_path):
    originals = {w.filename: w for w in publish(server, upload, dists, "saved", ["0.1", "0.2", "0.3"])}
    acknowledged: dict[str, float] = {name: time.monotonic() for name in originals}
    failures: list[str] = []

    def upload_loop():
        for i in range(30):
            w = support.make_wheel(dists / f"loop-{i}", "saved", f"1.{i}", payload=os.urandom(64 * 1024))
            originals[w.filename] = w
            r = upload(server, w)
            if r.status_code != 200:
                failures.append(f"{w.filename}: {r.status_code} {r.text}")
                return
            acknowledged[w.filename] = time.monotonic()

    uploader = threading.Thread(target=upload_loop)
    uploader.start()
    try:
        support.wait_until(lambda: len(acknowledged) >= 8, timeout=60, what="uploads before the backup")
        began = time.monotonic()
        dest = tmp_path / "backup"
        done = server.cli("backup", str(dest), timeout=120)
    finally:
        uploader.join(timeout=120)
    assert not failures, failures
    assert len(acknowledged) == 33
    assert (dest / "backup.json").is_file() and "Backed up" in done.stdout, done.stdout
    before = {name for name, at in acknowledged.items() if at < began}

    server.stop()
    shutil.rmtree(server.data)
    restored = server.cli("restore", str(dest))
    assert "Restored" in restored.stdout, restored.stdout
    server.start()

    listed = {f["filename"]: f for f in server.files("saved")}
    assert before <= set(listed), sorted(before - set(listed))
    assert set(listed) <= set(originals)
    for name, f in listed.items():
        body = server.download(f["url"])
        assert body == originals[name].data, name
        assert f["hashes"]["sha256"] == originals[name].sha256
    assert problem_lines(server.cli("verify").stdout) == []

    refused = server.cli("restore", str(dest), check=False)
    assert refused.returncode != 0
    assert "is not empty: back up or restore only into a new or empty directory" in refused.stdout, refused.stdout
    partial = tmp_path / "partial"
    (partial / "files").mkdir(parents=True)
    refused = server.cli("restore", str(partial), check=False)
    assert refused.returncode != 0 and "not a complete pyindex backup" in refused.stdout, refused.stdout
