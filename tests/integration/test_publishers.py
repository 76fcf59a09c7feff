"""Publishing with poetry, pdm, hatch and flit (standards L, M4, N69).

Set PYINDEX_SKIP_PUBLISHERS=1 (or a comma list such as `poetry,pdm`) to skip
them locally when a client could not be installed; the variable is ignored
when CI=true, where every publisher must run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import support
from conftest import IS_CI, tool


def _skipped(name: str) -> bool:
    value = os.environ.get("PYINDEX_SKIP_PUBLISHERS", "").strip().lower()
    if IS_CI or not value:
        return False
    return value in ("1", "true", "all", "yes") or name in {v.strip() for v in value.split(",")}


def publisher(name: str):
    """Mark a test as needing the ``name`` client; skippable locally, never in CI."""

    def deco(fn):
        fn = pytest.mark.publisher(name)(fn)
        return pytest.mark.skipif(_skipped(name), reason=f"PYINDEX_SKIP_PUBLISHERS covers {name}")(fn)

    return deco


def assert_published(server, files: list[Path]):
    assert files, "nothing was built"
    project = {support.normalize(p.name.split("-")[0]) for p in files}
    assert len(project) == 1
    listed = {f["filename"]: f for f in server.files(project.pop())}
    for p in files:
        assert p.name in listed, f"{p.name} not listed; listed: {sorted(listed)}"
        assert listed[p.name]["hashes"]["sha256"] == support.file_sha256(p)
        assert server.download(listed[p.name]["url"]) == p.read_bytes()
    return listed


@publisher("poetry")
def test_poetry_build_and_publish(module_server, clients, project_tree):
    src = project_tree("pub-poetry", "1.0", backend="poetry", requires_python=">=3.8")
    support.check(clients.run(tool("poetry"), "build", cwd=src))
    files = sorted((src / "dist").iterdir())
    env = {
        "POETRY_REPOSITORIES_PYINDEX_URL": module_server.upload_url,
        "POETRY_HTTP_BASIC_PYINDEX_USERNAME": clients.credentials.username,
        "POETRY_HTTP_BASIC_PYINDEX_PASSWORD": clients.credentials.password,
    }
    proc = support.check(clients.run(tool("poetry"), "publish", "-r", "pyindex", "--no-interaction", cwd=src, env=env))
    assert_published(module_server, files)
    # a re-run with --skip-existing succeeds and changes nothing
    support.check(clients.run(tool("poetry"), "publish", "-r", "pyindex", "--skip-existing", "--no-interaction", cwd=src, env=env))
    assert len(module_server.files("pub-poetry")) == len(files), proc.stdout


@publisher("pdm")
def test_pdm_publish(module_server, clients, project_tree):
    src = project_tree("pub-pdm", "1.0", requires_python=">=3.8")
    files = clients.build(src)
    c = clients.credentials
    args = ["publish", "--no-build", "-r", module_server.upload_url, "-u", c.username, "-P", c.password]
    support.check(clients.run(tool("pdm"), *args, cwd=src))
    assert_published(module_server, files)
    support.check(clients.run(tool("pdm"), *args, "--skip-existing", cwd=src))
    assert len(module_server.files("pub-pdm")) == len(files)


@publisher("hatch")
def test_hatch_publish_twice(module_server, clients, project_tree):
    """N69: the second `hatch publish` succeeds too."""
    src = project_tree("pub-hatch", "1.0", requires_python=">=3.8")
    files = clients.build(src)
    c = clients.credentials
    args = ["publish", "-n", "-r", module_server.upload_url, "-u", c.username, "-a", c.password, *map(str, files)]
    support.check(clients.run(tool("hatch"), *args, cwd=src))
    assert_published(module_server, files)
    support.check(clients.run(tool("hatch"), *args, cwd=src))
    assert len(module_server.files("pub-hatch")) == len(files)


@publisher("flit")
def test_flit_publish(module_server, clients, project_tree, tmp_path):
    """flit builds with flit_core and sends metadata_version=2.3 whatever the wheel says."""
    src = project_tree("pub-flit", "1.0", backend="flit", requires_python=">=3.8")
    c = clients.credentials
    env = {"FLIT_INDEX_URL": module_server.upload_url, "FLIT_USERNAME": c.username, "FLIT_PASSWORD": c.password}
    pypirc = tmp_path / "pypirc"  # empty: ignore any ~/.pypirc
    pypirc.write_text("")
    support.check(clients.run(tool("flit"), "publish", "--pypirc", str(pypirc), cwd=src, env=env))
    files = sorted((src / "dist").iterdir())
    assert {p.suffix for p in files} == {".whl", ".gz"}
    assert_published(module_server, files)


def test_published_packages_install(module_server, make_venv):
    """Whatever the publisher, the result installs with pip."""
    published = [p for p in ("pub-poetry", "pub-pdm", "pub-hatch", "pub-flit") if module_server.files(p)]
    if not published:
        pytest.skip("no publisher test ran before this one")
    venv = make_venv()
    support.check(venv.pip_install(*published, index_url=module_server.simple_url))
    installed = venv.installed()
    for p in published:
        assert installed.get(p) == "1.0", installed
