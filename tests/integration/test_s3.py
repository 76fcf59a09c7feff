"""Files in an S3-compatible bucket (`--storage s3://BUCKET/PREFIX`): twine uploads (a large
one through multipart upload and conditional copy), pip and uv install, downloads byte-identical
whole and by Range, a second upload of a filename with other bytes refused, `verify` clean, and
`verify --repair` removing an unreferenced object but no listed file.

Needs a server: `eval "$(scripts/s3 start)"` (as .ci/run does) sets PYINDEX_TEST_S3_ENDPOINT,
PYINDEX_TEST_S3_BUCKET and the AWS_* credentials; without them every test here is skipped."""

from __future__ import annotations

import hashlib
import os
import subprocess
import urllib.parse
import urllib.request
import uuid

import pytest

import auth_support as A
import support
from conftest import pyindex_bin
from upstream_fixture import StaticIndex
from upstream_fixture import wheel as upstream_wheel

ENDPOINT = os.environ.get("PYINDEX_TEST_S3_ENDPOINT")
BUCKET = os.environ.get("PYINDEX_TEST_S3_BUCKET")

pytestmark = pytest.mark.skipif(
    not (ENDPOINT and BUCKET),
    reason="SKIPPED: no S3 server (PYINDEX_TEST_S3_ENDPOINT; `eval \"$(scripts/s3 start)\"` starts one)",
)


def s3_request(method: str, key: str, body: bytes | None = None) -> subprocess.CompletedProcess:
    """A signed request to the test bucket with curl (the AWS_* credentials of scripts/s3)."""
    user = f"{os.environ['AWS_ACCESS_KEY_ID']}:{os.environ['AWS_SECRET_ACCESS_KEY']}"
    # curl -X HEAD would wait for a body: -I sends a HEAD request.
    how = ["-I"] if method == "HEAD" else ["-X", method]
    cmd = [
        "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", *how,
        "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", user,
        "-H", "x-amz-content-sha256:UNSIGNED-PAYLOAD",
        f"{ENDPOINT}/{BUCKET}/{key}",
    ]
    if body is not None:
        cmd[1:1] = ["--data-binary", "@-"]
    return subprocess.run(cmd, input=body, stdout=subprocess.PIPE, check=True, timeout=30)


def status(method: str, key: str, body: bytes | None = None) -> int:
    return int(s3_request(method, key, body).stdout)


@pytest.fixture
def s3_server(server_factory):
    prefix = f"it-{uuid.uuid4().hex[:12]}"
    args = ["--storage", f"s3://{BUCKET}/{prefix}", "--s3-endpoint", ENDPOINT]
    srv = server_factory("s3", extra_args=args)
    srv.storage_args = args
    srv.prefix = prefix
    return srv


def cli(srv, *args: str, check: bool = True):
    return srv.cli(*args, *srv.storage_args, check=check)


def test_publish_install_download_and_repair_on_s3(s3_server, clients, upload, dists, make_venv):
    srv = s3_server
    small = support.make_wheel(dists / "small", "bucketed", "1.0", payload=os.urandom(2048))
    # Larger than one 8 MiB part: multipart upload to a staging key, then a conditional copy.
    large = support.make_wheel(dists / "large", "bucketed", "2.0", payload=os.urandom(9 << 20))
    support.check(clients.twine_upload(srv.upload_url, [small.path, large.path]))

    # Nothing under the data directory's files/: the bytes are in the bucket.
    assert not (srv.data / "files").exists()
    for dist in (small, large):
        assert status("HEAD", f"{srv.prefix}/sha256/{dist.sha256}") == 200

    venv = make_venv()
    support.check(venv.pip_install("bucketed==1.0", index_url=srv.simple_url))
    assert venv.installed().get("bucketed") == "1.0"
    uv_venv = make_venv()
    support.check(uv_venv.uv_install("bucketed==2.0", index_url=srv.simple_url))
    assert uv_venv.installed().get("bucketed") == "2.0"

    url = srv.file_named("bucketed", large.filename)["url"]
    assert hashlib.sha256(srv.download(url)).hexdigest() == large.sha256
    path = urllib.parse.urlsplit(urllib.parse.urljoin(srv.url + "/", url)).path
    n = len(large.data)
    start, end = (8 << 20) - 10, (8 << 20) + 99
    r = srv.get(path, {"Range": f"bytes={start}-{end}"})
    assert r.status == 206, r
    assert r.header("Content-Range") == f"bytes {start}-{end}/{n}"
    assert r.body == large.data[start:end + 1]
    etag = r.header("ETag")
    assert etag and srv.get(path, {"If-None-Match": etag}).status == 304

    # The same filename with other bytes is refused; the stored file stays as it was.
    other = support.make_wheel(dists / "other", "bucketed", "1.0", salt="other", payload=os.urandom(2048))
    assert other.filename == small.filename
    refused = upload(srv, other)
    assert refused.status_code == 409, (refused.status_code, refused.text)
    small_url = srv.file_named("bucketed", small.filename)["url"]
    assert srv.download(small_url) == small.data

    clean = cli(srv, "verify")
    assert "all intact" in clean.stdout, clean.stdout

    # An object nothing references (a crash between storing and recording), and one the
    # refused upload may have left: repair removes them, never a listed file.
    orphan = os.urandom(1000)
    orphan_sha = hashlib.sha256(orphan).hexdigest()
    assert status("PUT", f"{srv.prefix}/sha256/{orphan_sha}", orphan) == 200
    kept = cli(srv, "verify", "--repair")
    assert orphan_sha not in kept.stdout, kept.stdout
    repaired = cli(srv, "verify", "--repair", "--grace", "0s")
    assert f"removed unreferenced blob {orphan_sha} (1000 bytes)" in repaired.stdout, repaired.stdout
    assert status("HEAD", f"{srv.prefix}/sha256/{orphan_sha}") == 404
    for dist in (small, large):
        assert status("HEAD", f"{srv.prefix}/sha256/{dist.sha256}") == 200
    assert "all intact" in cli(srv, "verify").stdout
    fresh = make_venv()
    support.check(fresh.uv_install("bucketed==2.0", index_url=srv.simple_url))
    assert fresh.installed().get("bucketed") == "2.0"


def test_bad_s3_settings_are_refused_clearly(server_factory):
    srv = server_factory("unused")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYINDEX_")}
    env["AWS_SECRET_ACCESS_KEY"] = "wrong-secret-value"
    denied = subprocess.run(
        [str(pyindex_bin()), "verify", "--data", str(srv.data),
         "--storage", f"s3://{BUCKET}/x", "--s3-endpoint", ENDPOINT],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120,
    )
    assert denied.returncode != 0, denied.stdout
    assert f"could not open the file storage s3://{BUCKET}/x" in denied.stdout, denied.stdout
    assert "wrong-secret-value" not in denied.stdout
    stray = srv.cli("verify", "--s3-endpoint", ENDPOINT, check=False)
    assert stray.returncode != 0
    assert "add --storage s3://BUCKET/PREFIX" in stray.stdout, stray.stdout


def test_storage_redirect_sends_installers_to_a_presigned_url(server_factory, clients, upload, dists, make_venv):
    """With --storage-redirect a wheel's GET is a 302 to a presigned bucket URL that serves its
    exact bytes (Range too); the index still lists this server's URL and sha256, so installers
    check what the bucket sent; HEAD and metadata files are answered by pyindex itself."""
    prefix = f"it-{uuid.uuid4().hex[:12]}"
    srv = server_factory(
        "s3-redirect",
        extra_args=["--storage", f"s3://{BUCKET}/{prefix}", "--s3-endpoint", ENDPOINT,
                    "--storage-redirect", "--storage-redirect-expiry", "2m"],
    )
    dist = support.make_wheel(dists, "redirected", "1.0", payload=os.urandom(64 << 10))
    r = upload(srv, dist)
    assert r.status_code == 200, r.text

    listed = srv.file_named("redirected", dist.filename)
    assert listed["hashes"]["sha256"] == dist.sha256
    path = urllib.parse.urlsplit(urllib.parse.urljoin(srv.url + "/", listed["url"])).path
    assert path.startswith("/files/"), listed["url"]
    answer = srv.get(path)
    assert answer.status == 302, answer
    location = answer.header("Location")
    assert location.startswith(f"{ENDPOINT}/{BUCKET}/{prefix}/sha256/{dist.sha256}?"), location
    assert "X-Amz-Signature=" in location and "X-Amz-Expires=120" in location, location
    assert answer.header("Cache-Control") == "no-store"
    # No credentials needed: the URL is the capability.
    with urllib.request.urlopen(location, timeout=30) as fetched:
        assert fetched.read() == dist.data
    ranged = urllib.request.Request(location, headers={"Range": "bytes=100-199"})
    with urllib.request.urlopen(ranged, timeout=30) as fetched:
        assert fetched.status == 206
        assert fetched.read() == dist.data[100:200]

    head = srv.request("HEAD", path)
    assert head.status == 200 and head.header("Content-Length") == str(len(dist.data)), head
    metadata = srv.get(path + ".metadata")
    assert metadata.status == 200 and b"Name: redirected" in metadata.body, metadata

    venv = make_venv()
    support.check(venv.pip_install("redirected==1.0", index_url=srv.simple_url))
    assert venv.installed().get("redirected") == "1.0"
    uv_venv = make_venv()
    support.check(uv_venv.uv_install("redirected==1.0", index_url=srv.simple_url))
    assert uv_venv.installed().get("redirected") == "1.0"


def test_storage_redirect_comes_after_authorization(server_factory, dists):
    """A private index redirects only a request with valid credentials."""
    prefix = f"it-{uuid.uuid4().hex[:12]}"
    args = A.server_args("all")
    args["extra_args"] += ["--storage", f"s3://{BUCKET}/{prefix}", "--s3-endpoint", ENDPOINT,
                           "--storage-redirect"]
    srv = server_factory("s3-redirect-private", **args)
    A.add_user(srv.data, "alice", "alice-Pw-771")
    token = A.create_token(srv.data, "alice")
    dist = support.make_wheel(dists, "secretive", "1.0")
    assert A.raw_upload(srv, dist, A.token_basic(token)).status == 200
    page = srv.get("/simple/secretive/", {"Accept": support.JSON_V1, **A.token_basic(token)})
    path = urllib.parse.urlsplit(urllib.parse.urljoin(srv.url + "/", page.json()["files"][0]["url"])).path

    anonymous = srv.get(path)
    A.assert_unauthorized(anonymous)
    assert anonymous.header("Location") is None
    allowed = srv.get(path, A.token_basic(token))
    assert allowed.status == 302, allowed
    with urllib.request.urlopen(allowed.header("Location"), timeout=30) as fetched:
        assert fetched.read() == dist.data


def test_storage_redirect_needs_a_bucket(server_factory, tmp_path):
    srv = server_factory("not-s3")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYINDEX_")}
    refused = subprocess.run(
        [str(pyindex_bin()), "serve", "--data", str(tmp_path / "d"), "--listen", "127.0.0.1:0",
         "--storage-redirect"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60,
    )
    assert refused.returncode != 0
    assert "use it with --storage s3://BUCKET/PREFIX" in refused.stdout, refused.stdout
    assert srv.get("/health").status == 200


def test_the_upstream_cache_lives_in_the_bucket(server_factory, tmp_path):
    """A proxied file is cached as an object under the prefix, is served from there with the
    upstream stopped (after a restart, so not from memory), and `cache stats` / `cache prune`
    count and evict it in the bucket."""
    upstream = StaticIndex(json=True)
    entry = upstream.add(upstream_wheel(tmp_path / "up", "bucket-cached", "1.0", payload=os.urandom(4096)))
    upstream.start()
    prefix = f"it-{uuid.uuid4().hex[:12]}"
    storage = ["--storage", f"s3://{BUCKET}/{prefix}", "--s3-endpoint", ENDPOINT]
    srv = server_factory("s3-upstream", extra_args=[*storage, "--upstream", upstream.url])
    srv.storage_args = storage
    try:
        url = srv.files("bucket-cached")[0]["url"]
        assert srv.download(url) == entry.dist.data
    finally:
        upstream.stop()
    assert upstream.hit_count(upstream.file_path(entry.dist.filename)) == 1
    assert status("HEAD", f"{prefix}/sha256/{entry.dist.sha256}") == 200
    assert not (srv.data / "files").exists()

    srv.restart()
    assert srv.download(url) == entry.dist.data
    stats = dict(line.split("\t") for line in cli(srv, "cache", "stats").stdout.strip().splitlines())
    assert stats["files"] == "1" and int(stats["bytes"]) == len(entry.dist.data), stats
    pruned = cli(srv, "cache", "prune", "--max-size", "0").stdout
    assert "Evicted 1 cached upstream file" in pruned, pruned
    assert status("HEAD", f"{prefix}/sha256/{entry.dist.sha256}") == 404
    stats = dict(line.split("\t") for line in cli(srv, "cache", "stats").stdout.strip().splitlines())
    assert stats["files"] == "0", stats
