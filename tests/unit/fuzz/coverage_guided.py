"""Coverage-guided runs of the fuzz properties: atheris (libFuzzer) driving hypothesis.

Every `@given` property in `tests/unit/fuzz/test_*.py` is also a libFuzzer target: its
`.hypothesis.fuzz_one_input` turns the bytes libFuzzer mutates into one example of the
property, and `atheris.instrument_imports` instruments lacewing's modules as the test module
imports them, so libFuzzer keeps the inputs that reach new branches of our parsers (the
random search of plain hypothesis does not). The properties, and so what counts as a
failure, are the same as under pytest.

    python -m tests.unit.fuzz.coverage_guided [--seconds N] [--artifacts DIR] [TARGET ...]

A TARGET is `module:function` (e.g. `test_identity_fuzz:test_any_token_review_answer_is_a_verdict`),
the default every property. Each runs in its own process (libFuzzer ends the process when
it is done) for N seconds. The exit status is 1 if any target failed: libFuzzer writes the
input to DIR and hypothesis prints the example, which becomes an `@example` beside the
property. `make fuzz` runs this after the long hypothesis profile; `make test` runs two
targets for a few seconds (tests/unit/fuzz/test_coverage_guided.py).
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
PACKAGE = "tests.unit.fuzz"
_DONE = "coverage-guided inputs:"


def targets() -> list[str]:
    """Every hypothesis property of the fuzz modules, as `module:function`."""
    found = []
    for path in sorted(HERE.glob("test_*.py")):
        module = importlib.import_module(f"{PACKAGE}.{path.stem}")
        for name, value in vars(module).items():
            if name.startswith("test_") and hasattr(value, "hypothesis"):
                found.append(f"{path.stem}:{name}")
    return found


def fuzz_one(target: str, seconds: float, libfuzzer_args: list[str]) -> None:
    """Run one target in this process for `seconds`, then end the process.

    The time limit is ours, not libFuzzer's `-max_total_time`: that one ends the run from
    libFuzzer's interrupt path, after which this interpreter hung in its exit (seen with
    atheris 3.0.0 on CPython 3.11). Checking a deadline per input and leaving with
    `os._exit` ends cleanly.
    """
    import atheris
    import tests.unit.fuzz.conftest  # noqa: F401  (the settings profile: no deadline)

    module_name, _, function = target.partition(":")
    with atheris.instrument_imports(include=["lacewing"]):
        module = importlib.import_module(f"{PACKAGE}.{module_name}")
    one_input = getattr(module, function).hypothesis.fuzz_one_input
    deadline = time.monotonic() + seconds
    count = 0

    def fuzz(data: bytes) -> None:
        nonlocal count
        if time.monotonic() > deadline:
            print(f"{_DONE} {count}", flush=True)
            os._exit(0)
        count += 1
        one_input(data)

    atheris.Setup([sys.argv[0], *libfuzzer_args], fuzz)
    atheris.Fuzz()


def run(names: list[str], seconds: int, artifacts: Path) -> int:
    artifacts.mkdir(parents=True, exist_ok=True)
    failed = []
    for target in names:
        command = [
            sys.executable,
            "-m",
            f"{PACKAGE}.coverage_guided",
            "--one",
            target,
            "--seconds",
            str(seconds),
            f"-artifact_prefix={artifacts}/",
        ]
        done = subprocess.run(
            command,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # atheris prints the uncaught exception on stdout
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
            timeout=seconds + 120,  # imports and instrumenting; a hang past this is a failure
        )
        runs = next(
            (line.split()[-1] for line in done.stdout.splitlines() if line.startswith(_DONE)),
            "?",
        )
        if done.returncode != 0:
            failed.append(target)
            start = done.stdout.find("=== Uncaught Python exception")  # the property's failure
            shown = done.stdout[start:][:4000] if start >= 0 else done.stdout[-4000:]
            print(f"FAILED {target} (exit {done.returncode})\n{shown}", flush=True)
        else:
            print(f"ok     {target}: {runs} inputs in {seconds} s", flush=True)
    print(f"{len(names) - len(failed)} of {len(names)} targets ran clean", flush=True)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", nargs="*", help="module:function (default: every property)")
    parser.add_argument("--seconds", type=int, default=30, help="per target")
    parser.add_argument("--artifacts", type=Path, default=ROOT / "build" / "fuzz")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)
    if args.one:
        fuzz_one(args.one, args.seconds, rest)  # the rest are libFuzzer's (-flag=value)
        return 0
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("atheris is not installed: `make fuzz` installs it (pip install atheris)")
        return 2
    return run(args.target or targets(), args.seconds, args.artifacts)


if __name__ == "__main__":
    sys.exit(main())
