"""The upstream proxy (issue 11): `--upstream` makes pyindex the one index a build needs.

The upstreams are static indexes this suite serves itself on loopback (upstream_fixture.py):
one HTML-only, one JSON-capable with upload times.  Every install goes through
`--index-url <pyindex>` alone.  Each test starts its own pyindex (fresh cache) and uses its
own project names on the module's upstreams."""

from __future__ import annotations

import concurrent.futures
import datetime
import hashlib
import json
import re
import time

import pytest
import requests

import support
from upstream_fixture import StaticIndex, wheel

OLD = datetime.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.timezone.utc)


@pytest.fixture(scope="module")
def upstream_dists(tmp_path_factory):
    return tmp_path_factory.mktemp("upstream-dists")


@pytest.fixture(scope="module")
def html_upstream(upstream_dists):
    index = StaticIndex(json=False)
    index.add(wheel(upstream_dists / "h", "up-html", "1.0", requires_python=">=3.8"), requires_python=">=3.8")
    index.add(wheel(upstream_dists / "h", "up-html", "0.9"), yanked="broken build")
    index.add(wheel(upstream_dists / "h", "shadowed", "99.0"))
    index.add(wheel(upstream_dists / "h", "shadowed-late", "99.0"))
    index.add(wheel(upstream_dists / "h", "reserved-name", "99.0"))
    index.add(wheel(upstream_dists / "h", "tampered", "1.0"), tampered=True)
    index.add(wheel(upstream_dists / "h", "slow-pkg", "1.0", payload=b"x" * 300_000), slow=True)
    index.add(wheel(upstream_dists / "h", "warm-pkg", "1.0"))
    index.add(wheel(upstream_dists / "h", "pruned-pkg", "1.0"))
    index.add(wheel(upstream_dists / "h", "first-wins", "1.0"))
    index.start()
    yield index
    index.stop()


@pytest.fixture(scope="module")
def json_upstream(upstream_dists):
    index = StaticIndex(json=True)
    index.add(wheel(upstream_dists / "j", "up-json", "2.0", requires_python=">=3.8"), upload_time=OLD, requires_python=">=3.8")
    index.add(wheel(upstream_dists / "j", "up-json", "1.0"), upload_time=OLD, yanked="")
    index.add(wheel(upstream_dists / "j", "pub-dep", "1.5"), upload_time=OLD)
    index.add(wheel(upstream_dists / "j", "first-wins", "2.0"), upload_time=OLD)
    index.add(wheel(upstream_dists / "j", "only-second", "3.0"), upload_time=OLD)
    index.start()
    yield index
    index.stop()


def proxy(server_factory, *upstreams, extra=()):
    args = []
    for u in upstreams:
        args += ["--upstream", u.url]
    return server_factory(extra_args=[*args, *extra])


def install(venv, index_url, *reqs, tool="pip"):
    if tool == "pip":
        return venv.pip("install", "--no-cache-dir", "--index-url", index_url, *reqs)
    return venv.clients.uv("pip", "install", "--no-cache", "--python", str(venv.python), "--index-url", index_url, *reqs)


@pytest.mark.parametrize("tool", ["pip", "uv"])
def test_proxied_packages_install_from_both_upstream_kinds(server_factory, html_upstream, json_upstream, make_venv, tool):
    srv = proxy(server_factory, html_upstream, json_upstream)
    venv = make_venv()
    support.check(install(venv, srv.simple_url, "up-html", "up-json", tool=tool))
    assert venv.installed()["up-html"] == "1.0"
    assert venv.installed()["up-json"] == "2.0"


def test_pages_keep_upstream_metadata_in_html_and_json(server_factory, html_upstream, json_upstream):
    srv = proxy(server_factory, html_upstream, json_upstream)
    page = srv.project_json("up-json")
    assert page["versions"] == ["1.0", "2.0"]
    by_name = {f["filename"]: f for f in page["files"]}
    new = by_name["up_json-2.0-py3-none-any.whl"]
    entry = json_upstream.files["up_json-2.0-py3-none-any.whl"]
    assert new["url"] == "/files/upstream/up-json/up_json-2.0-py3-none-any.whl"
    assert new["hashes"]["sha256"] == entry.dist.sha256
    assert new["size"] == len(entry.dist.data)
    assert new["requires-python"] == ">=3.8"
    # The upstream's upload time, never the time of caching.
    assert new["upload-time"] == "2024-01-02T03:04:05.123456Z"
    assert new["core-metadata"]["sha256"] == hashlib.sha256(entry.metadata).hexdigest()
    assert by_name["up_json-1.0-py3-none-any.whl"]["yanked"] is True
    meta = srv.download(new["url"] + ".metadata")
    assert meta == entry.metadata

    html_page = srv.project_json("up-html")
    h = {f["filename"]: f for f in html_page["files"]}
    assert h["up_html-0.9-py3-none-any.whl"]["yanked"] == "broken build"
    assert "upload-time" not in h["up_html-1.0-py3-none-any.whl"]
    assert h["up_html-1.0-py3-none-any.whl"]["requires-python"] == ">=3.8"
    html = srv.project_html("up-html")
    assert 'data-yanked="broken build"' in html
    assert "data-core-metadata=\"sha256=" in html
    assert "/files/upstream/up-html/up_html-1.0-py3-none-any.whl#sha256=" in html
    # Local projects only on the root page.
    assert "up-html" not in srv.root_projects()


def test_first_upstream_that_knows_a_name_serves_it_wholly(server_factory, html_upstream, json_upstream):
    srv = proxy(server_factory, html_upstream, json_upstream)
    assert [f["filename"] for f in srv.files("first-wins")] == ["first_wins-1.0-py3-none-any.whl"]
    assert [f["filename"] for f in srv.files("only-second")] == ["only_second-3.0-py3-none-any.whl"]
    assert srv.get("/simple/unknown-everywhere/").status == 404


def test_a_name_no_upstream_knows_is_not_asked_again_for_a_while(server_factory, html_upstream):
    srv = proxy(server_factory, html_upstream, extra=["--upstream-ttl", "2s"])
    for _ in range(3):
        assert srv.get("/simple/nowhere-known/").status == 404
    assert html_upstream.hit_count("/simple/nowhere-known/") == 1
    # Remembered for at most the page TTL (and a minute).
    time.sleep(2.2)
    assert srv.get("/simple/nowhere-known/").status == 404
    assert html_upstream.hit_count("/simple/nowhere-known/") == 2


def test_private_package_depends_on_a_proxied_one(server_factory, json_upstream, upload, dists, make_venv):
    srv = proxy(server_factory, json_upstream)
    app = support.make_wheel(dists, "priv-app", "1.0", requires_dist=["pub-dep>=1.0"])
    assert upload(srv, app).status_code == 200
    for tool in ("pip", "uv"):
        venv = make_venv()
        support.check(install(venv, srv.simple_url, "priv-app", tool=tool))
        assert venv.installed()["priv-app"] == "1.0"
        assert venv.installed()["pub-dep"] == "1.5"


def test_a_private_name_shadows_the_upstream_wholly(server_factory, html_upstream, upload, dists, make_venv):
    srv = proxy(server_factory, html_upstream)
    assert upload(srv, support.make_wheel(dists, "shadowed", "1.0")).status_code == 200
    assert [f["filename"] for f in srv.files("shadowed")] == ["shadowed-1.0-py3-none-any.whl"]
    assert srv.project_json("shadowed")["versions"] == ["1.0"]
    for tool in ("pip", "uv"):
        venv = make_venv()
        support.check(install(venv, srv.simple_url, "shadowed", tool=tool))
        assert venv.installed()["shadowed"] == "1.0"
    # The upstream file URL is not served for a private name either.
    assert srv.get("/files/upstream/shadowed/shadowed-99.0-py3-none-any.whl").status == 404


def test_a_private_name_wins_also_after_its_upstream_page_was_cached(server_factory, html_upstream, upload, dists, make_venv):
    srv = proxy(server_factory, html_upstream)
    assert [f["filename"] for f in srv.files("shadowed-late")] == ["shadowed_late-99.0-py3-none-any.whl"]
    assert upload(srv, support.make_wheel(dists, "shadowed-late", "1.0")).status_code == 200
    assert [f["filename"] for f in srv.files("shadowed-late")] == ["shadowed_late-1.0-py3-none-any.whl"]
    assert "shadowed_late-99.0" not in srv.project_html("shadowed-late")
    venv = make_venv()
    support.check(install(venv, srv.simple_url, "shadowed-late", tool="uv"))
    assert venv.installed()["shadowed-late"] == "1.0"


def test_a_reserved_name_is_never_asked_upstream(server_factory, html_upstream, upload, dists):
    srv = proxy(server_factory, html_upstream)
    out = srv.cli("project", "reserve", "Reserved_Name")
    assert "reserved" in out.stdout
    srv.wait_for(lambda: srv.get("/simple/reserved-name/").status == 404, what="reservation seen by the server")
    r = srv.get("/simple/reserved-name/")
    assert "reserved" in r.text
    assert html_upstream.hit_count("/simple/reserved-name/") == 0
    # The root page lists only names with files: a link to a 404 page helps no client.
    assert "reserved-name" not in srv.get("/simple/").text
    assert upload(srv, support.make_wheel(dists, "reserved-name", "0.1")).status_code == 200
    assert "/simple/reserved-name/" in srv.get("/simple/").text
    assert [f["filename"] for f in srv.files("reserved-name")] == ["reserved_name-0.1-py3-none-any.whl"]
    assert html_upstream.hit_count("/simple/reserved-name/") == 0


def test_a_tampered_file_is_never_delivered_whole_nor_cached(server_factory, html_upstream, make_venv):
    srv = proxy(server_factory, html_upstream)
    url = srv.files("tampered")[0]["url"]
    path = html_upstream.file_path("tampered-1.0-py3-none-any.whl")
    with pytest.raises(requests.exceptions.RequestException):
        r = requests.get(srv.url + url, timeout=30)
        r.raise_for_status()
        # A body that arrived whole would have the listed hash; it must not.
        assert hashlib.sha256(r.content).hexdigest() == html_upstream.files["tampered-1.0-py3-none-any.whl"].dist.sha256
    venv = make_venv()
    proc = install(venv, srv.simple_url, "tampered", tool="pip")
    assert proc.returncode != 0
    assert "tampered" not in venv.installed()
    stats = dict(line.split("\t") for line in srv.cli("cache", "stats").stdout.strip().splitlines())
    # At most its (good) metadata file, which pip may have read first, is cached.
    metadata = html_upstream.files["tampered-1.0-py3-none-any.whl"].metadata
    assert int(stats["bytes"]) in (0, len(metadata)), stats
    # Nothing cached: the next request goes upstream again.
    before = html_upstream.hit_count(path)
    try:
        requests.get(srv.url + url, timeout=30).content
    except requests.exceptions.RequestException:
        pass
    assert html_upstream.hit_count(path) == before + 1


def test_twenty_concurrent_requests_make_one_upstream_download(server_factory, html_upstream):
    srv = proxy(server_factory, html_upstream)
    entry = html_upstream.files["slow_pkg-1.0-py3-none-any.whl"]
    url = srv.url + srv.files("slow-pkg")[0]["url"]

    def fetch(_):
        r = requests.get(url, timeout=60)
        assert r.status_code == 200
        return hashlib.sha256(r.content).hexdigest()

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        digests = list(pool.map(fetch, range(20)))
    assert digests == [entry.dist.sha256] * 20
    assert html_upstream.hit_count(html_upstream.file_path(entry.dist.filename)) == 1
    r = requests.get(url, timeout=30)
    assert r.headers["x-pyindex-upstream"] == "cached"
    assert html_upstream.hit_count(html_upstream.file_path(entry.dist.filename)) == 1


def test_installs_work_with_the_upstream_stopped_after_a_warm_cache(server_factory, upstream_dists, make_venv):
    upstream = StaticIndex(json=True)
    upstream.add(wheel(upstream_dists / "w", "warm-dep", "1.0"), upload_time=OLD)
    upstream.start()
    srv = proxy(server_factory, upstream, extra=["--upstream-ttl", "1s", "--upstream-timeout", "2s"])
    try:
        support.check(install(make_venv(), srv.simple_url, "warm-dep", tool="pip"))
    finally:
        upstream.stop()
    time.sleep(1.5)
    r = srv.get("/simple/warm-dep/", {"Accept": support.JSON_V1})
    assert r.status == 200
    assert r.header("x-pyindex-upstream") == "stale"
    for tool in ("pip", "uv"):
        venv = make_venv()
        support.check(install(venv, srv.simple_url, "warm-dep", tool=tool))
        assert venv.installed()["warm-dep"] == "1.0"
    assert "serving the last good page" in srv.log_text()
    # Survives a restart: the page and the files are kept on disk.
    srv.restart()
    venv = make_venv()
    support.check(install(venv, srv.simple_url, "warm-dep", tool="uv"))
    # A name never cached is an error that says why, not a 404.
    assert srv.get("/simple/never-cached/").status == 502


def cache_stats(srv):
    return dict(line.split("\t") for line in srv.cli("cache", "stats").stdout.strip().splitlines())


def blob_path(srv, sha256):
    return srv.data / "files" / "sha256" / sha256[:2] / sha256[2:4] / sha256


def test_a_cached_file_a_crash_left_short_or_damaged_is_fetched_again(server_factory, upstream_dists):
    """Cached upstream files are stored without an fsync: a crash may leave one short or
    damaged.  Its recorded size is compared on every serve and its hash on the first serve
    after a start; a file that fails is never served as good, but dropped and fetched again."""
    upstream = StaticIndex(json=True)
    # Incompressible, larger than what the store reads in one go: a streamed blob.
    noise = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(12_000))
    small = wheel(upstream_dists / "c", "crash-small", "1.0")
    big = wheel(upstream_dists / "c", "crash-big", "1.0", payload=noise)
    for dist in (small, big):
        upstream.add(dist, upload_time=OLD)
    upstream.start()
    try:
        # No in-memory file cache: the large blob is streamed from disk.
        srv = proxy(server_factory, upstream, extra=["--file-cache", "0"])
        paths = {d.filename: srv.files(n)[0]["url"] for d, n in ((small, "crash-small"), (big, "crash-big"))}
        for dist in (small, big):
            assert requests.get(srv.url + paths[dist.filename], timeout=30).content == dist.data
        # A fetch is recorded once its last byte is sent.
        srv.wait_for(lambda: cache_stats(srv)["files"] == "2", what="both files recorded as cached")
        srv.stop()
        # A crash took the tail of one and left the other the right size with damaged bytes.
        short = blob_path(srv, small.sha256)
        short.write_bytes(short.read_bytes()[: len(small.data) // 2])
        damaged = blob_path(srv, big.sha256)
        data = bytearray(damaged.read_bytes())
        data[len(data) // 2] ^= 0xFF
        damaged.write_bytes(bytes(data))
        srv.start()
        urls = {name: srv.url + path for name, path in paths.items()}

        # The short one: its size gives it away before anything is sent.
        r = requests.get(urls[small.filename], timeout=30)
        assert r.status_code == 200 and r.content == small.data
        assert upstream.hit_count(upstream.file_path(small.filename)) == 2
        # The damaged one: hashed while streamed, the transfer broken before its end.
        with pytest.raises(requests.exceptions.RequestException):
            r = requests.get(urls[big.filename], timeout=30)
            r.raise_for_status()
            assert hashlib.sha256(r.content).hexdigest() == big.sha256
        r = requests.get(urls[big.filename], timeout=30)
        assert r.status_code == 200 and r.content == big.data
        assert upstream.hit_count(upstream.file_path(big.filename)) == 2
        assert "failed its check" in srv.log_text()
        # Checked once: served from the cache from then on.
        r = requests.get(urls[big.filename], timeout=30)
        assert r.headers["x-pyindex-upstream"] == "cached" and r.content == big.data
        assert upstream.hit_count(upstream.file_path(big.filename)) == 2
    finally:
        upstream.stop()


def test_the_last_use_of_a_cached_file_is_written_at_shutdown(server_factory, html_upstream):
    """Uses of cached files are batched in memory, not written on the request path."""
    srv = proxy(server_factory, html_upstream)
    url = srv.files("warm-pkg")[0]["url"]
    srv.download(url)
    log = json.loads(srv.cli("upstream", "log", "warm-pkg", "--json").stdout)
    assert log[0]["last_served"] == log[0]["first_fetched"]
    time.sleep(1.1)
    srv.download(url)
    srv.stop()
    log = json.loads(srv.cli("upstream", "log", "warm-pkg", "--json").stdout)
    assert log[0]["last_served"] > log[0]["first_fetched"], log


def test_cache_stats_and_prune(server_factory, html_upstream):
    srv = proxy(server_factory, html_upstream)
    url = srv.files("pruned-pkg")[0]["url"]
    path = html_upstream.file_path("pruned_pkg-1.0-py3-none-any.whl")
    before = html_upstream.hit_count(path)
    srv.download(url)
    srv.download(url)
    assert html_upstream.hit_count(path) == before + 1
    stats = dict(line.split("\t") for line in srv.cli("cache", "stats").stdout.strip().splitlines())
    assert stats["pages"] == "1"
    assert stats["files"] == "1"
    assert int(stats["bytes"]) > 0
    out = srv.cli("cache", "prune", "--max-size", "0").stdout
    assert re.search(r"Evicted 1 cached upstream file", out), out
    stats = dict(line.split("\t") for line in srv.cli("cache", "stats").stdout.strip().splitlines())
    assert stats["files"] == "0"
    # The server learns of the eviction from the change log (within its 0.5 s poll), then
    # fetches the file again; until then it may still serve it from memory.
    def fetched_again():
        srv.download(url)
        return html_upstream.hit_count(path) == before + 2

    srv.wait_for(fetched_again, what="the evicted file fetched again")
    srv.download(url)
    assert html_upstream.hit_count(path) == before + 2


def test_reserve_over_the_admin_api_and_the_root_page_says_names_are_proxied(server_factory, html_upstream):
    srv = proxy(server_factory, html_upstream)
    r = srv.request("POST", "/api/v1/projects/Api_Reserved/reserve")
    assert r.status == 201, r
    assert r.json() == {"project": "api-reserved", "reserved": True}
    assert srv.request("POST", "/api/v1/projects/api-reserved/reserve").status == 200
    assert srv.get("/simple/api-reserved/").status == 404
    assert html_upstream.hit_count("/simple/api-reserved/") == 0
    root = srv.get("/simple/", {"Accept": "text/html"}).text
    assert "served from the configured upstream indexes" in root
    assert "--extra-index-url" in srv.get("/using").text


def test_no_upstream_by_default(server, html_upstream):
    assert server.get("/simple/up-html/").status == 404
    assert "upstream" not in server.get("/simple/", {"Accept": "text/html"}).text


@pytest.fixture(scope="module")
def cooldown_upstreams(upstream_dists):
    now = datetime.datetime.now(datetime.timezone.utc)
    young = now - datetime.timedelta(hours=1)
    j = StaticIndex(json=True)
    j.add(wheel(upstream_dists / "c", "cool-pkg", "1.0"), upload_time=OLD)
    j.add(wheel(upstream_dists / "c", "cool-pkg", "2.0"), upload_time=young)
    j.add(wheel(upstream_dists / "c", "cool-exempt", "1.0"), upload_time=OLD)
    j.add(wheel(upstream_dists / "c", "cool-exempt", "2.0"), upload_time=young)
    h = StaticIndex(json=False)
    h.add(wheel(upstream_dists / "c", "cool-html", "1.0"))
    j.start()
    h.start()
    yield j, h
    j.stop()
    h.stop()


def cooled(server_factory, upstreams, *extra):
    return proxy(server_factory, *upstreams, extra=["--upstream-min-age", "7d", "--upstream-min-age-exempt", "Cool_Exempt", *extra])


def test_cooldown_hides_young_releases_in_both_formats_and_refuses_their_download(server_factory, cooldown_upstreams, upload, dists, make_venv):
    j, h = cooldown_upstreams
    srv = cooled(server_factory, (j, h))
    page = srv.project_json("cool-pkg")
    assert [f["filename"] for f in page["files"]] == ["cool_pkg-1.0-py3-none-any.whl"]
    assert page["versions"] == ["1.0"]
    assert "cool_pkg-2.0" not in srv.project_html("cool-pkg")
    r = srv.get("/files/upstream/cool-pkg/cool_pkg-2.0-py3-none-any.whl")
    assert r.status == 403, r
    assert "held back until" in r.text and "7d" in r.text
    assert srv.get("/files/upstream/cool-pkg/cool_pkg-2.0-py3-none-any.whl.metadata").status == 403
    assert j.hit_count("/files/cool_pkg-2.0-py3-none-any.whl") == 0
    for tool in ("pip", "uv"):
        venv = make_venv()
        support.check(install(venv, srv.simple_url, "cool-pkg", tool=tool))
        assert venv.installed()["cool-pkg"] == "1.0"
    # Exempt projects and private files are never held back.
    assert srv.project_json("cool-exempt")["versions"] == ["1.0", "2.0"]
    assert upload(srv, support.make_wheel(dists, "fresh-private", "1.0")).status_code == 200
    assert len(srv.files("fresh-private")) == 1


def test_cooldown_holds_back_unknown_upload_times_unless_allowed(server_factory, cooldown_upstreams):
    j, h = cooldown_upstreams
    srv = cooled(server_factory, (h,))
    assert srv.files("cool-html") == []
    r = srv.get("/files/upstream/cool-html/cool_html-1.0-py3-none-any.whl")
    assert r.status == 403 and "unknown" in r.text
    allowed = cooled(server_factory, (h,), "--upstream-allow-unknown-age")
    assert [f["filename"] for f in allowed.files("cool-html")] == ["cool_html-1.0-py3-none-any.whl"]


def test_a_held_back_file_appears_by_itself_once_old_enough(server_factory, upstream_dists):
    upstream = StaticIndex(json=True)
    uploaded = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=3600)
    upstream.add(wheel(upstream_dists / "a", "aging-pkg", "1.0"), upload_time=uploaded)
    upstream.start()
    try:
        # A page TTL far longer than the wait: the file must appear without a refetch.
        srv = proxy(server_factory, upstream, extra=["--upstream-min-age", "3603s", "--upstream-ttl", "1h"])
        assert srv.files("aging-pkg") == []
        srv.wait_for(lambda: len(srv.files("aging-pkg")) == 1, timeout=20, what="the file to age into view")
        assert upstream.hit_count("/simple/aging-pkg/") == 1
        assert srv.download(srv.files("aging-pkg")[0]["url"]) == upstream.files["aging_pkg-1.0-py3-none-any.whl"].dist.data
    finally:
        upstream.stop()
