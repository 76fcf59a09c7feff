"""Real distribution files from the public package index, for
test_real_distributions.py.

Each file is pinned by exact requirement, filename and sha256.  They are fetched
once into a cache directory (``$PYINDEX_REAL_DISTS``, default
``<repo>/.cache/real-dists``, gitignored) with ``pip download`` from the clients
venv, using pip's own index configuration (no index URL is written here).  A file
whose bytes differ from the pin is an error everywhere: upstream changed it, and
the pin must be reviewed.  A file that cannot be fetched at all (no network) is
an error under ``CI=true`` and a skip elsewhere.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import tempfile
from pathlib import Path

import support

REPO = Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class RealFile:
    requirement: str  # what pip downloads, e.g. "PyYAML==6.0.1"
    filename: str  # exactly as published upstream
    sha256: str
    name: str  # core metadata Name
    version: str  # core metadata Version
    metadata_version: str
    pyversion: str  # the upload form's pyversion ("source" for sdists)

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")

    @property
    def filetype(self) -> str:
        return "bdist_wheel" if self.is_wheel else "sdist"

    @property
    def project(self) -> str:
        return support.normalize(self.name)

    @property
    def dist_name(self) -> str:
        """The name pip needs for --no-binary (the requirement's name part)."""
        return self.requirement.split("==")[0]


def _wheel(req: str, filename: str, sha256: str, name: str, version: str, pyversion: str) -> RealFile:
    return RealFile(req, filename, sha256, name, version, "2.1", pyversion)


def _sdist(req: str, filename: str, sha256: str, name: str, version: str, metadata_version: str = "2.1") -> RealFile:
    return RealFile(req, filename, sha256, name, version, metadata_version, "source")


# Wheels installable by CPython 3.11 on x86_64 Linux (cp311 manylinux or py3-none-any).
MARKUPSAFE_WHEEL = _wheel(
    "MarkupSafe==2.1.5",
    "MarkupSafe-2.1.5-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "b91c037585eba9095565a3556f611e3cbfaa42ca1e865f7b8015fe5c7336d5a5",
    "MarkupSafe", "2.1.5", "cp311",
)
PYYAML_WHEEL = _wheel(
    "PyYAML==6.0.1",
    "PyYAML-6.0.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "d2b04aac4d386b172d5b9692e2d2da8de7bfb6c387fa4f801fbf6fb2e6ba4673",
    "PyYAML", "6.0.1", "cp311",
)
ZOPE_INTERFACE_WHEEL = _wheel(
    "zope.interface==6.4.post2",
    "zope.interface-6.4.post2-cp311-cp311-manylinux_2_5_x86_64.manylinux1_x86_64"
    ".manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "47654177e675bafdf4e4738ce58cdc5c6d6ee2157ac0a78a3fa460942b9d64a8",
    "zope.interface", "6.4.post2", "cp311",
)
JARACO_CLASSES_WHEEL = _wheel(
    "jaraco.classes==3.4.0",
    "jaraco.classes-3.4.0-py3-none-any.whl",
    "f662826b6bed8cace05e7ff873ce0f9283b5c924470fe664fff1c2f00f581790",
    "jaraco.classes", "3.4.0", "py3",
)
# jaraco.classes depends on more-itertools: published too, so that pip resolves it from the test index.
MORE_ITERTOOLS_WHEEL = _wheel(
    "more-itertools==10.2.0",
    "more_itertools-10.2.0-py3-none-any.whl",
    "686b06abe565edfab151cb8fd385a05651e1fdf8f0a14191e4439283421f8684",
    "more-itertools", "10.2.0", "py3",
)

# sdists with legacy (pre-PEP 625) names.
PYYAML_SDIST = _sdist(
    "PyYAML==6.0.1",
    "PyYAML-6.0.1.tar.gz",
    "bfdf460b1736c775f2ba9f6a92bca30bc2095067b8a9d77876d1fad6cc3b4a43",
    "PyYAML", "6.0.1",
)
# zope.interface 6.4 itself was published as `zope_interface-6.4.tar.gz` and then yanked upstream
# ("wrong" name of sdist); 6.4.post2 went back to the dotted legacy name.
ZOPE_INTERFACE_SDIST = _sdist(
    "zope.interface==6.4.post2",
    "zope.interface-6.4.post2.tar.gz",
    "1c207e6f6dfd5749a26f5a5fd966602d6b824ec00d2df84a7e9a924e8933654e",
    "zope.interface", "6.4.post2",
)
DATEUTIL_SDIST = _sdist(
    "python-dateutil==2.9.0",
    "python-dateutil-2.9.0.tar.gz",
    "78e73e19c63f5b20ffa567001531680d939dc042bf7850431877645523c66709",
    "python-dateutil", "2.9.0",
)
# A `.zip` sdist (2015, built on Windows; PKG-INFO is Metadata-Version 1.1, no directory entries).
PYREADLINE_ZIP_SDIST = _sdist(
    "pyreadline==2.1",
    "pyreadline-2.1.zip",
    "4530592fc2e85b25b1a9f79664433da09237c1a270e4d78ea5aa3a2c7229e2d1",
    "pyreadline", "2.1", metadata_version="1.1",
)

WHEELS = (MARKUPSAFE_WHEEL, PYYAML_WHEEL, ZOPE_INTERFACE_WHEEL, JARACO_CLASSES_WHEEL, MORE_ITERTOOLS_WHEEL)
SDISTS = (PYYAML_SDIST, ZOPE_INTERFACE_SDIST, DATEUTIL_SDIST, PYREADLINE_ZIP_SDIST)
ALL = WHEELS + SDISTS

# pip's selection for the wheels does not depend on the machine running the tests.
_WHEEL_TARGET = [
    "--only-binary", ":all:",
    "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
    "--platform", "manylinux2014_x86_64",
]
# Options that would make pip pick other files than the configured index's.
_DROP_ENV = {"PIP_FIND_LINKS", "PIP_NO_BINARY", "PIP_ONLY_BINARY", "PIP_PREFER_BINARY", "PIP_CONSTRAINT",
             "PIP_REQUIREMENT", "PIP_NO_DEPS", "PIP_PRE", "PIP_REQUIRE_HASHES"}


class DownloadError(Exception):
    """The files could not be fetched (network, index unreachable)."""


class PinMismatch(Exception):
    """A fetched file differs from its pin."""


def cache_dir() -> Path:
    return Path(os.environ.get("PYINDEX_REAL_DISTS") or REPO / ".cache" / "real-dists")


def _is_valid(path: Path, f: RealFile) -> bool:
    return path.is_file() and support.file_sha256(path) == f.sha256


def _pip_download(args: list[str], dest: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV}
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "--no-input", "--progress-bar", "off", "-d", str(dest), *args]
    proc = support.run(cmd, env=env, timeout=600)
    if proc.returncode != 0:
        raise DownloadError(f"pip download failed:\n{support.describe(proc)[-4000:]}")


def _fetch(missing: list[RealFile], staging: Path) -> None:
    wheels = [f.requirement for f in missing if f.is_wheel]
    sdists = [f for f in missing if not f.is_wheel]
    if wheels:
        _pip_download([*_WHEEL_TARGET, *wheels], staging)
    if sdists:
        # --no-binary per project only: the build dependencies pip installs to read the
        # sdists' metadata must stay wheels (":all:" would compile Cython from source).
        no_binary = ",".join(sorted({f.dist_name for f in sdists}))
        _pip_download(["--no-binary", no_binary, *[f.requirement for f in sdists]], staging)


def ensure(files: tuple[RealFile, ...] = ALL) -> dict[str, Path]:
    """filename -> path of each pinned file in the cache, fetching what is missing."""
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    missing = [f for f in files if not _is_valid(root / f.filename, f)]
    if missing:
        with tempfile.TemporaryDirectory(dir=root, prefix=".staging-") as tmp:
            staging = Path(tmp)
            _fetch(missing, staging)
            problems = []
            for f in missing:
                got = staging / f.filename
                if not got.is_file():
                    found = sorted(p.name for p in staging.iterdir())
                    problems.append(f"{f.requirement}: expected file {f.filename}, pip saved {found}")
                elif support.file_sha256(got) != f.sha256:
                    problems.append(
                        f"{f.filename}: sha256 {support.file_sha256(got)} differs from the pinned {f.sha256}"
                    )
                else:
                    shutil.move(str(got), root / f.filename)  # same file system: atomic rename
            if problems:
                raise PinMismatch(
                    "real distribution files differ from their pins in tests/integration/real_dists.py "
                    "(upstream changed or removed them; review and update the pins):\n" + "\n".join(problems)
                )
    return {f.filename: root / f.filename for f in files}


if __name__ == "__main__":  # fetch (or check) the cache by hand: python tests/integration/real_dists.py
    for fname, path in ensure().items():
        print(support.file_sha256(path), path)
