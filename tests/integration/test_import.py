"""`pyindex import`: taking over an nginx-style tree (hand-written pages) or a flat directory.

The tree below is what the operators have: `simple/<project>/index.html` written by hand,
links quoted either way, relative, `./` and absolute-path, with and without `#sha256=`, and
each kind of bad file. Good files are imported and installable with pip and uv; bad ones are
listed with the reason; a re-run while the server serves changes nothing; the old tree's URLs
redirect.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import support
from conftest import pyindex_bin

# 2021-06-01T12:00:00Z: the mtime given to one imported file, which becomes its upload time.
OLD_MTIME = 1622548800


def import_(source: Path, data: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYINDEX_")}
    return subprocess.run(
        [str(pyindex_bin()), "import", str(source), "--data", str(data), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=120,
    )


def skipped_lines(output: str) -> dict[str, str]:
    """`skipped <file>: <reason>` lines, by file."""
    found = {}
    for line in output.splitlines():
        if line.startswith("skipped "):
            shown, _, reason = line[len("skipped ") :].partition(": ")
            found[shown] = reason
    return found


def build_tree(root: Path) -> dict[str, support.Dist]:
    """An nginx-style tree: good files linked every way, and each bad kind."""
    simple = root / "simple"
    alpha = simple / "alpha"
    packages = root / "packages"
    good = {
        "relative-hash": support.make_wheel(alpha, "alpha", "1.0"),
        "dot-single-quotes": support.make_wheel(alpha, "alpha", "1.1"),
        "absolute-path": support.make_wheel(packages, "alpha", "2.0"),
        "parent-path": support.make_wheel(packages, "alpha", "2.1"),
        "legacy-sdist": support.make_sdist(simple / "foo-bar", "Foo.Bar", "1.0", filename="Foo.Bar-1.0.tar.gz"),
    }
    os.utime(good["parent-path"].path, (OLD_MTIME, OLD_MTIME))
    wrong_hash = support.make_wheel(alpha, "alpha", "0.9")
    truncated = support.make_wheel(alpha, "alpha", "3.1")
    truncated.path.write_bytes(truncated.data[: len(truncated.data) // 2])
    support.make_wheel(
        alpha,
        "alpha",
        "4.0",
        metadata=support.render_metadata("beta", "4.0"),
    )
    (alpha / "index.html").write_text(
        "<!DOCTYPE html>\n<html><head><title>Links for alpha</title></head><body>\n"
        "<h1>Links for alpha</h1>\n"
        f'<a href="alpha-1.0-py3-none-any.whl#sha256={good["relative-hash"].sha256}">alpha-1.0</a><br>\n'
        "<a href='./alpha-1.1-py3-none-any.whl'>alpha-1.1</a><br>\n"
        '<A HREF="/packages/alpha-2.0-py3-none-any.whl">alpha-2.0</A><br>\n'
        "<a href=../../packages/alpha-2.1-py3-none-any.whl>alpha-2.1</a><br>\n"
        f'<a href="alpha-0.9-py3-none-any.whl#sha256={"0" * 64}">alpha-0.9</a><br>\n'
        '<a href="alpha-3.0-py3-none-any.whl">alpha-3.0 (listed, never copied)</a><br>\n'
        '<a href="alpha-3.1-py3-none-any.whl">alpha-3.1</a><br>\n'
        '<a href="alpha-4.0-py3-none-any.whl">alpha-4.0</a><br>\n'
        '<a href="../">back</a>\n'
        "</body></html>\n"
    )
    (simple / "foo-bar" / "index.html").write_text(
        '<html><body><a href="Foo.Bar-1.0.tar.gz">Foo.Bar-1.0.tar.gz</a></body></html>\n'
    )
    (simple / "index.html").write_text(
        '<html><body><a href="alpha/">alpha</a> <a href="foo-bar/">foo-bar</a></body></html>\n'
    )
    assert wrong_hash.path.exists()
    return good


EXPECTED_SKIPS = {
    "simple/alpha/alpha-0.9-py3-none-any.whl": "sha256 mismatch",
    "simple/alpha/alpha-3.0-py3-none-any.whl": "listed in simple/alpha/index.html but missing",
    "simple/alpha/alpha-3.1-py3-none-any.whl": "",  # the archive's own message: not readable
    "simple/alpha/alpha-4.0-py3-none-any.whl": "names the project 'beta', not 'alpha'",
}


def etags(server) -> dict[str, str | None]:
    pages = ["/simple/", "/simple/alpha/", "/simple/foo-bar/"]
    return {p: server.get(p, {"Accept": support.JSON_V1}).header("ETag") for p in pages}


def test_an_nginx_tree_is_imported_checked_installable_and_stable_on_rerun(
    tmp_path, server_factory, make_venv
):
    source = tmp_path / "www"
    data = tmp_path / "data"
    good = build_tree(source)

    first = import_(source, data)
    assert first.returncode == 1, support.describe(first)
    assert "Imported 5, already present 0, skipped 4" in first.stdout, support.describe(first)
    skips = skipped_lines(first.stdout)
    assert set(skips) == set(EXPECTED_SKIPS), support.describe(first)
    for shown, words in EXPECTED_SKIPS.items():
        assert words in skips[shown], (shown, skips[shown])
    assert "4 files were not imported" in first.stdout, support.describe(first)

    server = server_factory("imported", data=data)
    files = {f["filename"]: f for f in server.files("alpha")}
    assert sorted(files) == [
        "alpha-1.0-py3-none-any.whl",
        "alpha-1.1-py3-none-any.whl",
        "alpha-2.0-py3-none-any.whl",
        "alpha-2.1-py3-none-any.whl",
    ]
    for dist in good.values():
        if dist.project == "alpha":
            assert files[dist.filename]["hashes"]["sha256"] == dist.sha256
    assert files["alpha-2.1-py3-none-any.whl"]["upload-time"].startswith("2021-06-01T12:00:00")
    legacy = server.file_named("foo-bar", "Foo.Bar-1.0.tar.gz")
    assert legacy is not None and legacy["hashes"]["sha256"] == good["legacy-sdist"].sha256
    assert server.download(files["alpha-2.0-py3-none-any.whl"]["url"]) == good["absolute-path"].data

    venv = make_venv()
    support.check(venv.pip_install("alpha", index_url=server.simple_url))
    assert venv.installed()["alpha"] == "2.1"
    venv = make_venv()
    support.check(venv.uv_install("alpha==1.1", index_url=server.simple_url))
    assert venv.installed()["alpha"] == "1.1"

    # A re-run while serving finds everything in place and changes nothing.
    before_pages = etags(server)
    before_audit = server.cli("audit").stdout
    assert before_audit.count("import") == 5, before_audit
    again = import_(source, data)
    assert again.returncode == 1, support.describe(again)
    assert "Imported 0, already present 5, skipped 4" in again.stdout, support.describe(again)
    assert set(skipped_lines(again.stdout)) == set(EXPECTED_SKIPS)
    assert server.cli("audit").stdout == before_audit
    assert etags(server) == before_pages


def test_the_old_trees_urls_redirect(tmp_path, server_factory, make_venv):
    source = tmp_path / "www"
    data = tmp_path / "data"
    good = build_tree(source)
    import_(source, data)
    server = server_factory("old-urls", data=data)
    wheel = good["parent-path"]

    r = server.get(f"/simple/alpha/{wheel.filename}")
    assert r.status == 301, r
    assert r.header("Location") == f"/files/{wheel.sha256}/{wheel.filename}"
    r = server.get("/simple/Alpha/alpha-2.1-py3-none-any.whl")
    assert r.status == 301 and r.header("Location").startswith(f"/files/{wheel.sha256}/"), r
    r = server.get("/simple/index.html")
    assert (r.status, r.header("Location")) == (301, "/simple/")
    r = server.get("/simple/alpha/index.html")
    assert (r.status, r.header("Location")) == (301, "/simple/alpha/")
    for missing in ["/simple/alpha/alpha-3.0-py3-none-any.whl", "/simple/alpha/Foo.Bar-1.0.tar.gz"]:
        r = server.get(missing)
        assert r.status == 404, r
        assert "see /simple/alpha/" in r.text, r

    # As a Dockerfile or a lock file holds it: the file's old URL, given to pip directly.
    venv = make_venv()
    support.check(venv.pip("install", "--no-index", f"{server.url}/simple/alpha/{wheel.filename}"))
    assert venv.installed()["alpha"] == "2.1"


def test_a_flat_directory_is_imported_by_each_files_metadata(tmp_path, server_factory, make_venv):
    source = tmp_path / "packages"
    data = tmp_path / "data"
    top = support.make_wheel(source, "gamma", "1.0")
    nested = support.make_wheel(source / "delta", "delta", "0.5")
    legacy = support.make_sdist(source / "foo-bar", "Foo.Bar", "2.0", filename="Foo.Bar-2.0.tar.gz")
    broken = support.make_wheel(source, "gamma", "1.1")
    broken.path.write_bytes(b"not a zip file")
    (source / "README.txt").write_text("not a distribution\n")

    # Imported into a serving index: the pages follow without a restart.
    server = server_factory("flat", data=data)
    assert server.project_json("gamma") is None
    result = import_(source, data)
    assert result.returncode == 1, support.describe(result)
    assert "Imported 3, already present 0, skipped 1" in result.stdout, support.describe(result)
    assert "from the flat directory" in result.stdout
    assert list(skipped_lines(result.stdout)) == [broken.filename]

    server.wait_for(lambda: server.file_named("gamma", top.filename), what="gamma listed")
    assert server.file_named("gamma", top.filename)["hashes"]["sha256"] == top.sha256
    assert server.file_named("delta", nested.filename) is not None
    assert server.file_named("foo-bar", legacy.filename) is not None
    venv = make_venv()
    support.check(venv.uv_install("gamma", "delta", index_url=server.simple_url))
    assert (venv.installed()["gamma"], venv.installed()["delta"]) == ("1.0", "0.5")

    broken.path.unlink()
    clean = import_(source, data)
    assert clean.returncode == 0, support.describe(clean)
    assert "Imported 0, already present 3, skipped 0" in clean.stdout, support.describe(clean)


def test_an_unusable_source_exits_2_and_creates_nothing(tmp_path):
    data = tmp_path / "data"
    missing = import_(tmp_path / "nowhere", data)
    assert missing.returncode == 2, support.describe(missing)
    assert "cannot read the import source" in missing.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = import_(empty, data)
    assert nothing.returncode == 2, support.describe(nothing)
    assert "neither a 'simple/' folder nor distribution files" in nothing.stdout
    assert not (data / "catalog.sqlite3").exists()



def test_an_interrupted_import_completes_on_the_next_run(tmp_path, server_factory):
    """Killed halfway (as by a crash or ^C), an import leaves every file whole or absent; the
    next run imports the rest, and the index lists each file once."""
    source = tmp_path / "www"
    data = tmp_path / "data"
    count = 0
    for p in range(30):
        name = f"many{p:02d}"
        links = []
        for v in range(10):
            wheel = support.make_wheel(source / "simple" / name, name, f"1.{v}")
            links.append(f'<a href="{wheel.filename}#sha256={wheel.sha256}">{wheel.filename}</a>')
            count += 1
        (source / "simple" / name / "index.html").write_text("\n".join(links))

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYINDEX_")}
    proc = subprocess.Popen(
        [str(pyindex_bin()), "import", str(source), "--data", str(data), "--jobs", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        support.wait_until(
            lambda: sum(len(files) for _, _, files in os.walk(data / "files")) >= 20,
            timeout=60,
            interval=0.01,
            what="some files stored",
        )
    finally:
        support.terminate(proc)
    interrupted_before_the_end = proc.returncode != 0

    rerun = import_(source, data)
    assert rerun.returncode == 0, support.describe(rerun)
    summary = next(line for line in rerun.stdout.splitlines() if line.startswith("Imported "))
    imported = int(summary.split("Imported ")[1].split(",")[0])
    present = int(summary.split("already present ")[1].split(",")[0])
    assert imported + present == count, support.describe(rerun)
    if interrupted_before_the_end:
        assert imported > 0, support.describe(rerun)

    server = server_factory("after-interrupt", data=data)
    listed = sum(len(server.files(f"many{p:02d}")) for p in range(30))
    assert listed == count

