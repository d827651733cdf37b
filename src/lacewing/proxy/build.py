"""Which build of the proxy's hot path this install runs: compiled with mypyc, or pure Python.

`setup.py` compiles the modules in `COMPILED` with mypyc when the package is installed (each
becomes a C extension next to its `.py`, which Python's import system prefers), unless
`LACEWING_BUILD=pure` asked for a pure-Python install; without a C compiler the install stops
with one line saying so (docs/benchmark.md, "Levers measured": the compiled modules halve the
Python work per request). This module reads back what was installed, from where each module
would be imported, without importing any of them (it imports nothing of ours, so setup.py can
load it by path): the proxy logs it at start and `lacewing version` prints it, so a slower
pure-Python install is never silent.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from dataclasses import dataclass

__all__ = ["COMPILED", "Build", "current"]

# The per-request path of both protocols (found with bench/h2_loop.py and bench/route_cost.py).
# (not side.py: tests replace `Side.pick` on an instance, which a compiled class forbids)
COMPILED: tuple[str, ...] = (
    "lacewing.proxy.balance.ewma",
    "lacewing.proxy.balance.p2c",
    "lacewing.proxy.exchange",
    "lacewing.proxy.h2.client",
    "lacewing.proxy.h2.codec",
    "lacewing.proxy.h2.frames",
    "lacewing.proxy.h2.hblock",
    "lacewing.proxy.h2.headers",
    "lacewing.proxy.h2.peer",
    "lacewing.proxy.h2.pool",
    "lacewing.proxy.h2.routing",
    "lacewing.proxy.h2.server",
    "lacewing.proxy.h2.stream",
    "lacewing.proxy.http1.exchange",
    "lacewing.proxy.http1.head",
    "lacewing.proxy.http1.routing",
    "lacewing.proxy.http1.server",
    "lacewing.proxy.http1.upstream",
    "lacewing.proxy.metrics.proxy",
    "lacewing.proxy.metrics.routes",
    "lacewing.proxy.routes.budget",
    "lacewing.proxy.routes.headers",
    "lacewing.proxy.routes.router",
    "lacewing.proxy.routes.steps",
    "lacewing.proxy.transport.pool",
)


@dataclass(frozen=True)
class Build:
    compiled: tuple[str, ...]  # modules of COMPILED that import as C extensions
    pure: tuple[str, ...]  # the others

    @property
    def name(self) -> str:
        """`mypyc`, `pure-python` or `mixed` (a metric label, a log word)."""
        if not self.pure:
            return "mypyc"
        return "pure-python" if not self.compiled else "mixed"

    def describe(self) -> str:
        if not self.pure:
            return f"mypyc ({len(self.compiled)} hot-path modules compiled)"
        if not self.compiled:
            return "pure Python (hot path not compiled: slower; see docs/benchmark.md)"
        return f"mixed: {len(self.compiled)} modules compiled, not {', '.join(self.pure)}"


def _is_extension(module: str) -> bool:
    spec = importlib.util.find_spec(module)
    origin = spec.origin if spec is not None else None
    return origin is not None and origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def current() -> Build:
    """Where each module of COMPILED would be imported from (finding a module imports its
    parent packages, not the module)."""
    compiled = tuple(m for m in COMPILED if _is_extension(m))
    return Build(compiled, tuple(m for m in COMPILED if m not in compiled))
