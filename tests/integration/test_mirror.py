"""`pyindex mirror -r FILE`: fetch what a build needs through a running pyindex, checking every
file's sha256, from a pinned requirements file, a uv.lock and a pylock.toml.

The server holds PRIVATE projects published with twine; the lock files are written by uv itself
(`uv lock`, `uv export --format pylock.toml`) against it, so they are real ones. Mirroring
through the upstream proxy (and installing with the upstream stopped) is covered with the
proxy's tests."""

from __future__ import annotations

import http.server
import json
import os
import re
import threading
from pathlib import Path

import pytest

import auth_support as A
import support
from conftest import free_port, pyindex_bin


@pytest.fixture(scope="module")
def published(module_server, clients, module_dists):
    """alpha 1.0 and 2.0, Beta_Lib 0.3: a wheel and an sdist each, uploaded with twine."""
    d = module_dists / "mirror"
    dists = {}
    for name, version in [("alpha", "1.0"), ("alpha", "2.0"), ("Beta_Lib", "0.3")]:
        dists[(support.normalize(name), version)] = [
            support.make_wheel(d, name, version),
            support.make_sdist(d, name, version),
        ]
    files = [dist.path for pair in dists.values() for dist in pair]
    support.check(clients.twine_upload(module_server.upload_url, files))
    return dists


@pytest.fixture(scope="module")
def app_locks(module_server, clients, published, tmp_path_factory):
    """A project depending on alpha==1.0 and beta-lib, locked by uv: (uv.lock, pylock.toml)."""
    app = tmp_path_factory.mktemp("app")
    (app / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.8"\n'
        'dependencies = ["alpha==1.0", "beta-lib"]\n'
    )
    index = ["--no-config", "--index-url", module_server.simple_url]
    support.check(clients.uv("lock", *index, cwd=app))
    support.check(clients.uv("export", *index, "--format", "pylock.toml", "-o", "pylock.toml", cwd=app))
    return app / "uv.lock", app / "pylock.toml"


def mirror(*args: str, env: dict | None = None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PYINDEX_")}
    full_env.update(env or {})
    return support.run([pyindex_bin(), "mirror", *args], env=full_env, timeout=120)


def fetched(proc) -> set[str]:
    return set(re.findall(r"^fetched (\S+) \(\d+ bytes, sha256 ok\)$", proc.stdout, re.M))


def filenames(*dists) -> set[str]:
    return {dist.filename for dist in dists}


def served(server, filename: str) -> bool:
    """Whether the server's request log shows the file answered with 200."""
    pattern = rf"path=/files/[0-9a-f]+/{re.escape(filename)}\}}.*status=200"
    return re.search(pattern, server.log_text()) is not None


def test_pinned_requirements_fetch_every_file_of_each_version(module_server, published, tmp_path):
    alpha1 = published[("alpha", "1.0")]
    beta = published[("beta-lib", "0.3")]
    req = tmp_path / "requirements.txt"
    req.write_text(
        "# pip freeze\n"
        "alpha==1.0 ; python_version < '3'  # markers are ignored: everything pinned is fetched\n"
        f"Beta_Lib==0.3 \\\n    --hash=sha256:{beta[0].sha256} \\\n    --hash=sha256:{beta[1].sha256}\n"
    )
    proc = mirror("-r", str(req), "--index-url", module_server.simple_url)
    assert proc.returncode == 0, support.describe(proc)
    expected = filenames(*alpha1, *beta)
    assert fetched(proc) == expected, support.describe(proc)
    assert "4 files fetched and verified" in proc.stdout
    assert "0 failed" in proc.stdout
    for filename in expected:
        assert served(module_server, filename), filename

    # Safe to re-run: everything is fetched and checked again.
    again = mirror("-r", str(req), "--index-url", module_server.simple_url)
    assert again.returncode == 0, support.describe(again)
    assert fetched(again) == expected


def test_uv_lock_fetches_each_listed_file(module_server, published, app_locks):
    uv_lock, _ = app_locks
    proc = mirror("-r", str(uv_lock), "--index-url", module_server.simple_url)
    assert proc.returncode == 0, support.describe(proc)
    assert fetched(proc) == filenames(*published[("alpha", "1.0")], *published[("beta-lib", "0.3")])
    assert "(uv.lock)" in proc.stdout
    assert "1 local (not from an index): app 0.1 (virtual)" in proc.stdout


def test_pylock_fetches_each_listed_file(module_server, published, app_locks):
    _, pylock = app_locks
    proc = mirror("-r", str(pylock), "--index-url", module_server.simple_url)
    assert proc.returncode == 0, support.describe(proc)
    assert fetched(proc) == filenames(*published[("alpha", "1.0")], *published[("beta-lib", "0.3")])
    assert "(pylock.toml)" in proc.stdout


def test_lock_files_are_fetched_by_filename_through_the_index(module_server, published, app_locks, tmp_path):
    """A lock written against another index (URLs elsewhere) is fetched from this one by filename."""
    uv_lock, pylock = app_locks
    for lock in (uv_lock, pylock):
        moved = tmp_path / lock.name
        moved.write_text(lock.read_text().replace(module_server.url, "http://upstream.invalid:9"))
        proc = mirror("-r", str(moved), "--index-url", module_server.simple_url)
        assert proc.returncode == 0, support.describe(proc)
        assert len(fetched(proc)) == 4, support.describe(proc)


def test_a_wrong_hash_is_reported(module_server, published, app_locks, tmp_path):
    _, pylock = app_locks
    wheel = published[("alpha", "1.0")][0]
    bad = tmp_path / "pylock.toml"
    bad.write_text(pylock.read_text().replace(f'sha256 = "{wheel.sha256}"', f'sha256 = "{"0" * 64}"'))
    assert bad.read_text() != pylock.read_text()
    proc = mirror("-r", str(bad), "--index-url", module_server.simple_url)
    assert proc.returncode == 1, support.describe(proc)
    assert wheel.filename not in fetched(proc)
    assert len(fetched(proc)) == 3
    assert f"{wheel.filename}: the lock file says sha256 {'0' * 64}, the index lists {wheel.sha256}" in proc.stdout
    assert "1 entry was not mirrored" in proc.stdout

    req = tmp_path / "requirements.txt"
    req.write_text(f"alpha==2.0 --hash=sha256:{'1' * 64}\n")
    proc = mirror("-r", str(req), "--index-url", module_server.simple_url)
    assert proc.returncode == 1, support.describe(proc)
    assert fetched(proc) == set()
    assert "none of the 2 files of version 2.0 on the index has a sha256" in proc.stdout


def test_missing_names_versions_and_unfetchable_lines_are_reported(module_server, published, tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("no-such-project==1.0\nalpha==9.9\nalpha==2.0\n-e ./src\nbeta-lib>=0.1\n")
    proc = mirror("-r", str(req), "--index-url", module_server.simple_url)
    assert proc.returncode == 1, support.describe(proc)
    assert fetched(proc) == filenames(*published[("alpha", "2.0")])
    out = proc.stdout
    assert "failed no-such-project==1.0 (line 1): not found on the index (404)" in out
    assert "failed alpha==9.9 (line 2): no file of version 9.9 on the index (versions listed: 2.0, 1.0)" in out
    assert "failed line 4: an editable install (-e)" in out
    assert "failed line 5: beta-lib is not pinned to one version" in out
    assert "2 files fetched and verified" in out and "4 failed" in out


def test_unreachable_index_and_unreadable_file(tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("alpha==1.0\n")
    url = f"http://127.0.0.1:{free_port()}/simple/"
    proc = mirror("-r", str(req), "--index-url", url)
    assert proc.returncode == 2, support.describe(proc)
    assert f"cannot reach the index at {url}" in proc.stdout
    assert "could not connect" in proc.stdout

    proc = mirror("-r", str(tmp_path / "missing.txt"), "--index-url", url)
    assert proc.returncode == 2, support.describe(proc)
    assert "cannot read" in proc.stdout

    broken = tmp_path / "uv.lock"
    broken.write_text("version = 1\n[[package]]\n")
    proc = mirror("-r", str(broken), "--index-url", url)
    assert proc.returncode == 2, support.describe(proc)
    assert "not a valid uv.lock" in proc.stdout


def test_default_index_url_is_the_configured_server(module_server, published, tmp_path):
    cfg = tmp_path / "pyindex.toml"
    cfg.write_text(f'listen = "0.0.0.0:{module_server.port}"\n')
    req = tmp_path / "requirements.txt"
    req.write_text("alpha==1.0\n")
    proc = mirror("-r", str(req), "--config", str(cfg))
    assert proc.returncode == 0, support.describe(proc)
    assert f"through http://127.0.0.1:{module_server.port}/simple/" in proc.stdout
    assert fetched(proc) == filenames(*published[("alpha", "1.0")])


class _WrongBytes(http.server.BaseHTTPRequestHandler):
    """An index whose one file's bytes differ from the sha256 its page lists."""

    listed_sha256 = "2" * 64

    def do_GET(self):  # noqa: N802 (the stdlib's name)
        if self.path in ("/simple/", "/simple/tampered/"):
            page = {
                "meta": {"api-version": "1.1"},
                "name": "tampered",
                "files": [
                    {"filename": "tampered-1.0.tar.gz", "url": "../../files/tampered-1.0.tar.gz",
                     "hashes": {"sha256": self.listed_sha256}}
                ],
            }
            body, kind = json.dumps(page).encode(), "application/vnd.pypi.simple.v1+json"
        elif self.path == "/files/tampered-1.0.tar.gz":
            body, kind = b"not the listed bytes", "application/octet-stream"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_bytes_that_do_not_match_are_reported(tmp_path):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _WrongBytes)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        lock = tmp_path / "pylock.toml"
        lock.write_text(
            'lock-version = "1.0"\ncreated-by = "test"\n[[packages]]\nname = "tampered"\nversion = "1.0"\n'
            f'sdist = {{ name = "tampered-1.0.tar.gz", hashes = {{ sha256 = "{_WrongBytes.listed_sha256}" }} }}\n'
        )
        proc = mirror("-r", str(lock), "--index-url", f"http://127.0.0.1:{httpd.server_port}/simple/")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert proc.returncode == 1, support.describe(proc)
    actual = support.sha256_hex(b"not the listed bytes")
    assert (
        f"failed tampered-1.0.tar.gz: hash mismatch: the 20 bytes received have sha256 {actual}, "
        f"the lock file says {_WrongBytes.listed_sha256}"
    ) in proc.stdout


@pytest.fixture(scope="module")
def private_srv(module_server_factory, module_dists):
    """A server in the `all` mode with one private file and a read-only token."""
    srv = module_server_factory("mirror-auth", **A.server_args("all"))
    A.add_user(srv.data, "alice", "alice-Pw-881")
    write = A.create_token(srv.data, "alice")
    read = A.create_token(srv.data, "alice", read_only=True)
    dist = support.make_wheel(module_dists / "mirror-auth", "secret-lib", "1.0")
    r = A.raw_upload(srv, dist, A.token_basic(write))
    assert r.status == 200, r
    return srv, read, dist


def test_credentials_from_the_environment_or_the_url(private_srv, tmp_path):
    srv, read, dist = private_srv
    req = tmp_path / "requirements.txt"
    req.write_text("secret-lib==1.0\n")
    proc = mirror("-r", str(req), "--index-url", srv.simple_url)
    assert proc.returncode == 2, support.describe(proc)
    assert "refused the request (401 Unauthorized)" in proc.stdout
    assert "PYINDEX_MIRROR_TOKEN" in proc.stdout

    env = {"PYINDEX_MIRROR_TOKEN": read.secret}
    proc = mirror("-r", str(req), "--index-url", srv.simple_url, env=env)
    assert proc.returncode == 0, support.describe(proc)
    assert fetched(proc) == {dist.filename}

    with_userinfo = srv.simple_url.replace("http://", f"http://__token__:{read.secret}@")
    proc = mirror("-r", str(req), "--index-url", with_userinfo)
    assert proc.returncode == 0, support.describe(proc)
    assert fetched(proc) == {dist.filename}
    assert read.secret not in proc.stdout
