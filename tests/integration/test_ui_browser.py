"""The web pages in a real browser (Debian's headless Chromium, driven by Selenium): find a
package, read it, copy its install command and install with it, sign in and create a token;
screenshots at desktop and phone widths that must not be blank, and no Content-Security-Policy
violation reported by the browser. Chromium comes from .ci/run (apt); outside CI the test is
skipped when it is missing."""

from __future__ import annotations

import shlex
import shutil
import struct
import tempfile
import zlib
from pathlib import Path

import pytest

import auth_support as A
import support
from conftest import IS_CI

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")


def need_browser():
    missing = [name for name, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)) if not path]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (tests/integration/requirements.txt)")
    if missing:
        message = f"headless browser test needs {', '.join(missing)} (apt-get install chromium chromium-driver)"
        if IS_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def browser():
    need_browser()
    import os

    os.environ["SE_OFFLINE"] = "true"  # never let Selenium Manager download anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="pyindex-chrome.")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def distinct_pixel_bytes(png: bytes) -> int:
    """How many different byte values the decompressed image data holds: a blank (one-colour)
    screenshot has a handful (the colour and the row filter bytes), a real page hundreds."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        kind = png[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += png[pos + 8:pos + 8 + length]
        pos += 12 + length
    return len(set(zlib.decompress(idat)))


def shoot(driver, path: Path, width: int, height: int) -> Path:
    driver.set_window_size(width, height)
    png = driver.get_screenshot_as_png()
    path.write_bytes(png)
    assert distinct_pixel_bytes(png) > 40, f"{path} looks blank"
    return path


def csp_violations(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]


README = """# Ranker

Ranks things, **fast**.

| feature | state |
|---|---|
| exact names first | done |
| prefix matches next | done |

```python
import ranker
ranker.rank(["b", "a"])
```
"""


def submit_and_wait(b, button, condition, what: str, timeout: float = 30) -> None:
    """Clicks a form's submit button and waits (bounded) until the page that answers it meets
    `condition`: the click returns before the browser has loaded the answer, and an element of
    the old page read meanwhile is stale."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    button.click()

    def met(driver):
        try:
            return condition(driver)
        except (NoSuchElementException, StaleElementReferenceException):
            return False

    WebDriverWait(b, timeout).until(met, message=f"{what} did not load within {timeout} s")


def test_find_read_install_and_get_a_token(server_factory, module_dists, browser, make_venv, tmp_path):
    srv = server_factory("ui-browser", **A.server_args("upload"))
    A.add_user(srv.data, "alice", "alice-Pw-771")
    token = A.create_token(srv.data, "alice")
    for name, summary, version in [("aardvark-ranker", "ranks aardvarks", "0.3"), ("ranker", "Ranks things, fast", "1.0"),
                                   ("ranker", "Ranks things, fast", "1.1")]:
        lines = ["Metadata-Version: 2.4", f"Name: {name}", f"Version: {version}", f"Summary: {summary}",
                 "License-Expression: MIT", "Author: Ada", "Requires-Python: >=3.8",
                 "Project-URL: Source, https://example.invalid/ranker", "Description-Content-Type: text/markdown"]
        meta = ("\n".join(lines) + "\n\n" + README).encode()
        dist = support.make_wheel(module_dists / f"{name}-{version}", name, version, metadata=meta)
        assert A.raw_upload(srv, dist, A.token_basic(token)).status == 200
    shots = tmp_path / "screenshots"
    shots.mkdir()
    from selenium.webdriver.common.by import By

    b = browser
    b.get(srv.url + "/")
    assert "pyindex" in b.title
    shoot(b, shots / "home-desktop.png", 1280, 900)
    box = b.find_element(By.ID, "home-q")
    box.send_keys("ranker")
    box.submit()
    results = [a.text for a in b.find_elements(By.CSS_SELECTOR, "ol.results li a")]
    assert results[:2] == ["ranker", "aardvark-ranker"], results
    b.find_element(By.LINK_TEXT, "ranker").click()
    assert b.current_url == srv.url + "/project/ranker/"
    assert b.find_element(By.CSS_SELECTOR, "h1").text == "ranker 1.1"
    assert b.find_element(By.CSS_SELECTOR, ".readme table").is_displayed()
    # the command as a user copies it (the element is select-all on click) installs the package
    command = b.find_element(By.CSS_SELECTOR, 'pre[data-command="pip"]').text
    assert command == f"pip install --index-url '{srv.url}/simple/' ranker", command
    venv = make_venv()
    args = shlex.split(command)[2:]  # as a shell would split it
    proc = venv.pip("install", *args)
    assert proc.returncode == 0, support.describe(proc)
    assert venv.installed().get("ranker") == "1.1"
    shoot(b, shots / "project-desktop.png", 1280, 900)
    shoot(b, shots / "project-phone.png", 390, 844)
    b.set_window_size(1280, 900)

    b.find_element(By.LINK_TEXT, "Sign in").click()
    b.find_element(By.ID, "user").send_keys("alice")
    b.find_element(By.ID, "password").send_keys("alice-Pw-771")
    submit_and_wait(
        b,
        b.find_element(By.CSS_SELECTOR, "form.stack button"),
        lambda d: "Sign out alice" in d.find_element(By.CSS_SELECTOR, "header").text,
        "the signed-in page",
    )
    b.find_element(By.LINK_TEXT, "My tokens").click()
    b.find_element(By.ID, "description").send_keys("laptop")
    submit_and_wait(
        b,
        b.find_element(By.CSS_SELECTOR, "form.stack button"),
        lambda d: d.find_element(By.ID, "new-token").text,
        "the page showing the new token",
    )
    secret = b.find_element(By.ID, "new-token").text
    assert secret.startswith("pyindex_"), secret
    shoot(b, shots / "tokens-phone.png", 390, 844)
    # the new token works
    r = srv.get("/api/v1/tokens", A.bearer(secret))
    assert r.status == 200 and "laptop" in r.text, r
    assert csp_violations(b) == []
