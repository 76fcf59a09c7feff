"""Yanking with `pyindex yank/unyank` while the server runs (PEP 592, standards F1/F2, N66)."""

from __future__ import annotations

import re

import pytest

import support

REASON = "broken build"


def available_versions(clients, server, project) -> list[str]:
    proc = support.check(clients.pip_index_versions(project, server.simple_url))
    m = re.search(r"Available versions:\s*(.*)", proc.stdout)
    assert m, support.describe(proc)
    return [v.strip() for v in m.group(1).split(",") if v.strip()]


def publish(server, upload, d, project, versions):
    out = {}
    for v in versions:
        out[v] = [support.make_wheel(d, project, v), support.make_sdist(d, project, v)]
        for dist in out[v]:
            r = upload(server, dist)
            assert r.status_code == 200, r.text
    return out


def yanked_state(server, project, version):
    """{filename: yanked value} for every file of ``version``."""
    return {
        f["filename"]: f.get("yanked", False)
        for f in server.files(project)
        if f["filename"].startswith(f"{support.dist_stem(project)}-{version}-")
        or f["filename"] == f"{support.dist_stem(project)}-{version}.tar.gz"
    }


def wait_yanked(server, project, version, expected):
    def ok():
        state = yanked_state(server, project, version)
        assert state and all(v == expected for v in state.values()), state
        return True

    # the server picks up CLI changes "within about a second"
    server.wait_for(ok, timeout=5, what=f"{project} {version} yanked == {expected!r}")


@pytest.fixture(scope="module")
def yanked_shared(module_server, upload, module_dists):
    """shared 0.1.0 and 0.1.1 published, then `pyindex yank shared 0.1.1 --reason "broken build"`."""
    dists = publish(module_server, upload, module_dists / "shared", "shared", ["0.1.0", "0.1.1"])
    proc = module_server.cli("yank", "shared", "0.1.1", "--reason", REASON)
    assert proc.returncode == 0
    wait_yanked(module_server, "shared", "0.1.1", REASON)
    return dists


def test_yank_marks_every_file_of_the_version(module_server, yanked_shared):
    assert set(yanked_state(module_server, "shared", "0.1.0").values()) == {False}
    html = module_server.project_html("shared")
    anchors = {a.filename: a for a in support.parse_html(html).anchors}
    for dist in yanked_shared["0.1.1"]:
        assert f'data-yanked="{REASON}"' in anchors[dist.filename].raw
        # still listed and downloadable (F1)
        f = module_server.file_named("shared", dist.filename)
        assert module_server.download(f["url"]) == dist.data
    for dist in yanked_shared["0.1.0"]:
        assert "data-yanked" not in anchors[dist.filename].attrs


def test_pip_skips_yanked_version_when_unpinned(module_server, yanked_shared, make_venv):
    venv = make_venv()
    proc = support.check(venv.pip_install("shared", index_url=module_server.simple_url))
    assert venv.installed()["shared"] == "0.1.0", support.describe(proc)


def test_uv_skips_yanked_version_when_unpinned(module_server, yanked_shared, make_venv):
    venv = make_venv()
    proc = support.check(venv.uv_install("shared", index_url=module_server.simple_url))
    assert venv.installed()["shared"] == "0.1.0", support.describe(proc)


def test_pip_installs_pinned_yanked_version_with_warning(module_server, yanked_shared, make_venv):
    venv = make_venv()
    proc = support.check(venv.pip_install("shared==0.1.1", index_url=module_server.simple_url))
    assert venv.installed()["shared"] == "0.1.1"
    assert "yanked" in proc.stdout.lower(), support.describe(proc)
    assert REASON in proc.stdout, support.describe(proc)


def test_uv_installs_pinned_yanked_version(module_server, yanked_shared, make_venv):
    venv = make_venv()
    proc = support.check(venv.uv_install("shared==0.1.1", index_url=module_server.simple_url))
    assert venv.installed()["shared"] == "0.1.1", support.describe(proc)
    assert "yanked" in proc.stdout.lower(), support.describe(proc)


def test_pip_index_versions_omits_yanked(module_server, yanked_shared, clients):
    assert available_versions(clients, module_server, "shared") == ["0.1.0"]


def test_unyank_restores_the_version(module_server, upload, module_dists, clients, make_venv):
    project = "revived"
    publish(module_server, upload, module_dists / project, project, ["1.0", "1.1"])
    module_server.cli("yank", project, "1.1", "--reason", REASON)
    wait_yanked(module_server, project, "1.1", REASON)
    assert available_versions(clients, module_server, project) == ["1.0"]

    module_server.cli("unyank", project, "1.1")
    wait_yanked(module_server, project, "1.1", False)
    html = module_server.project_html(project)
    assert "data-yanked" not in html
    assert available_versions(clients, module_server, project) == ["1.1", "1.0"]
    venv = make_venv()
    support.check(venv.pip_install(project, index_url=module_server.simple_url))
    assert venv.installed()[project] == "1.1"


def test_yank_without_reason(module_server, upload, module_dists, clients):
    project = "noreason"
    publish(module_server, upload, module_dists / project, project, ["1.0", "2.0"])
    module_server.cli("yank", project, "2.0")
    wait_yanked(module_server, project, "2.0", True)
    html = module_server.project_html(project)
    for a in support.parse_html(html).anchors:
        if "-2.0" in a.filename:
            assert 'data-yanked=""' in a.raw, a.raw
    assert available_versions(clients, module_server, project) == ["1.0"]


def test_yank_reason_is_escaped_in_html(module_server, upload, module_dists):
    project = "escaped"
    publish(module_server, upload, module_dists / project, project, ["1.0"])
    reason = 'bad <build> & "x"'
    module_server.cli("yank", project, "1.0", "--reason", reason)
    wait_yanked(module_server, project, "1.0", reason)
    html = module_server.project_html(project)
    assert html.count('data-yanked="bad &lt;build&gt; &amp; &quot;x&quot;"') == 2, html
    assert "<build>" not in html


def test_yank_accepts_equivalent_version_spelling(module_server, upload, module_dists):
    """Versions compare by PEP 440 equality: `1.0.0` names release 1.0."""
    project = "spelling"
    publish(module_server, upload, module_dists / project, project, ["1.0"])
    module_server.cli("yank", "Spelling", "1.0.0", "--reason", REASON)
    wait_yanked(module_server, project, "1.0", REASON)


def test_yank_unknown_project_or_version_fails(module_server, yanked_shared):
    proc = module_server.cli("yank", "no-such-project", "1.0", check=False)
    assert proc.returncode != 0, support.describe(proc)
    proc = module_server.cli("yank", "shared", "9.9.9", check=False)
    assert proc.returncode != 0, support.describe(proc)
    assert set(yanked_state(module_server, "shared", "0.1.0").values()) == {False}


def test_unyank_shared_restores_it_for_pip_and_uv(module_server, yanked_shared, clients, make_venv):
    """Last in this module: it changes the state the tests above rely on."""
    module_server.cli("unyank", "shared", "0.1.1")
    wait_yanked(module_server, "shared", "0.1.1", False)
    assert available_versions(clients, module_server, "shared") == ["0.1.1", "0.1.0"]
    pip_venv, uv_venv = make_venv(), make_venv()
    support.check(pip_venv.pip_install("shared", index_url=module_server.simple_url))
    support.check(uv_venv.uv_install("shared", index_url=module_server.simple_url))
    assert pip_venv.installed()["shared"] == "0.1.1"
    assert uv_venv.installed()["shared"] == "0.1.1"
