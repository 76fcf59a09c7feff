"""The headline workflow: build with `python -m build`, publish with twine and
`uv publish`, then install a private package that depends on another private
package with pip and with uv (one server for the module, state builds up)."""

from __future__ import annotations

import re

import pytest

import support


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("workflow")


@pytest.fixture(scope="module")
def shared_010(module_server, clients, workdir):
    """shared 0.1.0 built by hatchling via `python -m build --no-isolation`, uploaded by twine."""
    src = support.write_project(workdir / "shared-0.1.0", "shared", "0.1.0", requires_python=">=3.8")
    files = clients.build(src)
    assert sorted(p.name for p in files) == ["shared-0.1.0-py3-none-any.whl", "shared-0.1.0.tar.gz"]
    proc = support.check(clients.twine_upload(module_server.upload_url, files))
    return files, proc


@pytest.fixture(scope="module")
def shared_011(module_server, clients, workdir, shared_010):
    """shared 0.1.1 published with `uv publish --token`."""
    src = support.write_project(workdir / "shared-0.1.1", "shared", "0.1.1", requires_python=">=3.8")
    files = clients.build(src)
    proc = support.check(clients.uv_publish(module_server.upload_url, files))
    return files, proc


@pytest.fixture(scope="module")
def courier_010(module_server, clients, workdir, shared_011):
    """courier 0.1.0, depending on the private shared==0.1.1, uploaded by twine."""
    src = support.write_project(workdir / "courier-0.1.0", "courier", "0.1.0", dependencies=["shared==0.1.1"])
    files = clients.build(src)
    support.check(clients.twine_upload(module_server.upload_url, files))
    return files


def _available_versions(proc) -> list[str]:
    m = re.search(r"Available versions:\s*(.*)", proc.stdout)
    assert m, support.describe(proc)
    return [v.strip() for v in m.group(1).split(",") if v.strip()]


def test_twine_upload_then_pip_index_versions_lists_it(module_server, clients, shared_010):
    files, _ = shared_010
    proc = support.check(clients.pip_index_versions("shared", module_server.simple_url))
    assert _available_versions(proc) == ["0.1.0"]
    assert "shared (0.1.0)" in proc.stdout

    listed = {f["filename"]: f for f in module_server.files("shared")}
    assert set(listed) == {p.name for p in files}
    for p in files:
        assert listed[p.name]["hashes"]["sha256"] == support.file_sha256(p)
        assert listed[p.name]["size"] == p.stat().st_size
        assert module_server.download(listed[p.name]["url"]) == p.read_bytes()


def test_uv_publish_bumped_version(module_server, clients, shared_011):
    files, proc = shared_011
    assert re.search(r"upload", proc.stdout, re.I), support.describe(proc)
    versions = _available_versions(support.check(clients.pip_index_versions("shared", module_server.simple_url)))
    assert versions == ["0.1.1", "0.1.0"]
    page = module_server.project_json("shared")
    assert set(page["versions"]) == {"0.1.0", "0.1.1"}
    listed = {f["filename"]: f["hashes"]["sha256"] for f in page["files"]}
    for p in files:
        assert listed[p.name] == support.file_sha256(p)


def test_pip_installs_private_package_with_private_dependency(module_server, courier_010, make_venv):
    venv = make_venv()
    proc = support.check(venv.pip_install("courier", index_url=module_server.simple_url))
    installed = venv.installed()
    assert installed.get("courier") == "0.1.0", support.describe(proc)
    assert installed.get("shared") == "0.1.1", support.describe(proc)
    out = support.check(
        support.run([venv.python, "-c", "import courier, shared; print(courier.__version__, shared.__version__)"])
    )
    assert out.stdout.split() == ["0.1.0", "0.1.1"]


def test_uv_pip_installs_private_package_with_private_dependency(module_server, courier_010, make_venv):
    venv = make_venv()
    proc = support.check(venv.uv_install("courier", index_url=module_server.simple_url))
    installed = venv.installed()
    assert installed.get("courier") == "0.1.0", support.describe(proc)
    assert installed.get("shared") == "0.1.1", support.describe(proc)


def test_pip_installs_pinned_older_release(module_server, courier_010, make_venv):
    """Pinning the first release still works after the bump (nothing was replaced)."""
    venv = make_venv()
    support.check(venv.pip_install("shared==0.1.0", index_url=module_server.simple_url))
    assert venv.installed().get("shared") == "0.1.0"


def test_root_index_lists_every_published_project_once(module_server, courier_010):
    r = module_server.get("/simple/", {"Accept": support.JSON_V1})
    assert r.status == 200, r
    names = [support.normalize(p["name"]) for p in r.json()["projects"]]
    assert sorted(names) == ["courier", "shared"]
