"""DNS rebinding: a loopback server answers only loopback host names and those allowed with
--allowed-host (README "Host check (DNS rebinding)").  The rule for servers on other
addresses is unit-tested in crates/pyindex-server/src/host_check.rs."""

from __future__ import annotations

import http.client
import subprocess
import urllib.parse

import pytest

import support
from conftest import free_port, pyindex_bin

EVIL = "evil.example"


def request_with_host(srv, method: str, path: str, host: str, headers=None, body: bytes | None = None):
    """One request to the server's loopback address carrying exactly ``host`` in Host."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host)
        hdrs = dict(headers or {})
        if body is not None:
            hdrs["Content-Length"] = str(len(body))
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders(body)
        resp = conn.getresponse()
        return support.RawResponse(resp.status, resp.reason, list(resp.getheaders()), resp.read())
    finally:
        conn.close()


def upload_body(dist, upload) -> tuple[bytes, dict[str, str]]:
    body, ctype = support.encode_multipart(
        support.upload_fields(dist), [("content", dist.filename, dist.data, "application/octet-stream")]
    )
    return body, {"Content-Type": ctype, **upload.auth_headers()}


def assert_misdirected(r, host: str) -> None:
    assert r.status == 421, r
    name = host.split(":")[0]
    assert f"does not answer for host '{host}'" in r.text, r
    assert f"--allowed-host {name} " in r.text and "PYINDEX_ALLOWED_HOST" in r.text, r
    assert "allowed_host" in r.text, r


def test_foreign_host_is_refused_for_reads_and_writes(server, upload, dists):
    published = support.make_wheel(dists, "host-pub", "1.0")
    assert upload(server, published).status_code == 200
    file_url = urllib.parse.urljoin(server.url + "/simple/host-pub/", server.files("host-pub")[0]["url"])
    file_path = urllib.parse.urlsplit(file_url).path

    for path in ("/simple/", "/simple/host-pub/", file_path, "/"):
        assert_misdirected(request_with_host(server, "GET", path, EVIL), EVIL)
    assert_misdirected(request_with_host(server, "GET", "/simple/", f"{EVIL}:{server.port}"), f"{EVIL}:{server.port}")

    refused = support.make_wheel(dists, "host-refused", "1.0")
    body, headers = upload_body(refused, upload)
    r = request_with_host(server, "POST", "/legacy/", EVIL, headers, body)
    assert_misdirected(r, EVIL)
    assert server.project_json("host-refused") is None
    assert "host-refused" not in server.root_projects()

    # The same requests with this server's own names pass.
    for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}", f"[::1]:{server.port}", "LOCALHOST"):
        assert request_with_host(server, "GET", "/simple/", host).status == 200, host
        assert request_with_host(server, "GET", file_path, host).status == 200, host
    r = request_with_host(server, "POST", "/legacy/", f"[::1]:{server.port}", headers, body)
    assert r.status == 200, r
    assert server.project_json("host-refused") is not None


def test_health_answers_any_host(server):
    """Orchestrators probe /health by IP; it carries no data."""
    assert request_with_host(server, "GET", "/health", "10.1.2.3:9001").status == 200


def write_config(srv_dir, text: str):
    srv_dir.mkdir(parents=True, exist_ok=True)
    path = srv_dir / "hosts.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("how", ["flag", "env", "config"])
def test_allowed_host_lets_a_name_in(server_factory, tmp_path, how):
    args, env = [], {}
    if how == "flag":
        args = ["--allowed-host", "pyindex.internal", "--allowed-host", "mirror.internal"]
    elif how == "env":
        env = {"PYINDEX_ALLOWED_HOST": "pyindex.internal,mirror.internal"}
    else:
        cfg = write_config(tmp_path / "cfg", 'allowed_host = ["pyindex.internal", "mirror.internal"]\n')
        args = ["--config", str(cfg)]
    srv = server_factory(f"allowed-{how}", extra_args=args, extra_env=env)
    for host in ("pyindex.internal", f"PyIndex.Internal:{srv.port}", "mirror.internal", f"localhost:{srv.port}"):
        assert request_with_host(srv, "GET", "/simple/", host).status == 200, host
    assert_misdirected(request_with_host(srv, "GET", "/simple/", EVIL), EVIL)


def test_flag_overrides_environment_for_allowed_hosts(server_factory):
    srv = server_factory(
        "allowed-precedence",
        extra_args=["--allowed-host", "flag.internal"],
        extra_env={"PYINDEX_ALLOWED_HOST": "env.internal"},
    )
    assert request_with_host(srv, "GET", "/simple/", "flag.internal").status == 200
    assert request_with_host(srv, "GET", "/simple/", "env.internal").status == 421


def test_malformed_allowed_host_is_refused_at_start(tmp_path):
    proc = subprocess.run(
        [str(pyindex_bin()), "serve", "--listen", f"127.0.0.1:{free_port()}", "--data", str(tmp_path / "d"),
         "--allowed-host", "http://pyindex.internal:8080"],
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode != 0
    assert "is not a host name or IP address" in proc.stderr, proc.stderr
