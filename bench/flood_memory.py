"""Where a proxy's memory goes in a connection flood, and whether it comes back (bounded).

    python bench/flood_memory.py [--connections 10000] [--hold 5] [--rounds 2]
                                 [--tracemalloc] [--haproxy]

The fault suite's flood (10,000 idle connections held 5 s) left a proxy at 125 MiB after
starting at 41.5 MiB. This asks the questions that tell a leak from allocator retention, on
one plaintext proxy on loopback (inbound listener, fixed destination: idle connections sit
in protocol detection, as they do in the cluster):

- RSS before, while the flood is held, and 3 s after it closed, for `--rounds` floods: a
  leak grows again with every flood, retention is paid once and reused;
- after each flood: live objects the garbage collector tracks (`gc.get_objects()`) and, with
  `--tracemalloc`, the bytes Python has allocated and not freed: if these return to the
  baseline, no per-connection object is kept;
- at the end `malloc_trim(0)` (glibc, via ctypes) inside the proxy: the RSS it gives back was
  freed memory that glibc's heap kept.

The proxy runs as `python bench/flood_memory.py --serve` (the real `lacewing.proxy` serve,
plus a SIGUSR1 handler that appends one JSON line of the numbers above to a file, and
SIGUSR2 that trims first). With `--haproxy` the same floods hit HAProxy (HTTP mode) in the
same run (the reference's RSS, for the ratio). Prints one table; every process it starts
is stopped by PID, and the flood's sockets are closed, when it ends or fails.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _rss_kib(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _raise_nofile(n: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, n)), hard))


# -- inside the proxy ------------------------------------------------------------------------


def _serve(report: Path) -> int:
    import tracemalloc

    from lacewing.proxy.main import serve

    libc = ctypes.CDLL("libc.so.6")

    def sample(trim: bool) -> None:
        gc.collect()
        before = _rss_kib()
        if trim:
            libc.malloc_trim(0)
        types = Counter(type(o).__name__ for o in gc.get_objects())
        line: dict[str, Any] = {
            "rss_kib": _rss_kib(),
            "rss_before_trim_kib": before,
            "gc_objects": sum(types.values()),
            "top_types": types.most_common(8),
        }
        if tracemalloc.is_tracing():
            line["traced_kib"] = tracemalloc.get_traced_memory()[0] // 1024
        with report.open("a") as out:
            out.write(json.dumps(line) + "\n")

    signal.signal(signal.SIGUSR1, lambda *_: sample(False))
    signal.signal(signal.SIGUSR2, lambda *_: sample(True))
    _raise_nofile(65536)
    return serve(os.environ)


def _app(port: int) -> int:
    """The app behind the proxy: reads each connection to EOF, then closes it."""
    import asyncio

    async def conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            pass
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(conn, "127.0.0.1", port, backlog=4096)
        await server.serve_forever()

    _raise_nofile(65536)
    asyncio.run(main())
    return 0


# -- the driver ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the process under test exited ({proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listened on 127.0.0.1:{port} within {seconds} s")


def _flood(port: int, n: int, hold: float) -> tuple[int, int]:
    """Open n idle connections, hold them, close them; (opened, peer-closed)."""
    socks = []
    try:
        for _ in range(n):
            try:
                socks.append(socket.create_connection(("127.0.0.1", port), timeout=3))
            except OSError:
                break
        time.sleep(hold)
        closed = 0
        for s in socks:
            s.setblocking(False)
            try:
                closed += s.recv(1, socket.MSG_PEEK) == b""
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
        return len(socks), closed
    finally:
        for s in socks:
            s.close()


class _Proxy:
    def __init__(self, tracing: bool) -> None:
        self.port, self.admin = _free_port(), _free_port()
        app_port = _free_port()
        self.app = subprocess.Popen([sys.executable, __file__, "--app", str(app_port)], cwd=ROOT)
        _wait_listening(app_port, self.app)
        self.report = Path(tempfile.mkdtemp(prefix="flood-mem-")) / "samples.jsonl"
        env = {
            **os.environ,
            "LACEWING_PROXY_INBOUND_LISTEN_ADDR": f"127.0.0.1:{self.port}",
            "LACEWING_PROXY_OUTBOUND_LISTEN_ADDR": f"127.0.0.1:{_free_port()}",
            "LACEWING_PROXY_ADMIN_LISTEN_ADDR": f"127.0.0.1:{self.admin}",
            "LACEWING_PROXY_INBOUND_FIXED_DST": f"127.0.0.1:{app_port}",
            "LACEWING_PROXY_LOG_LEVEL": "warn",
        }
        if tracing:
            env["PYTHONTRACEMALLOC"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(self.report)], env=env, cwd=ROOT
        )
        _wait_listening(self.port, self.proc)
        time.sleep(1)

    def sample(self, trim: bool = False) -> dict[str, Any]:
        lines = self.report.read_text().splitlines() if self.report.exists() else []
        os.kill(self.proc.pid, signal.SIGUSR2 if trim else signal.SIGUSR1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = self.report.read_text().splitlines() if self.report.exists() else []
            if len(now) > len(lines):
                sample: dict[str, Any] = json.loads(now[-1])
                return sample
            time.sleep(0.1)
        raise SystemExit("the proxy did not answer SIGUSR1 within 30 s")

    def stop(self) -> None:
        for proc in (self.proc, self.app):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        shutil.rmtree(self.report.parent, ignore_errors=True)


def _haproxy(args: argparse.Namespace) -> list[int] | None:
    binary = shutil.which("haproxy")
    if binary is None:
        print("haproxy not found: apt-get install haproxy (the reference is left out)")
        return None
    port = _free_port()
    workdir = Path(tempfile.mkdtemp(prefix="flood-haproxy-"))
    config = workdir / "haproxy.cfg"
    # HTTP mode: an idle connection waits for its request head, as the proxy's detection
    # does (in TCP mode HAProxy would dial the server for each). HAProxy reserves two fds per
    # connection, so under this machine's hard limit (20,000) it takes 9,850 at most; the
    # rest wait in the listen backlog and the table says how many it held.
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    maxconn = min(args.connections + 50, (nofile - 300) // 2)
    print(f"haproxy maxconn {maxconn} (fd limit {nofile})")
    config.write_text(
        f"global\n  maxconn {maxconn}\n  ulimit-n {nofile}\n"
        "defaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n"
        "  timeout server 60s\n  timeout http-request 60s\n"
        f"frontend f\n  bind 127.0.0.1:{port}\n  default_backend b\n"
        "backend b\n  server s 127.0.0.1:9\n"
    )
    proc = subprocess.Popen(
        [binary, "-db", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_listening(port, proc)
        time.sleep(1)
        rss = [_rss_kib(proc.pid)]
        for _ in range(args.rounds):
            _flood_sampled(port, args, lambda: rss.append(_rss_kib(proc.pid)))
            time.sleep(3)
            rss.append(_rss_kib(proc.pid))
        return rss
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def _flood_sampled(port: int, args: argparse.Namespace, during: Any) -> tuple[int, int]:
    """A flood whose hold is split so `during()` samples while the connections are open."""
    import threading

    timer = threading.Timer(args.hold * 0.8 + 0.05 * args.connections / 1000, during)
    timer.start()
    try:
        return _flood(port, args.connections, args.hold + 0.05 * args.connections / 1000)
    finally:
        timer.cancel()


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--app", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--hold", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--settle", type=float, default=9.0, help="seconds, after the +3 s")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--haproxy", action="store_true")
    args = parser.parse_args(argv)
    if args.serve:
        return _serve(args.serve)
    if args.app:
        return _app(args.app)
    _raise_nofile(2 * args.connections + 512)  # (HAProxy needs two per connection)
    proxy = _Proxy(args.tracemalloc)
    rows: list[tuple[str, dict[str, Any]]] = []
    try:
        rows.append(("before", proxy.sample()))
        for round_ in range(1, args.rounds + 1):
            held: dict[str, Any] = {}
            opened, closed = _flood_sampled(
                proxy.port, args, lambda h=held: h.update(rss_kib=_rss_kib(proxy.proc.pid))
            )
            rows.append((f"flood {round_} held ({opened} open, {closed} closed)", held))
            time.sleep(3)
            rows.append((f"flood {round_} closed +3 s", proxy.sample()))
            time.sleep(args.settle)
            rows.append((f"flood {round_} closed +{3 + args.settle:.0f} s", proxy.sample()))
        rows.append(("malloc_trim(0)", proxy.sample(trim=True)))
    finally:
        proxy.stop()
    print(f"{'lacewing proxy':44} {'RSS MiB':>8} {'gc objects':>11} {'traced MiB':>11}")
    for name, row in rows:
        traced = _mib(row["traced_kib"]) if "traced_kib" in row else "-"
        objects = str(row.get("gc_objects", "-"))
        print(f"{name:44} {_mib(row['rss_kib']):>8} {objects:>11} {traced:>11}")
    print("types after the last flood:", rows[-2][1].get("top_types"))
    if args.haproxy:
        rss = _haproxy(args)
        if rss:
            print("haproxy RSS MiB (before, then held / closed +3 s per flood):", *map(_mib, rss))
    return 0


if __name__ == "__main__":
    sys.exit(main())
