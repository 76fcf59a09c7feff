"""Installer policies that depend on index data: hash-checking mode with hashes
from the PEP 691 JSON page, and Requires-Python filtering (N67, N68)."""

from __future__ import annotations

import re

import pytest

import support


@pytest.fixture(scope="module")
def hashed(module_server, upload, module_dists):
    d = module_dists / "hashed"
    dists = [support.make_wheel(d, "hashed", "1.0"), support.make_sdist(d, "hashed", "1.0")]
    for dist in dists:
        r = upload(module_server, dist)
        assert r.status_code == 200, r.text
    return dists


@pytest.fixture(scope="module")
def rp(module_server, upload, module_dists):
    """rpdemo 1.0 (>=3.8) and 2.0 (wheel and sdist, Requires-Python >=3.99)."""
    d = module_dists / "rp"
    dists = {
        "1.0": support.make_wheel(d, "rpdemo", "1.0", requires_python=">=3.8"),
        "2.0": support.make_wheel(d, "rpdemo", "2.0", requires_python=">=3.99"),
        "2.0-sdist": support.make_sdist(d, "rpdemo", "2.0", requires_python=">=3.99"),
    }
    for dist in dists.values():
        r = upload(module_server, dist)
        assert r.status_code == 200, r.text
    return dists


def _requirements_from_json(server, project: str, version: str) -> str:
    page = server.project_json(project)
    hashes = [f["hashes"]["sha256"] for f in page["files"] if f"-{version}" in f["filename"]]
    assert len(hashes) == 2, page
    return f"{project}=={version} " + " ".join(f"--hash=sha256:{h}" for h in hashes) + "\n"


def test_n68_pip_require_hashes_with_hashes_from_json(module_server, hashed, make_venv, tmp_path):
    req = tmp_path / "req.txt"
    req.write_text(_requirements_from_json(module_server, "hashed", "1.0"))
    venv = make_venv()
    proc = support.check(venv.pip("install", "--require-hashes", "-r", str(req), "--index-url", module_server.simple_url))
    assert venv.installed().get("hashed") == "1.0", support.describe(proc)


def test_pip_require_hashes_rejects_a_wrong_hash(module_server, hashed, make_venv, tmp_path):
    """Control for the test above: hash checking is really in force."""
    req = tmp_path / "req.txt"
    req.write_text("hashed==1.0 --hash=sha256:" + "0" * 64 + "\n")
    venv = make_venv()
    proc = venv.pip("install", "--require-hashes", "-r", str(req), "--index-url", module_server.simple_url)
    assert proc.returncode != 0, support.describe(proc)
    assert "DO NOT MATCH THE HASHES" in proc.stdout, support.describe(proc)
    assert "hashed" not in venv.installed()


def test_uv_require_hashes_with_hashes_from_json(module_server, hashed, make_venv, tmp_path):
    req = tmp_path / "req.txt"
    req.write_text(_requirements_from_json(module_server, "hashed", "1.0"))
    venv = make_venv()
    proc = support.check(venv.uv_install("--require-hashes", "-r", str(req), index_url=module_server.simple_url))
    assert venv.installed().get("hashed") == "1.0", support.describe(proc)


def test_requires_python_is_advertised(module_server, rp):
    html = module_server.project_html("rpdemo")
    anchors = {a.filename: a for a in support.parse_html(html).anchors}
    for key in ("2.0", "2.0-sdist"):
        a = anchors[rp[key].filename]
        assert 'data-requires-python="&gt;=3.99"' in a.raw, a.raw
    assert 'data-requires-python="&gt;=3.8"' in anchors[rp["1.0"].filename].raw
    files = {f["filename"]: f for f in module_server.files("rpdemo")}
    assert files[rp["2.0"].filename]["requires-python"] == ">=3.99"
    assert files[rp["2.0-sdist"].filename]["requires-python"] == ">=3.99"


def test_n67_pip_never_chooses_incompatible_requires_python(module_server, rp, make_venv, clients):
    venv = make_venv()
    proc = support.check(venv.pip_install("rpdemo", index_url=module_server.simple_url))
    assert venv.installed().get("rpdemo") == "1.0", support.describe(proc)

    pinned = make_venv()
    proc = pinned.pip_install("rpdemo==2.0", index_url=module_server.simple_url)
    assert proc.returncode != 0, support.describe(proc)
    assert ">=3.99" in proc.stdout, support.describe(proc)
    assert "rpdemo" not in pinned.installed()

    proc = support.check(clients.pip_index_versions("rpdemo", module_server.simple_url))
    m = re.search(r"Available versions:\s*(.*)", proc.stdout)
    assert m and m.group(1).strip() == "1.0", support.describe(proc)


def test_n67_uv_never_chooses_incompatible_requires_python(module_server, rp, make_venv):
    venv = make_venv()
    proc = support.check(venv.uv_install("rpdemo", index_url=module_server.simple_url))
    assert venv.installed().get("rpdemo") == "1.0", support.describe(proc)

    pinned = make_venv()
    proc = pinned.uv_install("rpdemo==2.0", index_url=module_server.simple_url)
    assert proc.returncode != 0, support.describe(proc)
    assert "rpdemo" not in pinned.installed()
