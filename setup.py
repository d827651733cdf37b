"""Build of lacewing: everything is in pyproject.toml except the compiled proxy hot path.

The modules of `lacewing.proxy.build.COMPILED` (the per-request path of the proxy) are
compiled with mypyc into C extensions installed next to their `.py`, which cut the Python
work per request about in half (docs/benchmark.md, "Levers measured"). That needs a C
compiler and Python's headers at install time. Without them the install stops with one line;
`LACEWING_BUILD=pure` installs pure Python instead, which the proxy then names at start
(`proxy build: pure Python ...`) and `lacewing version` prints.
"""

from __future__ import annotations

import os
import runpy
import shutil
import sys
import sysconfig
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
BUILDS = ("mypyc", "pure")


def _hot_modules() -> list[str]:
    names = runpy.run_path(str(HERE / "src/lacewing/proxy/build.py"))["COMPILED"]
    return [f"src/{name.replace('.', '/')}.py" for name in names]


def _missing_toolchain() -> str | None:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        return f"no C compiler ({cc})"
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        return "no Python headers (Python.h)"
    return None


def _ext_modules() -> list[object]:
    build = os.environ.get("LACEWING_BUILD", "mypyc")
    if build not in BUILDS:
        sys.exit(f"lacewing: LACEWING_BUILD={build!r} is not one of {', '.join(BUILDS)}")
    if build == "pure":
        return []
    missing = _missing_toolchain()
    if missing is not None:
        sys.exit(
            f"lacewing: {missing} to compile the proxy's hot path with mypyc: install one "
            "(Debian: apt-get install gcc python3-dev) or set LACEWING_BUILD=pure for a "
            "slower pure-Python install"
        )
    from mypyc.build import mypycify

    # one shared library for all modules (they call each other natively), named for us
    return list(mypycify(["--config-file", str(HERE / "pyproject.toml"), *_hot_modules()],
                         group_name="lacewing_proxy"))  # fmt: skip


setup(ext_modules=_ext_modules())
