"""What every command receives besides its own options.

A command is `run(options, ctx, out)`: `options` is the command's own frozen dataclass,
`ctx` carries the global flags (which cluster, which control-plane namespace), and `out` is
where it writes. Commands never exit and never touch module-level state; the entry point in
`main.py` turns their return value into the exit status.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import TextIO

DEFAULT_NAMESPACE = "lacewing"


@dataclass(frozen=True)
class GlobalOptions:
    """The flags that every command accepts."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str = DEFAULT_NAMESPACE


@dataclass
class Output:
    """Where a command writes: `out` for results, `err` for diagnostics."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)

    def line(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def warn(self, text: str) -> None:
        self.err.write(text + "\n")

    @property
    def is_terminal(self) -> bool:
        isatty = getattr(self.out, "isatty", None)
        return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"
