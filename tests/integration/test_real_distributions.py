"""Real-world filenames: files as published upstream (capitals and dots in wheel
names, legacy sdist names, a `.zip` sdist) upload with twine, are listed and
served under their exact filenames, install with uv and pip; another spelling of
the same distribution is the same file for immutability; names that disagree
with the metadata are refused with a message that names the expected form
(standards H8-H10, J3-J4, I2-I3).

The files are pinned in real_dists.py and fetched once into a cache directory.
One server for the module: the refusal tests leave it unchanged (checked).
"""

from __future__ import annotations

import gzip
import re
import shutil
import urllib.parse
import zipfile
from pathlib import Path

import pytest

import real_dists
import support
from conftest import IS_CI
from real_dists import RealFile

R = real_dists


@pytest.fixture(scope="module")
def real() -> dict[str, Path]:
    """filename -> cached path of every pinned real file."""
    try:
        return R.ensure()
    except R.PinMismatch as e:
        pytest.fail(str(e))
    except R.DownloadError as e:
        msg = f"could not download the real distribution files (network?): {e}"
        if IS_CI:
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="module")
def published(module_server, clients, real):
    """Every real file uploaded by twine's real CLI, under its upstream filename."""
    support.check(clients.twine_upload(module_server.upload_url, [real[f.filename] for f in R.ALL]))
    return module_server


def _as_dist(f: RealFile, path: Path) -> support.Dist:
    """What a raw upload needs to send the form fields twine would send for ``f``."""
    return support.Dist(
        path=path, name=f.name, version=f.version, filetype=f.filetype, pyversion=f.pyversion,
        metadata=None, metadata_version=f.metadata_version,
    )


def _metadata_member(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
        assert len(names) == 1, names
        return zf.read(names[0])


def _request_path(server, url: str) -> str:
    """The request path of a listed URL (absolute or relative to the server)."""
    full = urllib.parse.urlsplit(urllib.parse.urljoin(server.url + "/", url))
    return full.path + (f"?{full.query}" if full.query else "")


def _listing_etag(server, project: str) -> str | None:
    return server.get(f"/simple/{project}/", {"Accept": support.JSON_V1}).header("ETag")


# --------------------------------------------------------------------------- publish, list, serve


def test_twine_publishes_every_real_file_under_its_exact_filename(published, real):
    srv = published
    assert srv.root_projects() == {f.project for f in R.ALL}
    for f in R.ALL:
        listed = {x["filename"]: x for x in srv.files(f.project)}
        assert f.filename in listed, (f.filename, sorted(listed))
        entry = listed[f.filename]
        data = real[f.filename].read_bytes()
        assert entry["hashes"]["sha256"] == f.sha256
        assert entry["size"] == len(data)
        assert srv.download(entry["url"]) == data, f.filename
        assert f.version in srv.project_json(f.project)["versions"]


def test_html_pages_link_each_file_by_its_exact_filename(published):
    for f in R.ALL:
        anchors = support.parse_html(published.project_html(f.project)).anchors
        by_name = {a.filename: a for a in anchors}
        assert f.filename in by_name, (f.filename, sorted(by_name))
        a = by_name[f.filename]
        assert a.text == f.filename
        assert a.fragment == f"sha256={f.sha256}"


@pytest.mark.parametrize("f", R.WHEELS, ids=lambda f: f.filename.split("-")[0])
def test_wheel_metadata_file_is_the_wheels_own_metadata(published, real, f):
    entry = published.file_named(f.project, f.filename)
    assert entry is not None
    core = entry.get("core-metadata")
    assert isinstance(core, dict) and "sha256" in core, entry
    r = published.get(_request_path(published, entry["url"] + ".metadata"))
    assert r.status == 200, r
    assert support.sha256_hex(r.body) == core["sha256"]
    assert r.body == _metadata_member(real[f.filename])


@pytest.mark.parametrize("f", R.SDISTS, ids=lambda f: f.filename)
def test_legacy_sdists_have_no_metadata_file(published, f):
    """Their PKG-INFO is below 2.2, so it says nothing reliable about the built wheels (E6)."""
    entry = published.file_named(f.project, f.filename)
    assert entry is not None
    assert not entry.get("core-metadata") and not entry.get("dist-info-metadata"), entry
    assert published.get(_request_path(published, entry["url"] + ".metadata")).status == 404


@pytest.mark.parametrize(
    "f, project",
    [
        (R.PYYAML_SDIST, "pyyaml"),
        (R.ZOPE_INTERFACE_SDIST, "zope-interface"),
        (R.DATEUTIL_SDIST, "python-dateutil"),
        (R.PYREADLINE_ZIP_SDIST, "pyreadline"),
    ],
    ids=lambda x: x.filename if isinstance(x, RealFile) else x,
)
def test_legacy_sdist_is_listed_under_its_project_and_found_by_pip(published, clients, f, project):
    assert published.file_named(project, f.filename) is not None, published.files(project)
    # pip parses the legacy filename of the listing into the right version
    proc = support.check(clients.pip_index_versions(f.name, published.simple_url, "--no-binary", ":all:"))
    assert re.search(r"Available versions:\s*" + re.escape(f.version) + r"\s*$", proc.stdout, re.M), (
        support.describe(proc)
    )


# --------------------------------------------------------------------------- install


def test_uv_installs_the_real_wheels(published, make_venv):
    venv = make_venv()
    pins = [R.MARKUPSAFE_WHEEL, R.PYYAML_WHEEL, R.ZOPE_INTERFACE_WHEEL, R.JARACO_CLASSES_WHEEL, R.MORE_ITERTOOLS_WHEEL]
    # --no-deps: zope.interface requires setuptools, which the test index does not have
    # (more-itertools, jaraco.classes' dependency, is named explicitly; the pip test resolves it)
    proc = support.check(venv.uv_install("--no-deps", *[f.requirement for f in pins], index_url=published.simple_url))
    installed = venv.installed()
    for f in pins:
        assert installed.get(f.project) == f.version, support.describe(proc)
    code = (
        "import markupsafe, yaml, zope.interface, jaraco.classes.ancestry\n"
        "class I(zope.interface.Interface): pass\n"
        "print(markupsafe.escape('<a>'), yaml.safe_load('k: [1, 2]'), I.__name__, "
        "jaraco.classes.ancestry.iter_subclasses.__name__)\n"
    )
    out = support.check(support.run([venv.python, "-c", code]))
    assert out.stdout.split() == ["&lt;a&gt;", "{'k':", "[1,", "2]}", "I", "iter_subclasses"], out.stdout


def test_pip_installs_real_wheels_and_resolves_a_dependency_from_the_index(published, make_venv):
    venv = make_venv()
    proc = support.check(
        venv.pip_install("jaraco.classes==3.4.0", "MarkupSafe==2.1.5", "PyYAML==6.0.1", index_url=published.simple_url)
    )
    installed = venv.installed()
    expected = {"jaraco-classes": "3.4.0", "more-itertools": "10.2.0", "markupsafe": "2.1.5", "pyyaml": "6.0.1"}
    for project, version in expected.items():
        assert installed.get(project) == version, support.describe(proc)
    out = support.check(support.run([venv.python, "-c", "import jaraco.classes.properties, yaml, markupsafe"]))
    assert out.returncode == 0


# --------------------------------------------------------------------------- same distribution, other spelling


def _zip_with_comment(src: Path, dest: Path) -> Path:
    """Same members, different bytes: a changed zip archive comment."""
    shutil.copyfile(src, dest)
    with zipfile.ZipFile(dest, "a") as zf:
        zf.comment = b"re-packed by the pyindex tests"
    return dest


def _regzipped(src: Path, dest: Path) -> Path:
    """Same tar, different bytes: another gzip header timestamp."""
    dest.write_bytes(gzip.compress(gzip.decompress(src.read_bytes()), mtime=1234567890))
    return dest


SAME_DIST_OTHER_SPELLING = [
    # (pinned file, other spelling of the same distribution, bytes changer)
    (
        R.MARKUPSAFE_WHEEL,
        "markupsafe-2.1.5-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        _zip_with_comment,
    ),
    (R.JARACO_CLASSES_WHEEL, "jaraco_classes-3.4.0-py3-none-any.whl", _zip_with_comment),
    # upstream's own re-spelling (zope.interface 6.4 was published as `zope_interface-6.4.tar.gz`)
    (R.ZOPE_INTERFACE_SDIST, "zope_interface-6.4.post2.tar.gz", _regzipped),
    (R.PYYAML_SDIST, "pyyaml-6.0.1.tar.gz", _regzipped),
]
_SPELLING_IDS = [other for _, other, _ in SAME_DIST_OTHER_SPELLING]


@pytest.mark.parametrize("f, other, _changer", SAME_DIST_OTHER_SPELLING, ids=_SPELLING_IDS)
def test_other_spelling_with_identical_bytes_is_a_noop(published, upload, real, f, other, _changer):
    srv = published
    before = srv.files(f.project)
    etag = _listing_etag(srv, f.project)
    r = upload(srv, _as_dist(f, real[f.filename]), filename=other)
    assert r.status_code == 200, (r.status_code, r.reason, r.text)
    after = srv.files(f.project)
    assert after == before
    assert other not in {x["filename"] for x in after}
    assert _listing_etag(srv, f.project) == etag


@pytest.mark.parametrize("f, other, changer", SAME_DIST_OTHER_SPELLING, ids=_SPELLING_IDS)
def test_other_spelling_with_different_bytes_is_409(published, upload, real, tmp_path, f, other, changer):
    srv = published
    before = srv.files(f.project)
    changed = changer(real[f.filename], tmp_path / other)
    assert changed.read_bytes() != real[f.filename].read_bytes()
    r = upload(srv, _as_dist(f, changed))
    assert r.status_code == 409, (r.status_code, r.reason, r.text)
    assert r.reason.startswith("File already exists"), r.reason
    assert r.text.startswith("File already exists"), r.text
    assert f.filename in r.text, f"the message should name the existing file {f.filename}: {r.text!r}"
    assert srv.files(f.project) == before
    entry = srv.file_named(f.project, f.filename)
    assert srv.download(entry["url"]) == real[f.filename].read_bytes()


# --------------------------------------------------------------------------- disagreeing names


def _form(name_re: str, version: str, *, exact_version: bool = False) -> str:
    """The expected filename form in a message: the project's name, then its version
    (or a `{version}` placeholder where the mistake is in the name part)."""
    v = re.escape(version)
    return rf"{name_re}-{v}" if exact_version else rf"{name_re}-({v}|\{{version\}})"


DISAGREEING = {
    # wheel whose name part is another project's
    "wheel-name": (
        dict(f=R.PYYAML_WHEEL, filename="PyYAMLX-6.0.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
        _form("pyyaml", "6.0.1"),
    ),
    # wheel whose version part is another version
    "wheel-version": (
        dict(
            f=R.MARKUPSAFE_WHEEL,
            filename="MarkupSafe-2.1.6-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        ),
        _form("markupsafe", "2.1.5", exact_version=True),
    ),
    # a dash inside the name part makes a wheel name ambiguous: the wheel spec forbids it
    "wheel-dashed-name": (
        dict(
            f=R.ZOPE_INTERFACE_WHEEL,
            filename="zope-interface-6.4.post2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        ),
        _form("zope[._]interface", "6.4.post2"),
    ),
    "sdist-version": (
        dict(f=R.PYYAML_SDIST, filename="PyYAML-6.0.2.tar.gz"),
        _form("pyyaml", "6.0.1", exact_version=True),
    ),
    # the shortest prefix normalizing to `python-dateutil` leaves `extra-2.9.0`, not a version
    "sdist-name": (
        dict(f=R.DATEUTIL_SDIST, filename="python-dateutil-extra-2.9.0.tar.gz"),
        _form("python[-_]dateutil", "2.9.0"),
    ),
    "zip-sdist-name": (dict(f=R.PYREADLINE_ZIP_SDIST, filename="pyreadlines-2.1.zip"), _form("pyreadline", "2.1")),
    # filename and metadata agree, the form does not
    "form-name": (dict(f=R.PYYAML_WHEEL, overrides={"name": "yaml"}), r"pyyaml"),
    "form-version": (dict(f=R.PYYAML_SDIST, overrides={"version": "6.0.2"}), r"6\.0\.1"),
}


def assert_refused(r, pattern: str):
    assert r.status_code == 400, (r.status_code, r.reason, r.text[:500])
    assert (r.headers.get("Content-Type") or "").startswith("text/plain"), r.headers
    body = r.text.strip()
    assert re.search(pattern, body, re.I), f"the message should name the expected form ({pattern}): {body!r}"
    assert r.reason and r.reason.lower() != "bad request", f"reason phrase is not the message: {r.reason!r}"


@pytest.mark.parametrize("case", sorted(DISAGREEING))
def test_disagreeing_names_are_refused_with_the_expected_form(server, upload, real, case):
    """A first upload (fresh server: no identical file to fall back on) is refused; nothing is stored."""
    spec, pattern = DISAGREEING[case]
    f: RealFile = spec["f"]
    r = upload(server, _as_dist(f, real[f.filename]), filename=spec.get("filename"), overrides=spec.get("overrides"))
    assert_refused(r, pattern)
    assert server.root_projects() == set()
    # the same file under its real name and with the right form is then accepted
    assert upload(server, _as_dist(f, real[f.filename])).status_code == 200
    assert [x["filename"] for x in server.files(f.project)] == [f.filename]
