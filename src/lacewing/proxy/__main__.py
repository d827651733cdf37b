"""`python -m lacewing.proxy`: the proxy without the CLI around it (smaller RSS)."""

from __future__ import annotations

import os
import sys

from lacewing.errors import LacewingError
from lacewing.proxy.main import serve


def _main() -> int:
    try:
        return serve(os.environ)
    except LacewingError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(exc.hint, file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(_main())
