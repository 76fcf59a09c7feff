"""Offline builds (issue 11, item 7): `pyindex mirror -r FILE` through the upstream proxy fills
the cache, then pip and uv install with the upstream stopped.

For each kind of FILE (pinned requirements from `pip freeze`, a `uv.lock` and a `pylock.toml`
written by uv itself against pyindex), a fresh pyindex proxies a fresh loopback upstream
(upstream_fixture.py); the FILE is mirrored; the upstream is stopped; pip and uv install into
fresh venvs through `--index-url <pyindex>` alone. What was not mirrored (a name never asked
for, and a version whose files were never fetched) fails with an error that says why.

The upstream's file hit counts show that the files came from `mirror`, not from the steps
that wrote the FILE: uv reads only pages and PEP 658 metadata while locking."""

from __future__ import annotations

import datetime
import os
import re
from pathlib import Path

import pytest

import support
from conftest import pyindex_bin
from upstream_fixture import StaticIndex, wheel

OLD = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)
# A short TTL and timeout: with the upstream stopped, pages are revalidated, fail, and the last
# good page is served, as it would be hours after mirroring.
PROXY_ARGS = ["--upstream-ttl", "1s", "--upstream-timeout", "2s"]


@pytest.fixture(scope="module")
def upstream_dists(tmp_path_factory):
    """mir-app 1.0 -> mir-dep 1.0 -> mir-base (1.0 and 2.0, a wheel and an sdist each), and
    never-mirrored 1.0, which nothing depends on."""
    d = tmp_path_factory.mktemp("mirror-upstream")
    return [
        wheel(d, "mir-app", "1.0", requires_dist=["mir-dep>=1.0"]),
        wheel(d, "mir-dep", "1.0", requires_dist=["mir-base>=1.0"]),
        wheel(d, "mir-base", "1.0"),
        support.make_sdist(d, "mir-base", "1.0"),
        wheel(d, "mir-base", "2.0"),
        support.make_sdist(d, "mir-base", "2.0"),
        wheel(d, "never-mirrored", "1.0"),
    ]


@pytest.fixture
def upstream(upstream_dists):
    """A fresh JSON upstream per test (each test stops its own)."""
    index = StaticIndex(json=True)
    for dist in upstream_dists:
        index.add(dist, upload_time=OLD)
    index.start()
    yield index
    index.stop()


@pytest.fixture
def proxied(server_factory, upstream):
    return server_factory(extra_args=["--upstream", upstream.url, *PROXY_ARGS])


# The files a build of mir-app needs (the newest mir-base); mir-base 1.0 stays unmirrored.
NEEDED = {
    "mir_app-1.0-py3-none-any.whl",
    "mir_dep-1.0-py3-none-any.whl",
    "mir_base-2.0-py3-none-any.whl",
    "mir_base-2.0.tar.gz",
}
EXPECTED = {"mir-app": "1.0", "mir-dep": "1.0", "mir-base": "2.0"}


def mirror(srv, path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYINDEX_")}
    proc = support.run([pyindex_bin(), "mirror", "-r", str(path), "--index-url", srv.simple_url], env=env, timeout=120)
    assert proc.returncode == 0, support.describe(proc)
    assert "0 failed" in proc.stdout, support.describe(proc)
    return set(re.findall(r"^fetched (\S+) \(\d+ bytes, sha256 ok\)$", proc.stdout, re.M))


def file_hits(upstream: StaticIndex, filenames) -> dict[str, int]:
    return {f: upstream.hit_count(upstream.file_path(f)) for f in filenames}


def installed_from(venv) -> dict[str, str]:
    return {k: v for k, v in venv.installed().items() if k.startswith("mir-")}


def mirror_then_stop(srv, upstream, path: Path, expected: set[str]) -> None:
    """Mirror `path`; every needed file came from the upstream exactly once, during mirroring."""
    assert file_hits(upstream, NEEDED) == dict.fromkeys(NEEDED, 0)
    assert mirror(srv, path) == expected
    assert file_hits(upstream, NEEDED) == dict.fromkeys(NEEDED, 1)
    upstream.stop()
    # Unreachable now: a new connection is refused.
    assert support.run(["python3", "-c", f"import urllib.request as u; u.urlopen({upstream.url!r}, timeout=2)"]).returncode != 0


def assert_not_mirrored_fails_clearly(srv, make_venv, install) -> None:
    """With the upstream stopped: a name never asked for, and a version of a cached project
    whose files were never fetched, both fail, in the client and with a reason from the server."""
    venv = make_venv()
    proc = install(venv, "never-mirrored==1.0")
    assert proc.returncode != 0, support.describe(proc)
    # pip reports a page it cannot read as "no versions"; uv names the 502.
    assert "never-mirrored" in proc.stdout, support.describe(proc)
    page = srv.get("/simple/never-mirrored/")
    assert page.status == 502, page
    assert "could not be reached" in page.text and "not cached yet" in page.text, page.text
    assert "never-mirrored" not in venv.installed()

    proc = install(venv, "mir-base==1.0", "--only-binary", ":all:")
    assert proc.returncode != 0, support.describe(proc)
    assert "mir_base-1.0-py3-none-any.whl" in support.flat(proc.stdout), support.describe(proc)
    r = srv.get("/files/upstream/mir-base/mir_base-1.0-py3-none-any.whl")
    assert r.status == 502, r
    assert "The file 'mir_base-1.0-py3-none-any.whl' is not cached yet" in r.text, r.text
    assert "pyindex mirror" in r.text, r.text
    assert "mir-base" not in venv.installed()


def pip_install(venv, *args):
    # No retries: a 502 fails at once (pip would retry it five times with back-off).
    return venv.pip("install", "--no-cache-dir", "--retries", "0", "--index-url", venv.index_url, *args)


def uv_install(venv, *args):
    uv_args = ["--no-build" if a == "--only-binary" else a for a in args if a != ":all:"]
    return venv.clients.uv("pip", "install", "--no-cache", "--python", str(venv.python), "--index-url", venv.index_url, *uv_args)


def venv_for(make_venv, srv):
    def make():
        venv = make_venv()
        venv.index_url = srv.simple_url
        return venv

    return make


def test_pip_freeze_pins_are_installed_with_the_upstream_stopped(proxied, upstream, make_venv, tmp_path):
    srv = proxied
    # The pins, as `pip freeze` writes them after an install straight from the upstream (which
    # leaves pyindex's cache empty).
    source = make_venv()
    support.check(source.pip("install", "--no-cache-dir", "--index-url", upstream.url, "mir-app"))
    freeze = support.check(source.pip("freeze")).stdout
    assert {"mir-app==1.0", "mir-dep==1.0", "mir-base==2.0"} <= set(freeze.split()), freeze
    req = tmp_path / "requirements.txt"
    req.write_text(freeze)
    upstream.hits.clear()

    mirror_then_stop(srv, upstream, req, NEEDED)
    make = venv_for(make_venv, srv)
    for install in (pip_install, uv_install):
        venv = make()
        support.check(install(venv, "-r", str(req)))
        assert installed_from(venv) == EXPECTED
        assert_not_mirrored_fails_clearly(srv, make, install)
    # uv shows the server's reason (sent as the status line's reason phrase too).
    proc = uv_install(make(), "never-mirrored")
    assert proc.returncode != 0
    assert "502" in proc.stdout and "is not cached yet" in support.flat(proc.stdout), support.describe(proc)
    assert "serving the last good page" in srv.log_text()


@pytest.fixture
def locked_app(proxied, clients, tmp_path):
    """A project depending on mir-app, locked by uv against pyindex: its directory."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.8"\ndependencies = ["mir-app"]\n'
    )
    support.check(clients.uv("lock", "--no-config", "--index-url", proxied.simple_url, cwd=app))
    return app


def test_uv_lock_is_installed_with_the_upstream_stopped(proxied, upstream, locked_app, clients, make_venv, tmp_path):
    srv = proxied
    mirror_then_stop(srv, upstream, locked_app / "uv.lock", NEEDED)
    # uv installs the lock itself, into a fresh environment.
    env_dir = tmp_path / "synced"
    support.check(
        clients.uv("sync", "--no-config", "--frozen", "--no-cache", cwd=locked_app,
                   env={"UV_PROJECT_ENVIRONMENT": str(env_dir)})
    )
    synced = make_venv()
    synced.python = env_dir / "bin" / "python"
    assert installed_from(synced) == EXPECTED
    # pip installs what uv exports from the lock (pins with hashes).
    exported = tmp_path / "requirements.txt"
    support.check(
        clients.uv("export", "--no-config", "--frozen", "--no-emit-project", "--format", "requirements-txt",
                   "-o", str(exported), cwd=locked_app)
    )
    make = venv_for(make_venv, srv)
    venv = make()
    support.check(pip_install(venv, "-r", str(exported)))
    assert installed_from(venv) == EXPECTED
    assert_not_mirrored_fails_clearly(srv, make, uv_install)


def test_pylock_is_installed_with_the_upstream_stopped(proxied, upstream, locked_app, clients, make_venv):
    srv = proxied
    support.check(
        clients.uv("export", "--no-config", "--frozen", "--format", "pylock.toml", "-o", "pylock.toml", cwd=locked_app)
    )
    pylock = locked_app / "pylock.toml"
    assert srv.simple_url.split("/simple/")[0] in pylock.read_text()
    mirror_then_stop(srv, upstream, pylock, NEEDED)
    make = venv_for(make_venv, srv)
    for install in (pip_install, uv_install):
        venv = make()
        support.check(install(venv, "-r", str(pylock)))
        assert installed_from(venv) == EXPECTED
    assert_not_mirrored_fails_clearly(srv, make, pip_install)
