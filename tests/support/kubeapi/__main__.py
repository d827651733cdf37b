"""`python -m tests.support.kubeapi serve --kubeconfig PATH`: run the emulator until Ctrl-C.

With `--kubelet SECONDS` the kubelet helper runs every SECONDS: Deployments get ReplicaSets
and Pods, and Pods are marked Ready, so a hand-run `lacewing check` can watch the control
plane become healthy as on a real cluster.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from pathlib import Path

from tests.support.kubeapi.testbed import KubeAPI, start_kube_api


def _kubelet_loop(api: KubeAPI, every: float, stop: threading.Event) -> None:
    while not stop.wait(every):
        api.kubelet.sync()
        api.kubelet.mark_ready()


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
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="run the kubelet helper every SECONDS: pods for Deployments, marked Ready (0: off)",
    )
    args = parser.parse_args(argv)
    if args.kubelet < 0:
        parser.error(f"--kubelet {args.kubelet} must be 0 (off) or a number of seconds")
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port} is not a TCP port (0-65535)")
    try:
        args.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        parser.error(f"cannot write the kubeconfig at {args.kubeconfig}: {exc.strerror}")
    with tempfile.TemporaryDirectory(prefix="kubeapi-") as tmp:
        try:
            api = start_kube_api(Path(tmp), args.port, args.kubeconfig.resolve())
        except OSError as exc:
            print(f"error: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}", file=sys.stderr)
            print("hint: pick another --port, or 0 for any free one", file=sys.stderr)
            return 1
        try:
            print(
                f"Kubernetes API emulator serving on {api.url}; kubeconfig {api.kubeconfig} "
                "(context testbed); Ctrl-C stops it",
                flush=True,
            )
            stop = threading.Event()
            if args.kubelet:
                threading.Thread(
                    target=_kubelet_loop, args=(api, args.kubelet, stop), name="kubelet",
                    daemon=True,
                ).start()  # fmt: skip
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            api.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
