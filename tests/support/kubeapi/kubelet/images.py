"""Images are programs on this machine: a small table from image reference to entrypoint.

There is no container runtime and no registry here, so "pulling" an image means looking its
repository up in `IMAGES` (the tag is kept for the status, not interpreted). An entry gives
what a Dockerfile would: the ENTRYPOINT, the CMD and the ENV. `argv(image, container)` then
applies Kubernetes' rule: `command` replaces the ENTRYPOINT and drops the CMD, `args`
replaces the CMD; `$(VAR)` references were already expanded by `envs.py`. A program name in
`BINARIES` (`lacewing`, `python`) maps to the checkout's own copy, so the lacewing image
runs `.venv/bin/lacewing` from this tree with the spec's args. An image that is not in the
table yields None, which the pod runner reports as ErrImagePull, then ImagePullBackOff, as a
node whose registry does not have the image would.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["IMAGES", "Image", "argv", "resolve", "split_reference"]

REPO_ROOT = Path(__file__).resolve().parents[4]
_BIN = Path(sys.executable).parent
BINARIES: dict[str, str] = {
    "lacewing": str(_BIN / "lacewing"),
    "python": sys.executable,
    "python3": sys.executable,
}


@dataclass(frozen=True)
class Image:
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)


_PATH = f"{_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PY_ENV = {"PATH": _PATH, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}


def _app(name: str, *cmd: str) -> Image:
    return Image(("python", "-m", "tests.support.kubeapi.kubelet.apps", name), cmd, _PY_ENV)


def _demo(module: str) -> Image:
    return Image(("python", "-m", f"lacewing.local.demo.{module}"), (), _PY_ENV)


# repository (without tag or digest) -> image
IMAGES: dict[str, Image] = {
    "ghcr.io/lacewing-mesh/lacewing": Image(("lacewing",), ("--help",), _PY_ENV),
    # like busybox: no entrypoint, `sh` by default; the machine's own sh, cat, sleep...
    "testbed.local/busybox": Image((), ("sh",), _PY_ENV),
    "testbed.local/echo": _app("echo", "--port", "8080"),
    "testbed.local/client": _app("client", "--port", "8081"),
    "testbed.local/demo-web": _demo("web"),
    "testbed.local/demo-emoji": _demo("emoji"),
    "testbed.local/demo-voting": _demo("voting"),
    "testbed.local/demo-bot": _demo("bot"),
}


def split_reference(ref: str) -> tuple[str, str]:
    """`repo[:tag][@digest]` -> (repo, tag or digest); a registry port is not a tag."""
    repo, _, digest = ref.partition("@")
    slash = repo.rfind("/")
    colon = repo.rfind(":")
    if colon > slash:
        return repo[:colon], repo[colon + 1 :]
    return repo, digest or "latest"


def resolve(ref: str) -> Image | None:
    return IMAGES.get(split_reference(ref)[0])


def argv(image: Image, container: Mapping[str, Any]) -> list[str]:
    command: Sequence[str] | None = container.get("command")
    args: Sequence[str] | None = container.get("args")
    if command:
        out = [*command, *(args or ())]
    else:
        out = [*image.entrypoint, *(image.cmd if args is None else args)]
    if not out:
        return out
    return [BINARIES.get(out[0], out[0]), *out[1:]]
