"""Server configuration: flags, PYINDEX_* environment, --config TOML file,
size units, precedence, restarts on the same data dir."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

import support
from conftest import free_port, pyindex_bin

MIB = 1024 * 1024


def upload_sizes(server, upload, dists, tag: str) -> tuple[int, int]:
    """Status codes of a ~0.2 MiB and a ~2 MiB upload."""
    small = support.make_wheel(dists / f"{tag}-s", f"cfg-{tag}", "1.0", payload=os.urandom(MIB // 5))
    big = support.make_wheel(dists / f"{tag}-b", f"cfg-{tag}", "2.0", payload=os.urandom(2 * MIB))
    return upload(server, small).status_code, upload(server, big).status_code


@pytest.mark.parametrize("mode", ["flags", "env", "config"])
def test_limit_applies_however_configured(server_factory, upload, dists, mode):
    srv = server_factory(f"cfg-{mode}", mode=mode, max_upload_size="1MiB")
    assert upload_sizes(srv, upload, dists, mode) == (200, 413)
    assert srv.data.is_dir() and any(srv.data.iterdir()), "data dir not used"


@pytest.mark.parametrize("size,expected", [("1048576", (200, 413)), ("10MiB", (200, 200)), ("1GiB", (200, 200))])
def test_size_units(server_factory, upload, dists, size, expected):
    srv = server_factory(f"size-{size}", max_upload_size=size)
    assert upload_sizes(srv, upload, dists, size.lower()) == expected


def test_config_file_integer_size(server_factory, upload, dists):
    """`max_upload_size = 1048576` (a TOML integer) is the natural spelling."""
    srv = server_factory("cfg-int", mode="config", max_upload_size="1048576")
    assert upload_sizes(srv, upload, dists, "int") == (200, 413)


def test_default_limit_allows_large_uploads(server, upload, dists):
    """The product needs >= 1 GiB per file (G10); the default must not be a small body limit."""
    w = support.make_wheel(dists, "default-limit", "1.0", payload=os.urandom(20 * MIB))
    r = upload(server, w)
    assert r.status_code == 200, (r.status_code, r.reason, r.text)


def test_flag_overrides_environment(server_factory, upload, dists):
    srv = server_factory("precedence", max_upload_size="10MiB", extra_env={"PYINDEX_MAX_UPLOAD_SIZE": "1MiB"})
    assert upload_sizes(srv, upload, dists, "prec") == (200, 200)


def test_restart_keeps_data(server, upload, dists):
    w = support.make_wheel(dists, "persisted", "1.0")
    assert upload(server, w).status_code == 200
    server.cli("yank", "persisted", "1.0", "--reason", "kept")
    server.wait_for(lambda: server.files("persisted")[0].get("yanked") == "kept", what="yank visible")
    server.restart()
    (f,) = server.files("persisted")
    assert f["hashes"]["sha256"] == w.sha256 and f["yanked"] == "kept"
    assert server.download(f["url"]) == w.data


def _refuses_to_start(tmp_path, args, env_extra=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYINDEX_")}
    env.update(env_extra or {})
    proc = subprocess.Popen(
        [str(pyindex_bin()), *args], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
    )
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"pyindex {' '.join(args)} kept running instead of refusing:\n{out}")
    return subprocess.CompletedProcess(args, proc.returncode, out)


def test_invalid_size_is_refused(tmp_path):
    proc = _refuses_to_start(tmp_path, ["serve", "--listen", f"127.0.0.1:{free_port()}", "--data", str(tmp_path / "d"), "--max-upload-size", "lots"])
    assert proc.returncode != 0
    assert "lots" in proc.stdout, proc.stdout


def test_unknown_config_key_is_refused(tmp_path):
    cfg = tmp_path / "pyindex.toml"
    cfg.write_text(f'listen = "127.0.0.1:{free_port()}"\ndata = "{tmp_path / "d"}"\nmax_upload_sise = "1MiB"\n')
    proc = _refuses_to_start(tmp_path, ["serve", "--config", str(cfg)])
    assert proc.returncode != 0
    assert "max_upload_sise" in proc.stdout, proc.stdout


def test_health_and_unknown_routes(server):
    assert server.get("/health").status == 200
    assert server.request("HEAD", "/health").status == 200
    assert server.get("/definitely/not/a/route").status == 404


@pytest.mark.parametrize("mode", ["flags", "env", "config"])
def test_header_timeout_applies_however_configured(server_factory, tmp_path, mode):
    """Connection bounds follow flags > env > TOML like every setting (README "Limits and timeouts")."""
    args, env = [], {}
    if mode == "flags":
        args = ["--header-timeout", "2s"]
    elif mode == "env":
        env = {"PYINDEX_HEADER_TIMEOUT": "2s"}
    else:
        cfg = tmp_path / "timeouts.toml"
        cfg.write_text('header_timeout = "2s"\n')
        args = ["--config", str(cfg)]
    srv = server_factory(f"timeout-{mode}", extra_args=args, extra_env=env)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=2 + 8)
    try:
        s.sendall(b"GET /simple/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert s.recv(1024) == b"", "a half-sent head was answered instead of closed"
    except socket.timeout:
        pytest.fail("the half-sent head was not closed within the configured header timeout")
    finally:
        s.close()


@pytest.mark.parametrize("flag,value", [("--header-timeout", "0s"), ("--body-timeout", "soon"), ("--max-connections", "0")])
def test_invalid_connection_settings_are_refused(tmp_path, flag, value):
    proc = _refuses_to_start(tmp_path, ["serve", "--listen", f"127.0.0.1:{free_port()}", "--data", str(tmp_path / "d"), flag, value])
    assert proc.returncode != 0
    assert value in proc.stdout and ("duration" in proc.stdout or "between 1 and" in proc.stdout), proc.stdout
