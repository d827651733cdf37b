"""`python -m lacewing.proxy`: the proxy without the CLI around it (smaller RSS).

`lacewing proxy` comes here too (`lacewing.cli.entry`), so a `LacewingError` is printed as the
CLI prints it: `Error: ...` on one line, then the hint (`    see: URL` for a link).
"""

from __future__ import annotations

import os
import sys

from lacewing.errors import LacewingError
from lacewing.proxy.main import serve


def run_proxy() -> int:
    try:
        return serve(os.environ)
    except LacewingError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        if exc.hint:
            hint = f"    see: {exc.hint}" if exc.hint.startswith("http") else exc.hint
            print(hint, file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(run_proxy())
