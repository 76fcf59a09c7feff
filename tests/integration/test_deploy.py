"""Deployment: TLS built in, --public-url, forwarding headers from trusted proxies only, and the
generated shell completions and man pages.

- TLS with a self-signed certificate made here: pip installs with ``--cert``, uv with
  ``SSL_CERT_FILE``; SIGHUP reloads the files (a broken file keeps the old ones); a client that
  opens a connection and never says hello is closed within the header timeout.
- ``--public-url``: redirects point at it, the landing page shows it, its host passes the Host check.
- ``X-Forwarded-For``/``-Proto`` from an untrusted peer change nothing (audit log, throttle, page);
  from a ``--trusted-proxy`` peer the forwarded client is the one audited and throttled.
"""

from __future__ import annotations

import datetime
import html
import http.client
import ipaddress
import shutil
import signal
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import auth_support as A
import support
from conftest import pyindex_bin


# --------------------------------------------------------------------------- certificates


class Authority:
    """A private certificate authority, as an organisation's internal CA: clients trust its
    certificate (``ca.pem``), the server is given a certificate it signed."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pyindex test CA")])
        cert = (
            self._builder(self.name, self.key.public_key(), days=3)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.cert_path = directory / "ca.pem"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def _builder(self, subject: x509.Name, public_key, days: int) -> x509.CertificateBuilder:
        now = datetime.datetime.now(datetime.timezone.utc)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
        )

    def issue(self, directory: Path, common_name: str) -> tuple[Path, Path]:
        """A server certificate for localhost and 127.0.0.1, and its key (PEM files)."""
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        cert = (
            self._builder(subject, key.public_key(), days=2)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        cert_path, key_path = directory / "cert.pem", directory / "key.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_path, key_path


def trusting(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def served_common_name(port: int) -> str:
    """The common name of the certificate a new connection is served (not verified)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
            assert tls.selected_alpn_protocol() in (None, "http/1.1")
    cert = x509.load_der_x509_certificate(der)
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


@pytest.fixture
def authority(tmp_path) -> Authority:
    return Authority(tmp_path / "ca")


@pytest.fixture
def tls_files(tmp_path, authority) -> tuple[Path, Path]:
    return authority.issue(tmp_path / "tls", "pyindex-test-one")


@pytest.fixture
def tls_server(server_factory, tls_files, authority):
    cert, key = tls_files
    return server_factory(
        "tls",
        extra_args=["--tls-cert", str(cert), "--tls-key", str(key), "--header-timeout", "2s"],
        tls_context=trusting(authority.cert_path),
    )


# --------------------------------------------------------------------------- TLS


def test_pip_and_uv_install_over_https_with_a_private_ca(tls_server, authority, clients, dists, make_venv):
    cert = authority.cert_path
    wheel = support.make_wheel(dists, "tls-demo", "1.0")
    support.check(clients.uv_publish(tls_server.upload_url, [wheel.path], env={"SSL_CERT_FILE": str(cert)}))
    assert tls_server.url.startswith("https://")

    # without the certificate, clients refuse the server: the TLS is real
    venv = make_venv()
    refused = venv.pip_install("tls-demo", index_url=tls_server.simple_url)
    assert refused.returncode != 0, support.describe(refused)

    support.check(venv.pip_install("--cert", str(cert), "tls-demo", index_url=tls_server.simple_url))
    assert venv.installed().get("tls-demo") == "1.0"

    uv_venv = make_venv()
    support.check(
        clients.uv(
            "pip", "install", "--python", str(uv_venv.python), "--index-url", tls_server.simple_url,
            "tls-demo", env={"SSL_CERT_FILE": str(cert)},
        )
    )
    assert uv_venv.installed().get("tls-demo") == "1.0"

    landing = tls_server.get("/")
    assert f"https://127.0.0.1:{tls_server.port}/simple/" in landing.text, landing.text


def test_plain_http_to_the_tls_port_gets_no_answer(tls_server):
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        support.raw_request(f"http://127.0.0.1:{tls_server.port}", "GET", "/health", timeout=10)


def test_sighup_reloads_the_certificate_and_a_broken_one_is_refused(tls_server, tls_files, authority, tmp_path):
    cert, key = tls_files
    assert served_common_name(tls_server.port) == "pyindex-test-one"

    new_cert, new_key = authority.issue(tmp_path / "tls-two", "pyindex-test-two")
    shutil.copyfile(new_cert, cert)
    shutil.copyfile(new_key, key)
    tls_server.proc.send_signal(signal.SIGHUP)
    support.wait_until(
        lambda: served_common_name(tls_server.port) == "pyindex-test-two", timeout=10,
        what="the reloaded certificate",
    )
    assert "TLS certificate and key reloaded" in tls_server.log_text()

    cert.write_text("not a certificate\n")
    tls_server.proc.send_signal(signal.SIGHUP)
    support.wait_until(lambda: "TLS reload failed" in tls_server.log_text(), timeout=10, what="the reload error")
    assert served_common_name(tls_server.port) == "pyindex-test-two"
    r = support.raw_request(tls_server.url, "GET", "/health", tls_context=trusting(authority.cert_path))
    assert r.status == 200, r


def test_sighup_without_tls_does_not_stop_the_server(server):
    server.proc.send_signal(signal.SIGHUP)
    support.wait_until(lambda: "nothing to reload" in server.log_text(), timeout=10, what="the SIGHUP log line")
    assert server.proc.poll() is None
    assert server.get("/health").status == 200


def test_a_client_that_never_sends_its_hello_is_closed_within_the_header_timeout(tls_server):
    """--header-timeout 2s; the bound here (20 s) only keeps a failure from hanging the suite."""
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=20) as silent:
        try:
            data = silent.recv(1)
        except ConnectionResetError:
            data = b""
        except socket.timeout:
            pytest.fail("the server kept a silent TLS connection open past the header timeout")
    assert data == b""
    assert tls_server.get("/health").status == 200


def test_tls_needs_both_files_and_names_a_bad_one(tmp_path, tls_files):
    cert, key = tls_files
    only_cert = run_serve(tmp_path / "a", "--tls-cert", str(cert))
    assert only_cert.returncode != 0
    assert "--tls-key" in only_cert.stdout, only_cert.stdout
    (tmp_path / "bad.pem").write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    bad_key = run_serve(tmp_path / "b", "--tls-cert", str(cert), "--tls-key", str(tmp_path / "bad.pem"))
    assert bad_key.returncode != 0
    assert "bad.pem" in bad_key.stdout, bad_key.stdout


def run_serve(data: Path, *args: str) -> subprocess.CompletedProcess:
    """A `pyindex serve` expected to refuse its settings and exit at once."""
    return subprocess.run(
        [str(pyindex_bin()), "serve", "--data", str(data), "--listen", "127.0.0.1:0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, timeout=60,
    )


# --------------------------------------------------------------------------- public URL


def test_public_url_is_used_for_redirects_and_the_landing_page(server_factory):
    srv = server_factory("public", extra_args=["--public-url", "https://pypi.example.internal"])
    moved = srv.get("/simple/Foo_Bar")
    assert moved.status == 301, moved
    assert moved.header("Location") == "https://pypi.example.internal/simple/foo-bar/", moved
    moved = srv.get("/simple/Foo_Bar/?x=1")
    assert moved.header("Location") == "https://pypi.example.internal/simple/foo-bar/?x=1", moved
    assert srv.get("/simple").header("Location") == "https://pypi.example.internal/simple/"

    # the proxy passes the public host name on: the Host check allows it, and only it
    page = get_with_host(srv, "/", "pypi.example.internal")
    assert page.status == 200, page
    assert "pip install --index-url 'https://pypi.example.internal/simple/' NAME" in html.unescape(page.text), page.text
    assert get_with_host(srv, "/", "evil.example").status == 421
    page = srv.get("/")
    assert "https://pypi.example.internal/simple/" in page.text and f"127.0.0.1:{srv.port}" not in page.text
    refused = srv.request("POST", "/simple/", {"Content-Type": "text/plain"}, b"x")
    assert refused.status == 405, refused
    assert "https://pypi.example.internal/legacy/" in refused.text, refused.text


def get_with_host(srv, path: str, host: str) -> support.RawResponse:
    """A GET carrying exactly ``host`` in Host."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host)
        conn.endheaders()
        resp = conn.getresponse()
        return support.RawResponse(resp.status, resp.reason, list(resp.getheaders()), resp.read())
    finally:
        conn.close()


def test_without_public_url_redirects_stay_paths(server):
    assert server.get("/simple/Foo_Bar").header("Location") == "/simple/foo-bar/"


@pytest.mark.parametrize(
    "url", ["pypi.example.internal", "ftp://pypi.example.internal", "https://pypi.example.internal/pypi/", "https://h/?q"]
)
def test_a_bad_public_url_refuses_to_start(tmp_path, url):
    proc = run_serve(tmp_path / "data", "--public-url", url)
    assert proc.returncode != 0
    assert "--public-url" in proc.stdout, proc.stdout


# --------------------------------------------------------------------------- forwarding headers

FORWARDED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}


def publish_address(srv, dists, name: str, headers: dict[str, str], source: str = "127.0.0.1") -> str:
    """Publish a wheel from `source` with `headers`; the address the audit log recorded."""
    wheel = support.make_wheel(dists, name, "1.0")
    body, ctype = support.encode_multipart(
        support.upload_fields(wheel), [("content", wheel.filename, wheel.data, "application/octet-stream")]
    )
    r = request_from(srv, source, "POST", "/legacy/", {"Content-Type": ctype, **headers}, body)
    assert r.status == 200, r
    rows = [row for row in A.audit(srv.data) if row.action == "publish" and row.subject == wheel.filename]
    assert len(rows) == 1, rows
    return rows[0].address


def request_from(srv, source: str, method: str, path: str, headers: dict[str, str], body: bytes | None = None):
    """A request from a chosen loopback source address (all of 127.0.0.0/8 is local on Linux)."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30, source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return support.RawResponse(resp.status, resp.reason, list(resp.getheaders()), resp.read())
    finally:
        conn.close()


def test_forwarding_headers_from_an_untrusted_peer_are_ignored(server, dists):
    assert publish_address(server, dists, "fwd-untrusted", FORWARDED) == "127.0.0.1"
    page = server.get("/", FORWARDED)
    assert f"http://127.0.0.1:{server.port}/simple/" in page.text, page.text


def test_forwarding_headers_from_a_trusted_proxy_give_the_client(server_factory, dists):
    srv = server_factory("proxied", extra_args=["--trusted-proxy", "127.0.0.1/32"])
    assert publish_address(srv, dists, "fwd-trusted", FORWARDED) == "203.0.113.9"
    # a forged entry left of the proxy's own is not believed: the right-most untrusted one is
    chain = {"X-Forwarded-For": "198.51.100.66, 203.0.113.10"}
    assert publish_address(srv, dists, "fwd-chain", chain) == "203.0.113.10"
    page = srv.get("/", FORWARDED)
    assert f"https://127.0.0.1:{srv.port}/simple/" in page.text, page.text
    # a peer outside the trusted network is not believed
    assert publish_address(srv, dists, "fwd-other-peer", FORWARDED, source="127.0.0.2") == "127.0.0.2"


def test_the_throttle_counts_the_forwarded_client(server_factory):
    srv = server_factory(
        "proxied-throttle", extra_args=["--auth", "upload", "--trusted-proxy", "127.0.0.1"],
        extra_env={"PYINDEX_ADMIN_PASSWORD": A.ADMIN_PASSWORD},
    )
    A.add_user(srv.data, "victim", "victim-Pw-901")
    right = A.basic("victim", "victim-Pw-901")

    def tokens(client: str, headers: dict[str, str], source: str = "127.0.0.1"):
        return request_from(srv, source, "GET", "/api/v1/tokens", {"X-Forwarded-For": client, **headers})

    for i in range(10):
        A.assert_unauthorized(tokens("203.0.113.9", A.basic("victim", f"wrong-{i}")))
    assert tokens("203.0.113.9", right).status == 429
    # another client behind the same proxy is not locked out
    assert tokens("203.0.113.10", right).status == 200

    # from an untrusted peer the header is ignored: changing it does not dodge the throttle
    for i in range(10):
        A.assert_unauthorized(tokens(f"198.51.100.{i}", A.basic("victim", f"wrong-{i}"), source="127.0.0.3"))
    assert tokens("198.51.100.200", right, source="127.0.0.3").status == 429


# --------------------------------------------------------------------------- completions and man pages


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(pyindex_bin()), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60,
    )


def test_bash_completion_names_the_subcommands(tmp_path):
    proc = run_cli("completions", "bash")
    assert proc.returncode == 0, proc.stderr
    for word in ("serve", "yank", "completions", "--tls-cert", "--public-url", "--trusted-proxy"):
        assert word in proc.stdout, word
    if shutil.which("bash"):
        script = tmp_path / "pyindex.bash"
        script.write_text(proc.stdout)
        check = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
    for shell in ("zsh", "fish"):
        assert run_cli("completions", shell).returncode == 0
    assert run_cli("completions", "tcsh").returncode != 0


def test_man_pages_render(tmp_path):
    top = run_cli("man")
    assert top.returncode == 0, top.stderr
    assert top.stdout.startswith(".ie") or ".TH pyindex" in top.stdout, top.stdout[:200]
    assert "serve" in top.stdout
    out = tmp_path / "man"
    proc = run_cli("man", str(out))
    assert proc.returncode == 0, proc.stderr
    serve_page = out / "pyindex-serve.1"
    assert (out / "pyindex.1").exists() and serve_page.exists(), sorted(p.name for p in out.iterdir())
    assert "tls\\-cert" in serve_page.read_text() or "tls-cert" in serve_page.read_text()
    if shutil.which("man"):
        rendered = subprocess.run(
            ["man", "-l", str(serve_page)], capture_output=True, text=True, env={"MANPAGER": "cat", "PAGER": "cat", "COLUMNS": "100", "PATH": "/usr/bin:/bin"},
        )
        assert rendered.returncode == 0, rendered.stderr
        assert "--tls-cert" in rendered.stdout.replace("‐", "-"), rendered.stdout[:500]


# --------------------------------------------------------------------------- deploy files

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_the_systemd_unit_verifies(tmp_path):
    """`systemd-analyze verify` on the unit, pointed at the built binary, with the man page
    its Documentation= names installed in a private MANPATH."""
    unit = tmp_path / "pyindex.service"
    text = (DEPLOY / "pyindex.service").read_text()
    assert "ProtectSystem=strict" in text and "ReadWritePaths=/var/lib/pyindex" in text
    unit.write_text(text.replace("/usr/local/bin/pyindex", str(pyindex_bin())))
    assert run_cli("man", str(tmp_path / "man" / "man1")).returncode == 0
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60,
        env={"MANPATH": str(tmp_path / "man"), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "pyindex.service" not in proc.stderr, proc.stderr


def load_yaml(path: Path):
    """PyYAML from this venv, else from the machine's python3 (the clients venv lacks it)."""
    try:
        import yaml
    except ImportError:
        code = "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"
        for python3 in ("/usr/bin/python3", "/usr/local/bin/python3"):
            if not Path(python3).exists():
                continue
            proc = subprocess.run([python3, "-c", code, str(path)], capture_output=True, text=True)
            if proc.returncode == 0:
                break
        else:
            pytest.skip("PyYAML is not installed")
        import json

        return json.loads(proc.stdout)
    return yaml.safe_load(path.read_text())


def test_the_image_and_compose_files_agree():
    """Docker cannot run here; this checks what can be checked without it."""
    compose = load_yaml(DEPLOY / "compose.yaml")
    service = compose["services"]["pyindex"]
    assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert "pyindex-data:/data" in service["volumes"]
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "cargo build --release --locked" in dockerfile
    assert "USER pyindex" in dockerfile and "VOLUME [\"/data\"]" in dockerfile
    assert "EXPOSE 9001" in dockerfile and "9001:9001" in service["ports"]
    assert "/health" in dockerfile
