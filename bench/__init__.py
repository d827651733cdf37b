"""The proxy benchmark: `python bench/proxy_bench.py` (also `make bench`).

Modules, in the order a run uses them:

- `parse`     turns wrk / h2load output and /proc files into numbers (pure, unit-tested);
- `procs`     starts every process pinned to a core, polls readiness, samples CPU and RSS,
              and kills what it started (by PID) on exit, Ctrl-C or error;
- `tlsgen`    makes the throwaway CA and certificates for the TLS rows;
- `topology`  the backend and the rows (direct, HAProxy pair, lacewing pair, TLS pairs) as a
              table of start functions;
- `runner`    the measurement plan, run step by step across all rows;
- `profile`   py-spy and strace when a target is missed: where the lacewing proxies' time goes;
- `report`    the issue's targets as data, PASS/MISS, and the markdown report.

docs/benchmark.md explains how to run it and how to read the report.
"""
