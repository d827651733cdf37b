"""Read a docker-archive image tarball and run a command in it as a container would, with chroot.

A docker-archive (what `buildah push docker-archive:`, `docker save` and `k3s ctr images export`
write) is a tar holding `manifest.json`: for each image its config file, its layer tars in order
and its names (RepoTags). The config says the architecture and how to run it: Entrypoint, Cmd,
Env, User, WorkingDir.

`run` unpacks the layers in order into a temporary directory, applying OCI whiteouts
(`.wh.NAME` deletes NAME from lower layers, `.wh..wh..opq` empties a directory), then runs
Entrypoint + the given arguments (or Cmd) with chroot(8) as the config's user, with only the
config's environment (the image's shell finds a bare Entrypoint on its PATH), in a fresh
network namespace (`unshare --net`: loopback only, so the command can reach nothing). A foreign
architecture runs through binfmt_misc with qemu-user-static, so the arm64 image runs on an
amd64 machine. Needs root.

    python3 image/archive.py inspect build/image/lacewing-0.1.0-arm64.tar
    python3 image/archive.py run build/image/lacewing-0.1.0-arm64.tar version
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = ["Image", "read", "run", "unpack"]

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


@dataclass(frozen=True)
class Image:
    """The first image of a docker-archive: its names, layer members and config."""

    path: Path
    repo_tags: tuple[str, ...]
    layers: tuple[str, ...]
    config: dict[str, Any]  # the image config JSON (architecture, os, config: {Entrypoint, ...})

    @property
    def architecture(self) -> str:
        return str(self.config.get("architecture", ""))

    @property
    def run_config(self) -> dict[str, Any]:
        return dict(self.config.get("config") or {})

    def layer_names(self) -> list[str]:
        """Every path in every layer (as in the layer tar, without a leading ./)."""
        names: list[str] = []
        with tarfile.open(self.path) as outer:
            for layer in self.layers:
                with tarfile.open(fileobj=outer.extractfile(layer)) as inner:
                    names.extend(m.name.removeprefix("./") for m in inner.getmembers())
        return names


def read(path: str | Path) -> Image:
    path = Path(path)
    with tarfile.open(path) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        first = manifest[0]
        config = json.load(outer.extractfile(first["Config"]))  # type: ignore[arg-type]
    return Image(path, tuple(first.get("RepoTags") or ()), tuple(first["Layers"]), config)


def unpack(image: Image, dest: Path) -> None:
    """The image's root file system in dest: its layers in order, whiteouts applied."""
    with tarfile.open(image.path) as outer:
        for layer in image.layers:
            with tarfile.open(fileobj=outer.extractfile(layer)) as inner:
                members = []
                for member in inner.getmembers():
                    name = PurePosixPath(member.name)
                    if name.name == OPAQUE:
                        _empty(dest / name.parent)
                    elif name.name.startswith(WHITEOUT):
                        _remove(dest / name.parent / name.name.removeprefix(WHITEOUT))
                    else:
                        members.append(member)
                # Our own archive, unpacked as root into our own directory: keep absolute
                # symlinks, owners and device nodes exactly as the image has them.
                inner.extractall(dest, members=members, numeric_owner=True, filter="fully_trusted")


def run(
    image: Image,
    args: list[str],
    *,
    entrypoint: list[str] | None = None,
    user: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Entrypoint + args (Cmd when args is empty) in the image; its output, not raised on.

    entrypoint and user override the config's, as `docker run --entrypoint --user` and a pod
    spec's command and runAsUser do.
    """
    cfg = image.run_config
    if entrypoint is None:
        entrypoint = list(cfg.get("Entrypoint") or [])
    argv = entrypoint + (args or list(cfg.get("Cmd") or []))
    if not argv:
        raise ValueError(f"{image.path}: the image has no Entrypoint or Cmd, and no command given")
    user = str(user or cfg.get("User") or "0:0")
    if ":" not in user:
        user = f"{user}:{user}"
    env = dict(e.split("=", 1) for e in cfg.get("Env") or [])
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    workdir = str(cfg.get("WorkingDir") or "/")
    with tempfile.TemporaryDirectory(prefix="lacewing-image-") as tmp:
        root = Path(tmp) / "rootfs"
        root.mkdir()
        unpack(image, root)
        command = [
            "unshare", "--net", "--",
            "chroot", f"--userspec={user}", str(root),
            "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in env.items()),
            "sh", "-c", 'cd "$0" && exec "$@"', workdir, *argv,
        ]  # fmt: skip
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def _empty(directory: Path) -> None:
    if directory.is_dir():
        for child in directory.iterdir():
            _remove(child)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def main(argv: list[str]) -> int:
    usage = "usage: archive.py inspect TARBALL | run TARBALL [ARG...]"
    if len(argv) < 2 or argv[0] not in ("inspect", "run"):
        print(usage, file=sys.stderr)
        return 2
    try:
        image = read(argv[1])
        if argv[0] == "inspect":
            cfg = image.run_config
            print(f"names: {' '.join(image.repo_tags)}")
            print(f"architecture: {image.architecture}, layers: {len(image.layers)}")
            print(f"entrypoint: {cfg.get('Entrypoint')}, cmd: {cfg.get('Cmd')}")
            print(f"user: {cfg.get('User')}")
            return 0
        done = run(image, argv[2:])
    except (OSError, KeyError, ValueError, tarfile.TarError, json.JSONDecodeError) as e:
        print(f"archive.py: {argv[1]}: {e}", file=sys.stderr)
        return 1
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
