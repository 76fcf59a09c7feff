"""The web pages, over raw HTTP against the real binary: home, search ranking, project and
version pages, "Using this index", hostile metadata on every page, the Content-Security-Policy,
and the `all` mode's privacy and sign-in."""

from __future__ import annotations

import html
import html.parser
import re
import urllib.parse

import pytest

import auth_support as A
import support

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)

HOSTILE_README = """# Evil

<script>alert(1)</script>

<img src=x onerror=alert(2)>

[a](javascript:alert(3)) [b](vbscript:msgbox(4)) <a href="data:text/html,<script>alert(5)</script>">c</a>

<a href="JaVaScRiPt:alert(6)" onclick="alert(7)">x</a> <iframe src="/"></iframe> <svg onload=alert(8)></svg>

| table | ok |
|---|---|
| 1 | 2 |
"""


def metadata(name: str, version: str, *, summary: str, headers=(), readme: str = "", ctype: str = "text/markdown") -> bytes:
    lines = ["Metadata-Version: 2.4", f"Name: {name}", f"Version: {version}", f"Summary: {summary}"]
    lines += [f"{k}: {v}" for k, v in headers]
    lines.append(f"Description-Content-Type: {ctype}")
    return ("\n".join(lines) + "\n\n" + readme).encode()


HOSTILE_HEADERS = [
    ("Author", "<img src=x onerror=alert(11)>"),
    ("Author-email", '"><script>alert(12)</script>@x'),
    ("License", "</dd><script>alert(10)</script>"),
    ("Keywords", '"><svg onload=alert(19)>'),
    ("Home-page", "JaVaScRiPt:alert(13)"),
    ("Download-URL", "data:text/html;base64,PHNjcmlwdD5hbGVydCgxNCk8L3NjcmlwdD4="),
    ("Project-URL", "Docs, javascript:alert(15)"),
    ("Project-URL", 'Bad"><script>alert(16)</script>, vbscript:msgbox(17)'),
    ("Project-URL", "Source, https://example.invalid/src"),
    ("Classifier", "<b onmouseover=alert(20)>x</b>"),
]


class TagAudit(html.parser.HTMLParser):
    """Every tag and attribute of a page, as a browser would parse it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.links: list[str] = []
        self.resources: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "iframe", "svg", "object", "embed", "frame", "base"):
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}>")
            if name in ("href", "src", "action", "formaction") and value:
                v = re.sub(r"[\x00-\x20]", "", value).lower()
                if v.startswith(("javascript:", "vbscript:")) or (v.startswith("data:") and v != "data:,"):
                    self.problems.append(f"<{tag} {name}={value!r}>")
                if tag == "a" and name == "href":
                    self.links.append(value)
                elif name in ("href", "src"):
                    self.resources.append(value)


def audit(body: str) -> TagAudit:
    parser = TagAudit()
    parser.feed(body)
    return parser


@pytest.fixture(scope="module")
def site(module_server, module_dists, upload):
    for name, summary in [("aardvark-ranker", "ranks aardvarks"), ("ranker", "ranks things"), ("zebra-tools", "about a ranker")]:
        dist = support.make_wheel(module_dists / name, name, "1.0", metadata=metadata(name, "1.0", summary=summary, readme="# Hello\n"))
        assert upload(module_server, dist).status_code == 200
    readme = "# Ranker\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```python\nimport ranker\n```\n"
    for version in ("1.1", "2.0"):
        dist = support.make_wheel(
            module_dists / f"ranker-{version}", "ranker", version,
            metadata=metadata("ranker", version, summary="ranks things", readme=readme,
                              headers=[("License-Expression", "MIT"), ("Author", "Ada"), ("Project-URL", "Source, https://example.invalid/ranker")]),
        )
        assert upload(module_server, dist).status_code == 200
    evil = support.make_wheel(
        module_dists / "evil", "evil-pkg", "1.0",
        metadata=metadata("evil-pkg", "1.0", summary="<script>alert('summary')</script> \"><img src=x onerror=alert(9)>",
                          headers=HOSTILE_HEADERS, readme=HOSTILE_README),
    )
    assert upload(module_server, evil).status_code == 200
    return module_server


PAGES = ["/", "/search?q=evil", "/search?q=script", "/project/evil-pkg/", "/project/evil-pkg/1.0/", "/using", "/project/ranker/"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_safe_and_has_the_policy(site, path):
    r = site.get(path)
    assert r.status == 200, r
    assert r.header("Content-Security-Policy") == CSP, r
    assert r.header("X-Content-Type-Options") == "nosniff"
    assert r.header("Content-Type").startswith("text/html")
    found = audit(r.text)
    assert found.problems == [], (path, found.problems)
    # links go only to web or mail addresses; everything the page loads comes from this server
    for href in found.links:
        assert urllib.parse.urlsplit(href).scheme in ("", "http", "https", "mailto"), href
    for resource in found.resources:
        parts = urllib.parse.urlsplit(resource)
        assert resource == "data:," or (parts.scheme == "" and parts.netloc == ""), resource


def test_hostile_text_is_shown_escaped(site):
    page = site.get("/project/evil-pkg/").text
    assert "&#60;script&#62;alert(" in page
    assert 'href="https://example.invalid/src"' in page
    assert "alert(15)" not in page and "alert(13)" not in page


def test_search_ranks_exact_name_then_prefix_then_the_rest(site):
    page = site.get("/search?q=ranker").text
    order = [m for m in re.findall(r'href="/project/([a-z0-9-]+)/"', page) if m != ""]
    assert order[:3] == ["ranker", "aardvark-ranker", "zebra-tools"], order
    assert site.get("/search?q=RANKER").text.count('href="/project/ranker/"') == 1
    assert site.get("/search?q=r_nker").text.count('href="/project/') == 0
    assert site.get("/search?q=x&page=0").status == 400


def test_home_page_has_search_counts_recent_and_commands(site):
    r = site.get("/")
    page = r.text
    assert re.search(r'<form[^>]*action="/search"', page) and 'type="search"' in page
    assert "projects" in page and "/project/evil-pkg/1.0/" in page
    base = site.url
    page = html.unescape(page)  # a browser shows the escaped quotes as quotes
    assert f"pip install --index-url '{base}/simple/' NAME" in page
    assert f"uv publish --publish-url '{base}/legacy/'" in page


def test_project_page(site):
    page = html.unescape(site.get("/project/ranker/").text)
    assert "ranker <span class=\"version\">2.0</span>" in page
    assert f"pip install --index-url '{site.url}/simple/' ranker" in page
    assert f"uv add --index '{site.url}/simple/' ranker" in page
    assert "<table>" in page and "import ranker" in page
    assert ">MIT<" in page and ">Ada<" in page
    for version in ("1.0", "1.1", "2.0"):
        assert f'href="/project/ranker/{version}/"' in page
    assert "ranker-2.0-py3-none-any.whl" in page and "py3-none-any" in page
    version_page = site.get("/project/ranker/1.1/").text
    assert "ranker==1.1" in version_page and "the latest version is" in version_page
    assert site.get("/project/ranker/9.9/").status == 404
    assert site.get("/project/Ranker/").status == 308


def test_yanked_releases_show_their_reason(site):
    proc = site.cli("yank", "ranker", "1.1", "--reason", "broken <b>build</b>")
    assert proc.returncode == 0, support.describe(proc)
    site.wait_for(lambda: "broken &#60;b&#62;build&#60;/b&#62;" in site.get("/project/ranker/").text, timeout=5, what="yank shown")
    page = site.get("/project/ranker/1.1/").text
    assert "This version is yanked" in page and "<b>build" not in page


@pytest.fixture(scope="module")
def private(module_server_factory, module_dists):
    srv = module_server_factory("ui-all", **A.server_args("all"))
    A.add_user(srv.data, "alice", "alice-Pw-771")
    token = A.create_token(srv.data, "alice")
    dist = support.make_wheel(module_dists / "hidden", "hidden-thing", "1.0")
    assert A.raw_upload(srv, dist, A.token_basic(token)).status == 200
    return srv


BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.mark.parametrize("path", ["/", "/search?q=hidden", "/project/hidden-thing/", "/project/hidden-thing/1.0/", "/using", "/account/tokens"])
def test_all_mode_pages_need_sign_in(private, path):
    r = private.get(path, BROWSER)
    assert r.status in (302, 303), r
    assert r.header("Location").startswith("/signin?next="), r
    assert b"hidden-thing" not in r.body
    tool = private.get(path)  # tools do not ask for HTML: the Basic challenge, as for /simple/
    if path != "/account/tokens":
        A.assert_unauthorized(tool)
    assert b"hidden-thing" not in tool.body


def test_all_mode_sign_in_page_names_no_project(private):
    r = private.get("/signin")
    assert r.status == 200 and r.header("Content-Security-Policy") == CSP
    assert "hidden-thing" not in r.text


def test_all_mode_sign_in_then_read(private):
    body = urllib.parse.urlencode({"user": "alice", "password": "alice-Pw-771", "next": "/search?q=hidden"}).encode()
    r = private.request("POST", "/signin", {"Content-Type": "application/x-www-form-urlencoded"}, body)
    assert r.status in (302, 303), r
    cookie = r.header("Set-Cookie")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie, cookie
    page = private.get("/search?q=hidden", {"Cookie": cookie.split(";")[0]})
    assert page.status == 200 and "/project/hidden-thing/" in page.text
    # credentials work too, for tools
    assert private.get("/project/hidden-thing/", A.basic("alice", "alice-Pw-771")).status == 200
