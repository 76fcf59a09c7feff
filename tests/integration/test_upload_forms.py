"""Valid uploads in every shape real clients send them are accepted
(standards G2-G6, H8, H10-H12; conformance tests N60-N63)."""

from __future__ import annotations

import hashlib

import pytest

import support


def accepted(server, r, dist):
    assert r.status_code == 200, (r.status_code, r.reason, r.text)
    f = server.file_named(dist.project, dist.filename)
    assert f is not None, f"{dist.filename} not listed"
    assert f["hashes"]["sha256"] == dist.sha256
    assert server.download(f["url"]) == dist.data
    return f


def digests(data: bytes) -> list[tuple[str, str]]:
    return [
        ("md5_digest", hashlib.md5(data).hexdigest()),
        ("sha256_digest", hashlib.sha256(data).hexdigest()),
        ("blake2_256_digest", hashlib.blake2b(data, digest_size=32).hexdigest()),
    ]


def test_n60_pdm_style_form_with_empty_fields(module_server, upload, dists):
    w = support.make_wheel(dists, "pdm-style", "1.0")
    fields = [
        ("name", "pdm-style"), ("version", "1.0"), ("filetype", "bdist_wheel"), ("pyversion", "py3"),
        ("metadata_version", "2.4"), ("summary", "An integration-test package"), ("home_page", ""),
        ("author", ""), ("author_email", ""), ("maintainer", ""), ("maintainer_email", ""),
        ("license", ""), ("description", "Built by the pyindex integration suite.\n"), ("keywords", ""),
        ("platform", ""), ("classifiers", ""), ("download_url", ""), ("supported_platform", ""),
        ("comment", ""), ("project_urls", ""), ("provides_dist", ""), ("obsoletes_dist", ""),
        ("requires_dist", ""), ("requires_external", ""), ("requires_python", ""),
        ("provides_extras", ""), ("description_content_type", "text/plain"), ("dynamic", ""),
        *digests(w.data), (":action", "file_upload"), ("protocol_version", "1"),
    ]
    accepted(module_server, upload(module_server, w, fields=fields), w)


def test_n61_flit_style_form(module_server, upload, dists):
    """metadata_version=2.3 while the wheel says 2.4; no part Content-Type; md5+sha256."""
    w = support.make_wheel(dists, "flit-style", "1.0", metadata_version="2.4")
    fields = [
        (":action", "file_upload"), ("name", "flit-style"), ("version", "1.0"), ("metadata_version", "2.3"),
        ("summary", "An integration-test package"), ("protocol_version", "1"), ("filetype", "bdist_wheel"),
        ("pyversion", "py3"), ("md5_digest", hashlib.md5(w.data).hexdigest()),
        ("sha256_digest", hashlib.sha256(w.data).hexdigest()),
    ]
    accepted(module_server, upload(module_server, w, fields=fields, part_content_type=None), w)


def test_n62_uv_style_form_with_attestations_after_content(module_server, upload, dists):
    """uv: no part Content-Type on `content`, blake2 digest, `attestations` text field last."""
    w = support.make_wheel(dists, "uv-style-b", "1.0")
    fields = support.upload_fields(w, digests=("sha256", "blake2_256")) + [
        ("requires_python", ""), ("import_names", "uv_style"),
    ]
    boundary = "pyindex-uv"
    body, ctype = support.encode_multipart(fields, [("content", w.filename, w.data, None)], boundary=boundary)
    tail = f"--{boundary}--\r\n".encode()
    assert body.endswith(tail)
    att = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="attestations"\r\n\r\n'
        '[{"version": 1}]\r\n'
    ).encode()
    body = body[: -len(tail)] + att + tail
    accepted(module_server, upload.post(module_server, body, ctype), w)


def test_content_part_first(module_server, upload, dists):
    """Do not assume field order (G2)."""
    w = support.make_wheel(dists, "content-first", "1.0")
    boundary = "pyindex-order"
    files_only, _ = support.encode_multipart([], [("content", w.filename, w.data, None)], boundary=boundary)
    fields_only, ctype = support.encode_multipart(support.upload_fields(w), [], boundary=boundary)
    body = files_only[: -len(f"--{boundary}--\r\n")] + fields_only
    accepted(module_server, upload.post(module_server, body, ctype), w)


@pytest.mark.parametrize("mv", ["1.2", "2.1", "2.2", "2.3", "2.5", "2.6"])
def test_n63_metadata_versions_accepted(module_server, upload, dists, mv):
    project = "mv-" + mv.replace(".", "-")
    w = support.make_wheel(dists, project, "1.0", metadata_version=mv)
    f = accepted(module_server, upload(module_server, w), w)
    assert module_server.download(f["url"] + ".metadata") == w.metadata


def test_n63_private_classifier_and_local_version(module_server, upload, dists):
    w = support.make_wheel(dists, "private-thing", "1.0+cu121", classifiers=["Private :: Do Not Upload"])
    accepted(module_server, upload(module_server, w), w)


def test_twine_safe_name_spelling_in_form(module_server, upload, dists):
    """twine sends `Shared-Thing` for Name `Shared_Thing` (H10: names compare normalized)."""
    w = support.make_wheel(dists, "Shared_Thing", "1.0")
    accepted(module_server, upload(module_server, w, overrides={"name": "Shared-Thing"}), w)
    names = {p["name"] for p in module_server.get("/simple/", {"Accept": support.JSON_V1}).json()["projects"]}
    assert support.normalize("Shared_Thing") in {support.normalize(n) for n in names}


def test_form_version_equal_by_pep440(module_server, upload, dists):
    w = support.make_wheel(dists, "pep440-eq", "2.0")
    accepted(module_server, upload(module_server, w, overrides={"version": "2.0.0"}), w)


def test_platform_wheel_and_dotted_name(module_server, upload, dists):
    """No PyPI platform allowlist (H8); dots in names normalize to `_` in filenames."""
    w = support.make_wheel(dists, "dotted.name", "1.0", tag="cp311-cp311-linux_x86_64")
    assert w.filename == "dotted_name-1.0-cp311-cp311-linux_x86_64.whl"
    accepted(module_server, upload(module_server, w, overrides={"pyversion": "cp311"}), w)
    assert "dotted-name" in module_server.root_projects()


def test_unknown_values_and_extra_fields_are_ignored(module_server, upload, dists):
    w = support.make_wheel(dists, "extras-ok", "1.0")
    r = upload(
        module_server, w,
        overrides={"summary": "UNKNOWN", "home_page": "UNKNOWN", "comment": "hello", "import_namespaces": "x",
                   "keywords": "a, b"},
        extra_parts=[("gpg_signature", w.filename + ".asc", b"-----BEGIN PGP SIGNATURE-----\n", "application/octet-stream")],
    )
    accepted(module_server, r, w)


def test_direct_url_requirement_and_legacy_description_header(module_server, upload, dists):
    meta = (
        b"Metadata-Version: 2.1\nName: legacy-desc\nVersion: 1.0\nSummary: x\n"
        b"Requires-Dist: dep @ https://example.invalid/dep-1.0.tar.gz\n"
        b"Description: first line\n       |second line\n"
    )
    w = support.make_wheel(dists, "legacy-desc", "1.0", metadata=meta, metadata_version="2.1")
    f = accepted(module_server, upload(module_server, w), w)
    assert module_server.download(f["url"] + ".metadata") == meta


def test_multiple_use_fields(module_server, upload, dists):
    w = support.make_wheel(
        dists, "multi-use", "1.0", requires_dist=["requests>=2", "idna; extra == 'x'"],
        classifiers=["Programming Language :: Python :: 3", "Private :: Do Not Upload"],
    )
    fields = support.upload_fields(w) + [
        ("classifiers", "Programming Language :: Python :: 3"), ("classifiers", "Private :: Do Not Upload"),
        ("requires_dist", "requests>=2"), ("requires_dist", "idna; extra == 'x'"),
        ("project_urls", "Homepage, https://example.invalid"), ("project_urls", "Docs, https://example.invalid/d"),
        ("provides_extra", "x"),
    ]
    accepted(module_server, upload(module_server, w, fields=fields), w)


def test_names_that_normalize_alike_are_one_project(module_server, upload, dists):
    """J2: `Same.Name`, `same_name` and `SAME-name` are one project."""
    a = support.make_wheel(dists, "Same.Name", "1.0")
    b = support.make_wheel(dists, "same_name", "2.0")
    c = support.make_sdist(dists, "SAME-name", "3.0")
    for d in (a, b, c):
        accepted(module_server, upload(module_server, d), d)
    page = module_server.project_json("same-name")
    assert {f["filename"] for f in page["files"]} == {a.filename, b.filename, c.filename}
    root = module_server.get("/simple/", {"Accept": support.JSON_V1}).json()["projects"]
    assert [support.normalize(p["name"]) for p in root].count("same-name") == 1
