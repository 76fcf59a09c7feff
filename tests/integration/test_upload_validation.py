"""Every bad upload is refused with a 4xx and a clear message (reason phrase and
text/plain body), stores nothing, and leaves the server serving
(standards G, H, I5; conformance tests N50-N59, N63)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import socket
import tarfile
import time
import warnings
import zipfile
from pathlib import Path

import pytest
import requests

import support
from support import Dist

GENERIC_REASONS = {"", "bad request", "conflict", "gone", "payload too large", "content too large", "not found"}


@pytest.fixture(scope="module")
def baseline(module_server, upload, module_dists):
    """`victim` 1.0 is published so that bad uploads target an existing project."""
    good = support.make_wheel(module_dists / "baseline", "victim", "1.0")
    r = upload(module_server, good)
    assert r.status_code == 200, r.text
    return good


def snapshot(server) -> dict:
    return {
        "projects": server.root_projects(),
        "victim": server.files("victim"),
        "other": server.project_json("other"),
    }


def assert_rejected(r: requests.Response, status: int, pattern: str | None):
    """Status, message in a text/plain body and (for 400/409) in the reason phrase."""
    assert r.status_code == status, (r.status_code, r.reason, r.text[:500])
    body = r.text.strip()
    assert body, f"empty body for {status}"
    assert (r.headers.get("Content-Type") or "").startswith("text/plain"), r.headers
    if pattern:
        assert re.search(pattern, body, re.I), f"{body!r} does not match {pattern!r}"
    if status in (400, 409):
        reason = (r.reason or "").strip()
        assert reason.lower() not in GENERIC_REASONS, f"reason phrase is not the message: {reason!r}"
        assert reason in body or body.startswith(reason[:60]), (reason, body)


def assert_nothing_stored(server, before: dict, needle: str | None = None):
    assert snapshot(server) == before
    assert server.get("/health").status == 200
    if needle:
        root = server.workdir.parent
        hits = [p for p in root.rglob("*") if needle in p.name]
        assert not hits, f"files named like {needle!r} were written: {hits}"


# --------------------------------------------------------------------------- builders for bad inputs


def _fields_for(dist: Dist, content: bytes) -> list[tuple[str, str]]:
    """Form fields whose digests match ``content`` (so that only the named defect is wrong)."""
    fields = [(k, v) for k, v in support.upload_fields(dist) if k != "sha256_digest"]
    fields.append(("sha256_digest", hashlib.sha256(content).hexdigest()))
    return fields


def _tar_gz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti, data in members:
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return gzip.compress(raw.getvalue(), mtime=0)


def _ti(name: str, data: bytes = b"", **kw) -> tuple[tarfile.TarInfo, bytes | None]:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    for k, v in kw.items():
        setattr(ti, k, v)
    if ti.type in (tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.DIRTYPE):
        ti.size = 0
        return ti, None
    return ti, data


def case_traversal(d, v):
    w = support.make_wheel(d, "victim", v)
    return dict(dist=w, filename=f"../victim-{v}-py3-none-any.whl"), 400, r"name|/|\.\.|path|character"


def case_slash(d, v):
    w = support.make_wheel(d, "victim", v)
    return dict(dist=w, filename=f"sub/victim-{v}-py3-none-any.whl"), 400, r"name|/|path|character"


def case_backslash(d, v):
    w = support.make_wheel(d, "victim", v)
    return dict(dist=w, filename=f"sub\\victim-{v}-py3-none-any.whl"), 400, r"name|\\|path|character"


def case_control_char(d, v):
    w = support.make_wheel(d, "victim", v)
    return dict(dist=w, filename=f"victim-{v}-py3-none-any\x01.whl"), 400, None


def case_name_mismatch_form(d, v):
    w = support.make_wheel(d, "other", v)
    return dict(dist=w, overrides={"name": "victim"}), 400, r"name"


def case_name_mismatch_metadata(d, v):
    meta = support.render_metadata("other", v)
    w = support.make_wheel(d, "victim", v, metadata=meta)
    return dict(dist=w), 400, r"name"


def case_wheel_name_of_other_project(d, v):
    w = support.make_wheel(d, "victim", v, filename=f"Victimx-{v}-py3-none-any.whl")
    return dict(dist=w), 400, re.escape(f"victim-{v}-py3-none-any.whl")


def case_version_mismatch_filename(d, v):
    meta = support.render_metadata("victim", v + ".1")
    w = support.make_wheel(d, "victim", v, metadata=meta)
    return dict(dist=w, overrides={"version": v + ".1"}), 400, r"version"


def case_version_mismatch_form(d, v):
    w = support.make_wheel(d, "victim", v)
    return dict(dist=w, overrides={"version": v + ".1"}), 400, r"version"


def case_invalid_version(d, v):
    w = support.make_wheel(d, "victim", "banana")
    return dict(dist=w), 400, r"version"


def case_filetype_bdist_egg(d, v):
    w = support.make_wheel(d, "victim", v)
    return dict(dist=w, filename=f"victim-{v}-py3.11.egg", overrides={"filetype": "bdist_egg"}), 400, r"type|egg"


def case_filetype_bdist_egg_whl_name(d, v):
    w = support.make_wheel(d, "victim", v)
    return dict(dist=w, overrides={"filetype": "bdist_egg"}), 400, r"type|egg"


def case_exe_extension(d, v):
    w = support.make_wheel(d, "victim", v)
    return dict(dist=w, filename=f"victim-{v}-py3-none-any.exe"), 400, r"extension|type|\.exe|name|invalid"


def case_sdist_filetype_whl_name(d, v):
    w = support.make_wheel(d, "victim", v)
    return dict(dist=w, overrides={"filetype": "sdist", "pyversion": "source"}), 400, r"extension|type|sdist|invalid"


def case_sdist_name_of_other_project(d, v):
    s = support.make_sdist(d, "victim", v, filename=f"victim2-{v}.tar.gz")
    return dict(dist=s), 400, re.escape("victim-{version}.tar.gz")


def case_sdist_version_of_other_release(d, v):
    s = support.make_sdist(d, "victim", v, filename=f"victim-{v}.1.tar.gz")
    return dict(dist=s), 400, re.escape(f"victim-{v}.tar.gz")


def case_bad_wheel_filename(d, v):
    w = support.make_wheel(d, "victim", v, filename=f"victim-{v}.whl")
    return dict(dist=w), 400, r"name|invalid"


def case_truncated_zip(d, v):
    w = support.make_wheel(d, "victim", v, payload=os.urandom(4096))
    content = w.data[: len(w.data) // 2]
    return dict(dist=w, content=content, fields=_fields_for(w, content)), 400, r"invalid|corrupt|zip|archive|distribution"


def case_not_gzip_sdist(d, v):
    s = support.make_sdist(d, "victim", v)
    content = b"this is not a gzip file\n" * 100
    return dict(dist=s, content=content, fields=_fields_for(s, content)), 400, r"invalid|corrupt|gzip|archive|distribution"


def case_gzip_not_tar_sdist(d, v):
    s = support.make_sdist(d, "victim", v)
    content = gzip.compress(b"not a tar archive\n" * 500, mtime=0)
    return dict(dist=s, content=content, fields=_fields_for(s, content)), 400, r"invalid|corrupt|tar|archive|distribution"


def case_sdist_without_pkg_info(d, v):
    s = support.make_sdist(d, "victim", v)
    content = _tar_gz([_ti(f"victim-{v}/pyproject.toml", b"[project]\nname='victim'\n")])
    return dict(dist=s, content=content, fields=_fields_for(s, content)), 400, r"PKG-INFO|invalid|distribution"


def case_sdist_two_top_level_dirs(d, v):
    s = support.make_sdist(d, "victim", v)
    meta = support.render_metadata("victim", v)
    content = _tar_gz([_ti(f"victim-{v}/PKG-INFO", meta), _ti(f"other-{v}/PKG-INFO", meta)])
    return dict(dist=s, content=content, fields=_fields_for(s, content)), 400, r"invalid|distribution|director|top"


def case_sdist_dotdot_member(d, v):
    s = support.make_sdist(d, "victim", v)
    meta = support.render_metadata("victim", v)
    content = _tar_gz([_ti(f"victim-{v}/PKG-INFO", meta), _ti(f"victim-{v}/../../escaped.txt", b"x")])
    return dict(dist=s, content=content, fields=_fields_for(s, content)), 400, r"invalid|path|\.\.|distribution|member"


def case_sdist_symlink_out_of_tree(d, v):
    s = support.make_sdist(d, "victim", v)
    meta = support.render_metadata("victim", v)
    content = _tar_gz(
        [_ti(f"victim-{v}/PKG-INFO", meta), _ti(f"victim-{v}/evil", type=tarfile.SYMTYPE, linkname="/etc/passwd")]
    )
    return dict(dist=s, content=content, fields=_fields_for(s, content)), 400, r"invalid|link|distribution|member"


def case_wheel_without_metadata(d, v):
    w = support.make_wheel(d, "victim", v, include_metadata=False)
    return dict(dist=w), 400, r"METADATA"


def case_wheel_duplicate_metadata_entries(d, v):
    w = support.make_wheel(d, "victim", v)
    buf = io.BytesIO(w.data)
    with zipfile.ZipFile(buf, "a") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zf.writestr(f"victim-{v}.dist-info/METADATA", support.render_metadata("victim", v, summary="other"))
    content = buf.getvalue()
    return dict(dist=w, content=content, fields=_fields_for(w, content)), 400, r"duplicate|invalid|METADATA|zip"


def case_metadata_version_3(d, v):
    w = support.make_wheel(d, "victim", v, metadata_version="3.0")
    return dict(dist=w), 400, r"metadata.version|metadata"


def case_metadata_without_version(d, v):
    meta = b"Metadata-Version: 2.4\nName: victim\nSummary: no version\n"
    w = support.make_wheel(d, "victim", v, metadata=meta)
    return dict(dist=w), 400, r"version"


def case_dynamic_name(d, v):
    meta = support.render_metadata("victim", v, dynamic=["Name"])
    w = support.make_wheel(d, "victim", v, metadata=meta)
    return dict(dist=w), 400, r"dynamic|name"


def case_invalid_requires_python(d, v):
    w = support.make_wheel(d, "victim", v, requires_python="=>3.8 banana")
    return dict(dist=w), 400, r"requires.python|specifier"


def case_invalid_requires_dist(d, v):
    w = support.make_wheel(d, "victim", v, requires_dist=["not a (valid requirement"])
    return dict(dist=w), 400, r"requires.dist|requirement"


def case_invalid_name_in_metadata(d, v):
    w = support.make_wheel(d, "victim", v, metadata=support.render_metadata("vic tim!", v))
    return dict(dist=w, overrides={"name": "vic tim!"}), 400, r"name"


def case_missing_pyversion_for_wheel(d, v):
    w = support.make_wheel(d, "victim", v)
    return dict(dist=w, overrides={"pyversion": None}), 400, r"pyversion|python"


def case_missing_filetype(d, v):
    w = support.make_wheel(d, "victim", v)
    return dict(dist=w, overrides={"filetype": None}), 400, r"type"


def case_sha256_mismatch(d, v):
    w = support.make_wheel(d, "victim", v)
    return dict(dist=w, overrides={"sha256_digest": hashlib.sha256(b"other").hexdigest()}), 400, r"digest"


def case_md5_mismatch(d, v):
    w = support.make_wheel(d, "victim", v)
    return dict(dist=w, digests=("md5",), overrides={"md5_digest": hashlib.md5(b"other").hexdigest()}), 400, r"digest"


def case_md5_mismatch_with_good_sha256(d, v):
    w = support.make_wheel(d, "victim", v)
    return dict(dist=w, digests=("sha256", "md5"), overrides={"md5_digest": hashlib.md5(b"x").hexdigest()}), 400, r"digest"


def case_blake2_mismatch(d, v):
    w = support.make_wheel(d, "victim", v)
    bad = hashlib.blake2b(b"x", digest_size=32).hexdigest()
    return dict(dist=w, digests=("sha256", "blake2_256"), overrides={"blake2_256_digest": bad}), 400, r"digest"


def case_malformed_sha256(d, v):
    w = support.make_wheel(d, "victim", v)
    return dict(dist=w, overrides={"sha256_digest": "xyz"}), 400, r"digest|sha256"


def case_no_digest(d, v):
    w = support.make_wheel(d, "victim", v)
    return dict(dist=w, digests=()), 400, r"digest"


def case_missing_content(d, v):
    w = support.make_wheel(d, "victim", v)
    return dict(dist=w, include_content=False), 400, r"file|content"


def case_missing_name_field(d, v):
    w = support.make_wheel(d, "victim", v)
    return dict(dist=w, overrides={"name": None}), 400, r"name"


def case_unknown_action(d, v):
    w = support.make_wheel(d, "victim", v)
    return dict(dist=w, overrides={":action": "bogus"}), 400, r"action"


def case_missing_action(d, v):
    w = support.make_wheel(d, "victim", v)
    return dict(dist=w, overrides={":action": None}), 400, r"action"


def case_doc_upload(d, v):
    w = support.make_wheel(d, "victim", v)
    return dict(dist=w, overrides={":action": "doc_upload"}), 410, None


def case_submit(d, v):
    w = support.make_wheel(d, "victim", v)
    return dict(dist=w, overrides={":action": "submit"}), 410, None


def case_protocol_version_2(d, v):
    w = support.make_wheel(d, "victim", v)
    return dict(dist=w, overrides={"protocol_version": "2"}), 400, r"protocol"


def case_duplicate_single_use_field(d, v):
    w = support.make_wheel(d, "victim", v)
    fields = support.upload_fields(w) + [("version", v)]
    return dict(dist=w, fields=fields), 400, r"version|field|once|multiple|duplicate"


def case_text_field_as_file_part(d, v):
    w = support.make_wheel(d, "victim", v)
    fields = [(k, v) for k, v in support.upload_fields(w) if k != "version"]
    return dict(dist=w, fields=fields, extra_parts=[("version", "version.txt", v.encode(), "text/plain")]), 400, r"version|field|file"


CASES = [
    case_traversal, case_slash, case_backslash, case_control_char,
    case_name_mismatch_form, case_name_mismatch_metadata, case_wheel_name_of_other_project,
    case_version_mismatch_filename, case_version_mismatch_form, case_invalid_version,
    case_filetype_bdist_egg, case_filetype_bdist_egg_whl_name, case_exe_extension,
    case_sdist_filetype_whl_name, case_bad_wheel_filename, case_sdist_name_of_other_project,
    case_sdist_version_of_other_release,
    case_truncated_zip, case_not_gzip_sdist, case_gzip_not_tar_sdist, case_sdist_without_pkg_info,
    case_sdist_two_top_level_dirs, case_sdist_dotdot_member, case_sdist_symlink_out_of_tree,
    case_wheel_without_metadata, case_wheel_duplicate_metadata_entries,
    case_metadata_version_3, case_metadata_without_version, case_dynamic_name,
    case_invalid_requires_python, case_invalid_requires_dist, case_invalid_name_in_metadata,
    case_missing_pyversion_for_wheel, case_missing_filetype,
    case_sha256_mismatch, case_md5_mismatch, case_md5_mismatch_with_good_sha256, case_blake2_mismatch,
    case_malformed_sha256, case_no_digest, case_missing_content, case_missing_name_field,
    case_unknown_action, case_missing_action, case_doc_upload, case_submit, case_protocol_version_2,
    case_duplicate_single_use_field, case_text_field_as_file_part,
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__.removeprefix("case_").replace("_", "-"))
def test_bad_upload_is_refused(module_server, baseline, upload, dists, case):
    # a distinct version per case, so that a wrongly accepted upload cannot affect another case
    v = f"20.{100 + CASES.index(case)}"  # same digit count: no version is a prefix of another
    kwargs, status, pattern = case(dists, v)
    before = snapshot(module_server)
    r = upload(module_server, **kwargs)
    assert_rejected(r, status, pattern)
    assert_nothing_stored(module_server, before, needle=f"victim-{v}")


def test_json_body_is_400(module_server, baseline, upload):
    before = snapshot(module_server)
    body = json.dumps({":action": "file_upload", "name": "victim", "version": "2.0"}).encode()
    r = upload.post(module_server, body, "application/json")
    assert_rejected(r, 400, r"multipart|form")
    assert_nothing_stored(module_server, before)


def test_garbled_multipart_is_400(module_server, baseline, upload):
    before = snapshot(module_server)
    r = upload.post(module_server, b"--nope\r\nthis is not multipart", "multipart/form-data; boundary=abc")
    assert_rejected(r, 400, None)
    assert_nothing_stored(module_server, before)


def test_connection_survives_refused_uploads(module_server, baseline, upload, dists):
    """twine and uv send many uploads on one keep-alive connection: after a refused
    upload (body possibly unread) the next request on the same session must work."""
    session = requests.Session()
    headers = upload.auth_headers()
    good = support.make_wheel(dists / "good", "victim", "7.0")
    listed_before = {f["filename"] for f in module_server.files("victim")}
    bads = [
        dict(overrides={"protocol_version": "2"}),
        dict(overrides={":action": "doc_upload"}),
        dict(overrides={"sha256_digest": "0" * 64}),
        dict(overrides={"filetype": "bdist_egg"}),
    ]
    for kw in bads:
        w = support.make_wheel(dists / "bad", "victim", "7.0", payload=os.urandom(512 * 1024))
        fields = support.with_overrides(support.upload_fields(w), kw["overrides"])
        body, ctype = support.encode_multipart(fields, [("content", w.filename, w.data, "application/octet-stream")])
        r = session.post(module_server.upload_url, data=body, headers={**headers, "Content-Type": ctype}, timeout=60)
        assert 400 <= r.status_code < 500, (kw, r.status_code, r.text)
        # the very next request on the session is answered correctly
        page = session.get(module_server.url + "/simple/victim/", headers={"Accept": support.JSON_V1}, timeout=30)
        assert page.status_code == 200, (kw, page.status_code, page.text[:200])
        assert {f["filename"] for f in page.json()["files"]} == listed_before
    body, ctype = support.encode_multipart(support.upload_fields(good), [("content", good.filename, good.data, None)])
    r = session.post(module_server.upload_url, data=body, headers={**headers, "Content-Type": ctype}, timeout=60)
    assert r.status_code == 200, (r.status_code, r.text)


def test_bad_upload_then_good_upload_of_same_file_works(module_server, baseline, upload, dists):
    """A refused attempt must not poison the filename (nothing half-stored)."""
    w = support.make_wheel(dists, "victim", "3.0")
    r = upload(module_server, w, overrides={"sha256_digest": "0" * 64})
    assert_rejected(r, 400, r"digest")
    r = upload(module_server, w)
    assert r.status_code == 200, r.text
    f = module_server.file_named("victim", w.filename)
    assert f and f["hashes"]["sha256"] == w.sha256


def test_twine_shows_the_server_message(module_server, baseline, upload, clients, dists):
    """twine prints the reason phrase (I5): the server's message must reach the user."""
    meta = support.render_metadata("victim", "4.0.1")
    w = support.make_wheel(dists, "victim", "4.0", metadata=meta)  # filename says 4.0, METADATA 4.0.1
    raw = upload(module_server, w, overrides={"version": "4.0.1"})
    assert_rejected(raw, 400, r"version")
    before = snapshot(module_server)
    proc = clients.twine_upload(module_server.upload_url, [w.path])
    assert proc.returncode != 0, support.describe(proc)
    assert "400" in proc.stdout, support.describe(proc)
    assert support.flat(raw.reason) in support.flat(proc.stdout), (raw.reason, support.describe(proc))
    assert_nothing_stored(module_server, before)


def test_uv_publish_shows_the_server_message(module_server, baseline, upload, clients, dists):
    """uv prints the text/plain body ("Server says: ...")."""
    meta = support.render_metadata("victim", "5.0.1")
    w = support.make_wheel(dists, "victim", "5.0", metadata=meta)
    raw = upload(module_server, w, overrides={"version": "5.0.1"})
    assert_rejected(raw, 400, r"version")
    proc = clients.uv_publish(module_server.upload_url, [w.path])
    assert proc.returncode != 0, support.describe(proc)
    assert support.flat(raw.text.strip().splitlines()[0]) in support.flat(proc.stdout), (raw.text, support.describe(proc))


# --------------------------------------------------------------------------- zip bomb


def make_zip_bomb(d: Path, size: int = 200 * 1024 * 1024) -> Dist:
    """A wheel whose METADATA inflates to ``size`` bytes (mostly zeros after the headers)."""
    path = d / "victim-6.0-py3-none-any.whl"
    head = support.render_metadata("victim", "6.0", description=None) + b"\n"
    chunk = b"\0" * (1 << 20)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(zipfile.ZipInfo("victim/__init__.py", date_time=support.ZIP_EPOCH), b"")
        info = zipfile.ZipInfo("victim-6.0.dist-info/METADATA", date_time=support.ZIP_EPOCH)
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as f:
            f.write(head)
            remaining = size - len(head)
            while remaining > 0:
                n = min(remaining, len(chunk))
                f.write(chunk[:n])
                remaining -= n
        zf.writestr(
            zipfile.ZipInfo("victim-6.0.dist-info/WHEEL", date_time=support.ZIP_EPOCH),
            b"Wheel-Version: 1.0\nGenerator: bomb\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        zf.writestr(zipfile.ZipInfo("victim-6.0.dist-info/RECORD", date_time=support.ZIP_EPOCH), b"")
    return Dist(path=path, name="victim", version="6.0", filetype="bdist_wheel", pyversion="py3", metadata=None)


def test_zip_bomb_metadata_is_refused_with_bounded_memory(server, upload, dists):
    good = support.make_wheel(dists, "victim", "1.0")
    assert upload(server, good).status_code == 200
    bomb = make_zip_bomb(dists)
    assert bomb.path.stat().st_size < 2 * 1024 * 1024
    before = {"projects": server.root_projects(), "victim": server.files("victim")}
    r = upload(server, bomb)
    assert_rejected(r, 400, r"metadata|large|size|limit|exceed|compress")
    assert {"projects": server.root_projects(), "victim": server.files("victim")} == before
    peak_mib = server.rss_peak_kib() / 1024
    assert peak_mib < 150, f"server peak RSS {peak_mib:.0f} MiB after a 200 MiB METADATA bomb"


# --------------------------------------------------------------------------- size limit (413)


@pytest.fixture(scope="module")
def small_server(module_server_factory):
    """A server with --max-upload-size 1MiB."""
    return module_server_factory("small", max_upload_size="1MiB")


def test_upload_below_limit_is_accepted(small_server, upload, dists):
    w = support.make_wheel(dists, "sized", "1.0", payload=os.urandom(200 * 1024))
    r = upload(small_server, w)
    assert r.status_code == 200, r.text


def test_upload_over_limit_is_413(small_server, upload, dists):
    w = support.make_wheel(dists, "sized", "2.0", payload=os.urandom(2 * 1024 * 1024))
    before = {"projects": small_server.root_projects(), "files": small_server.files("sized")}
    r = upload(small_server, w)  # the client must be able to read the answer (no reset)
    assert_rejected(r, 413, None)
    assert {"projects": small_server.root_projects(), "files": small_server.files("sized")} == before
    assert small_server.get("/health").status == 200


def test_upload_over_limit_chunked_is_413(small_server, upload, dists):
    w = support.make_wheel(dists, "sized", "3.0", payload=os.urandom(2 * 1024 * 1024))
    body, ctype = support.encode_multipart(support.upload_fields(w), [("content", w.filename, w.data, None)])

    def chunks():
        for i in range(0, len(body), 64 * 1024):
            yield body[i : i + 64 * 1024]

    headers = {"Content-Type": ctype, **upload.auth_headers()}
    r = requests.post(small_server.upload_url, data=chunks(), headers=headers, timeout=60)
    assert_rejected(r, 413, None)
    assert small_server.file_named("sized", w.filename) is None


def test_oversized_content_length_is_answered_before_the_body(small_server, upload):
    """413 must come back without the client sending the body (G10, N59)."""
    boundary = "pyindex-early"
    head = (
        f"POST /legacy/ HTTP/1.1\r\nHost: 127.0.0.1:{small_server.port}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Authorization: {upload.auth_headers()['Authorization']}\r\n"
        f"Content-Length: {100 * 1024 * 1024}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", small_server.port), timeout=10) as s:
        s.sendall(head)
        s.settimeout(10)
        data = b""
        deadline = time.monotonic() + 10
        while b"\r\n" not in data and time.monotonic() < deadline:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    status_line = data.split(b"\r\n", 1)[0].decode(errors="replace")
    assert re.match(r"HTTP/1\.[01] 413\b", status_line), repr(data[:300])


def test_upload_accepts_chunked_body(module_server, baseline, upload, dists):
    """G2: bodies without Content-Length (chunked) are accepted."""
    w = support.make_wheel(dists, "chunky", "1.0")
    body, ctype = support.encode_multipart(support.upload_fields(w), [("content", w.filename, w.data, None)])
    headers = {"Content-Type": ctype, **upload.auth_headers()}
    r = requests.post(module_server.upload_url, data=iter([body[:100], body[100:]]), headers=headers, timeout=60)
    assert r.status_code == 200, (r.status_code, r.reason, r.text)
    assert module_server.file_named("chunky", w.filename)["hashes"]["sha256"] == w.sha256


@pytest.mark.parametrize(
    "name, filename",
    [
        ("Victim", "Victim-{v}-py3-none-any.whl"),
        ("Victim", "Victim-{v}.tar.gz"),
        ("victim", "victim-0{v}.tar.gz"),
    ],
    ids=["wheel-capitals", "sdist-legacy-name", "sdist-unnormalized-version"],
)
def test_legacy_spellings_are_accepted_as_uploaded(module_server, upload, dists, name, filename):
    """Filename forms the specifications tell installers to accept are kept exactly as uploaded."""
    v = f"21.{len(filename)}{len(name)}"
    filename = filename.format(v=v)
    make = support.make_wheel if filename.endswith(".whl") else support.make_sdist
    r = upload(module_server, dist=make(dists, name, v, filename=filename))
    assert r.status_code == 200, (r.status_code, r.text)
    page = module_server.get("/simple/victim/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    assert filename in [f["filename"] for f in json.loads(page.body)["files"]], page.body
