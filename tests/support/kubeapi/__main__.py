"""`python -m tests.support.kubeapi serve --kubeconfig PATH`: run the emulator until Ctrl-C.

With `--kubelet SECONDS` the fake kubelet runs every SECONDS: Deployments get ReplicaSets
and Pods, and Pods are marked Ready without anything running. With `--kubelet run` (root)
the real one runs (`kubelet.node.NodeRuntime`): every Pod's containers run as processes in
network namespaces, Services route, webhooks are called in their pods, so the README's
Kubernetes path can be walked by hand; Ctrl-C stops every pod and removes the namespaces.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

from tests.support.kubeapi.kubelet.node import NodeRuntime
from tests.support.kubeapi.testbed import KubeAPI, start_kube_api


def _kubelet_loop(api: KubeAPI, every: float, stop: threading.Event) -> None:
    while not stop.wait(every):
        api.kubelet.sync()
        api.kubelet.mark_ready()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.kubeapi")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve an empty emulated cluster until Ctrl-C")
    serve.add_argument(
        "--kubeconfig", type=Path, required=True, help="where to write the kubeconfig"
    )
    serve.add_argument(
        "--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)"
    )
    serve.add_argument(
        "--kubelet",
        default="0",
        metavar="SECONDS|run",
        help="SECONDS: every SECONDS make pods for Deployments and mark them Ready (0: off); "
        "run: really run every pod in network namespaces (root)",
    )
    args = parser.parse_args(argv)
    run_pods = args.kubelet == "run"
    every = 0.0
    if not run_pods:
        try:
            every = float(args.kubelet)
        except ValueError:
            every = -1.0
        if every < 0:
            parser.error(f"--kubelet {args.kubelet} must be 0 (off), a number of seconds or run")
    if run_pods and os.geteuid() != 0:
        parser.error("--kubelet run needs root (network namespaces, iptables, mounts)")
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port} is not a TCP port (0-65535)")
    try:
        args.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        parser.error(f"cannot write the kubeconfig at {args.kubeconfig}: {exc.strerror}")
    signal.signal(signal.SIGTERM, _interrupt)  # stop as on Ctrl-C, so pods are cleaned up
    with tempfile.TemporaryDirectory(prefix="kubeapi-") as tmp:
        try:
            api = start_kube_api(Path(tmp), args.port, args.kubeconfig.resolve())
        except OSError as exc:
            print(f"error: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}", file=sys.stderr)
            print("hint: pick another --port, or 0 for any free one", file=sys.stderr)
            return 1
        node: NodeRuntime | None = None
        try:
            print(
                f"Kubernetes API emulator serving on {api.url}; kubeconfig {api.kubeconfig} "
                "(context testbed); Ctrl-C stops it",
                flush=True,
            )
            stop = threading.Event()
            if run_pods:
                node = NodeRuntime(api, Path(tmp) / "node").start()
                print(f"kubelet: running pods in network namespaces {node.prefix}*", flush=True)
            elif every:
                threading.Thread(
                    target=_kubelet_loop, args=(api, every, stop), name="kubelet",
                    daemon=True,
                ).start()  # fmt: skip
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            if node is not None:
                node.stop()
            api.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
