"""Published files are immutable: identical re-uploads succeed, different bytes
under the same filename are refused with 409 `File already exists`, and the
clients' skip-existing modes work (standards G1, I1-I3, N44-N48)."""

from __future__ import annotations

import re
import sys

import pytest

import support


def assert_file_already_exists(r):
    assert r.status_code == 409, (r.status_code, r.reason, r.text)
    assert r.reason.startswith("File already exists"), r.reason
    assert r.text.startswith("File already exists"), r.text
    assert (r.headers.get("Content-Type") or "").startswith("text/plain"), r.headers


def test_n46_identical_reupload_is_200_and_changes_nothing(module_server, upload, dists):
    w = support.make_wheel(dists, "same-bytes", "1.0")
    r = upload(module_server, w)
    assert r.status_code == 200, r.text
    before = module_server.files("same-bytes")
    etag = module_server.get("/simple/same-bytes/", {"Accept": support.JSON_V1}).header("ETag")
    again = upload(module_server, w)
    assert again.status_code == 200, (again.status_code, again.reason, again.text)
    after = module_server.files("same-bytes")
    assert after == before
    assert len(after) == 1
    assert module_server.get("/simple/same-bytes/", {"Accept": support.JSON_V1}).header("ETag") == etag
    assert module_server.download(after[0]["url"]) == w.data


def test_different_bytes_same_filename_is_409(module_server, upload, dists):
    first = support.make_wheel(dists / "a", "conflict", "1.0", salt="first")
    second = support.make_wheel(dists / "b", "conflict", "1.0", salt="second")
    assert first.filename == second.filename and first.data != second.data
    assert upload(module_server, first).status_code == 200
    r = upload(module_server, second)
    assert_file_already_exists(r)
    (f,) = module_server.files("conflict")
    assert f["hashes"]["sha256"] == first.sha256
    assert module_server.download(f["url"]) == first.data
    # the sdist of the same release is still welcome
    assert upload(module_server, support.make_sdist(dists, "conflict", "1.0")).status_code == 200


def test_n44_n46_twine_upload_and_rerun(module_server, clients, dists):
    files = [support.make_wheel(dists, "twined", "1.0").path, support.make_sdist(dists, "twined", "1.0").path]
    support.check(clients.twine_upload(module_server.upload_url, files))
    listed = {f["filename"]: f["hashes"]["sha256"] for f in module_server.files("twined")}
    assert listed == {p.name: support.file_sha256(p) for p in files}
    # plain re-run (no --skip-existing): identical bytes are accepted again
    support.check(clients.twine_upload(module_server.upload_url, files))
    assert {f["filename"]: f["hashes"]["sha256"] for f in module_server.files("twined")} == listed


# twine 7.0.0 refuses `--skip-existing` unless the URL is PyPI/TestPyPI
# (Settings.verify_feature_capability).  To check that this server's answer
# drives twine's own skip logic (twine.commands.upload.skip_upload), run the
# real twine CLI with only that capability check switched off.
TWINE_WITHOUT_URL_CHECK = (
    "import sys, twine.settings, twine.__main__\n"
    "twine.settings.Settings.verify_feature_capability = lambda self: None\n"
    "sys.argv[0] = 'twine'\n"
    "sys.exit(twine.__main__.main())\n"
)


def test_n47_twine_reports_conflict_and_skip_existing_skips(module_server, clients, upload, dists):
    original = support.make_wheel(dists / "a", "skipper", "1.0", salt="original")
    assert upload(module_server, original).status_code == 200
    changed = support.make_wheel(dists / "b", "skipper", "1.0", salt="changed")

    proc = clients.twine_upload(module_server.upload_url, [changed.path])
    assert proc.returncode != 0, support.describe(proc)
    assert "File already exists" in support.flat(proc.stdout), support.describe(proc)
    assert "409" in proc.stdout, support.describe(proc)

    c = clients.credentials
    proc = support.check(
        clients.run(
            sys.executable, "-c", TWINE_WITHOUT_URL_CHECK, "upload", "--non-interactive",
            "--disable-progress-bar", "--repository-url", module_server.upload_url,
            "-u", c.username, "-p", c.password, "--skip-existing", str(changed.path),
        )
    )
    out = support.flat(proc.stdout)
    assert re.search(r"Skipping \S*skipper-1\.0-py3-none-any\.whl because it appears to already exist", out), support.describe(proc)
    (f,) = module_server.files("skipper")
    assert f["hashes"]["sha256"] == original.sha256


def test_n45_uv_publish_with_check_url_skips_on_rerun(module_server, clients, dists):
    files = [support.make_wheel(dists, "uv-checked", "1.0").path, support.make_sdist(dists, "uv-checked", "1.0").path]
    check_url = ["--check-url", module_server.simple_url]
    first = support.check(clients.uv_publish(module_server.upload_url, files, *check_url))
    assert "already exists" not in first.stdout, support.describe(first)
    assert len(module_server.files("uv-checked")) == 2
    second = support.check(clients.uv_publish(module_server.upload_url, files, *check_url))
    for p in files:
        assert re.search(rf"{re.escape(p.name)}.*already exists", second.stdout), support.describe(second)
    assert len(module_server.files("uv-checked")) == 2


def test_uv_publish_check_url_detects_changed_file(module_server, clients, upload, dists):
    original = support.make_wheel(dists / "a", "uv-changed", "1.0", salt="one")
    assert upload(module_server, original).status_code == 200
    changed = support.make_wheel(dists / "b", "uv-changed", "1.0", salt="two")
    proc = clients.uv_publish(module_server.upload_url, [changed.path], "--check-url", module_server.simple_url)
    assert proc.returncode != 0, support.describe(proc)
    assert "do not match" in proc.stdout, support.describe(proc)


def test_uv_publish_without_check_url_shows_server_message(module_server, clients, upload, dists):
    original = support.make_wheel(dists / "a", "uv-conflict", "1.0", salt="one")
    assert upload(module_server, original).status_code == 200
    changed = support.make_wheel(dists / "b", "uv-conflict", "1.0", salt="two")
    proc = clients.uv_publish(module_server.upload_url, [changed.path])
    assert proc.returncode != 0, support.describe(proc)
    assert "File already exists" in support.flat(proc.stdout), support.describe(proc)


@pytest.mark.parametrize("path", ["/legacy/", "/legacy", "/"])
def test_n48_upload_endpoints(module_server, upload, dists, path):
    project = {"/legacy/": "ep-slash", "/legacy": "ep-noslash", "/": "ep-root"}[path]
    w = support.make_wheel(dists, project, "1.0")
    r = upload(module_server, w, path=path)
    assert r.status_code == 200, (r.status_code, r.reason, r.text)
    assert not r.is_redirect
    assert [f["filename"] for f in module_server.files(project)] == [w.filename]


def test_twine_upload_to_url_without_trailing_slash(module_server, clients, dists):
    """twine aborts on redirects; /legacy must answer directly (G1)."""
    w = support.make_wheel(dists, "twine-noslash", "1.0")
    support.check(clients.twine_upload(module_server.url + "/legacy", [w.path]))
    assert module_server.file_named("twine-noslash", w.filename)


def test_same_release_different_spelling_is_one_version(module_server, upload, dists):
    """`1.0` and `1.0.0` are one release (J6); files of both are listed under it."""
    a = support.make_wheel(dists, "spelled", "1.0")
    b = support.make_sdist(dists, "spelled", "1.0.0")
    assert upload(module_server, a).status_code == 200
    assert upload(module_server, b).status_code == 200
    page = module_server.project_json("spelled")
    assert len(page["versions"]) == 1, page["versions"]
    assert len(page["files"]) == 2


@pytest.mark.parametrize(
    "first, second",
    [
        (("1.0", "py3-none-any"), ("1.0.0", "py3-none-any")),
        (("1.0", "py2.py3-none-any"), ("1.0", "py3.py2-none-any")),
    ],
    ids=["equal-versions", "tag-set-order"],
)
def test_equal_distribution_spelled_otherwise_is_409(module_server, upload, dists, first, second):
    """`1.0` is `1.0.0`, and `py2.py3` is `py3.py2`: one distribution, so one file."""
    name = f"respelled-{first[1].split('-')[0].replace('.', '')}-{second[0].replace('.', '')}"
    a = support.make_wheel(dists / "a", name, first[0], tag=first[1])
    b = support.make_wheel(dists / "b", name, second[0], tag=second[1], salt="other")
    assert a.filename != b.filename
    assert upload(module_server, a).status_code == 200
    r = upload(module_server, b)
    assert_file_already_exists(r)
    assert a.filename in r.text, r.text
    assert [f["filename"] for f in module_server.files(name)] == [a.filename]
