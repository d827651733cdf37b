"""The container image tarballs `make image` writes, run as a container runtime would run them.

Each architecture's docker-archive (build/image/lacewing-VERSION-ARCH.tar, the file a K3s node
imports) is read and run with image/archive.py: layers unpacked, the config's entrypoint and user,
chroot, a fresh network namespace; arm64 through qemu-user-static on an amd64 machine. A tarball
that has not been built skips its tests with the command that builds it.
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

import pytest

from image import archive
from lacewing import __version__
from lacewing.install.sidecar import proxy_init_container
from lacewing.install.values import ImageValues, Values

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parents[2]
ARCHES = ("amd64", "arm64")
NATIVE = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
QEMU = {"amd64": "qemu-x86_64", "arm64": "qemu-aarch64"}
# Compiler drivers, assemblers and linkers, by file name, wherever they are.
COMPILER = re.compile(r"(^|/)([\w.+-]*-)?(gcc|g\+\+|cc|c\+\+|clang|cpp|as|ld|rustc)(-[\d.]+)?$")


@pytest.fixture(params=ARCHES)
def image(request: pytest.FixtureRequest) -> archive.Image:
    arch = request.param
    tarball = ROOT / "build" / "image" / f"lacewing-{__version__}-{arch}.tar"
    if not tarball.exists():
        pytest.skip(f"the {arch} image is not built: `make image` builds {tarball.name}")
    if arch != NATIVE and not os.path.exists(f"/proc/sys/fs/binfmt_misc/{QEMU[arch]}"):
        pytest.skip(f"running {arch} here needs qemu-user-static (binfmt_misc {QEMU[arch]})")
    return archive.read(tarball)


def _arch(image: archive.Image) -> str:
    return image.path.name.removesuffix(".tar").rsplit("-", 1)[1]


def test_archive_is_the_image_install_renders_for_its_architecture(image: archive.Image) -> None:
    assert image.repo_tags == (ImageValues().ref,)
    assert (image.config["os"], image.architecture) == ("linux", _arch(image))
    cfg = image.run_config
    assert cfg["Entrypoint"] == ["lacewing"]
    uid = Values().proxy.uid
    assert cfg["User"] == f"{uid}:{uid}"


def test_image_holds_no_compiler_and_no_package_manager(image: archive.Image) -> None:
    names = image.layer_names()
    assert any(n.endswith("usr/bin/python3") for n in names)
    found = [n for n in names if COMPILER.search(n) or n.endswith(("bin/apt", "bin/apt-get"))]
    assert found == []


def test_lacewing_version_runs_in_the_image(image: archive.Image) -> None:
    done = archive.run(image, ["version"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"Client version: {__version__}",
        "Server version: unavailable",
        # one wheel serves both architectures, so the image is the pure-Python build
        "Proxy build: pure Python (hot path not compiled: slower; see docs/benchmark.md)",
    ]
    who = archive.run(image, ["-c", "id -u; id -g"], entrypoint=["sh"])
    assert who.stdout.split() == [str(Values().proxy.uid)] * 2, who.stderr


def test_proxy_init_with_the_rendered_args_in_the_image(image: archive.Image) -> None:
    """The init container's exact args, as root, write the nat rules. Only where the image's
    architecture is this machine's: qemu-user cannot emulate netfilter's netlink and sockopt
    calls (even `iptables-nft --version` opens a netlink socket), so an emulated image only shows
    that its proxy-init starts, iptables-legacy runs and iptables-nft is installed.
    """
    args = proxy_init_container(Values())["args"]
    if _arch(image) != NATIVE:
        script = "lacewing proxy-init --help && iptables-legacy --version"
        script += ' && test -x "$(command -v iptables-nft)" && readlink -f "$(command -v iptables)"'
        done = archive.run(image, ["-c", script], entrypoint=["sh"], user="0:0")
        assert done.returncode == 0, done.stderr
        assert "--incoming-proxy-port" in done.stdout
        assert "iptables v1.8.9 (legacy)" in done.stdout
        assert done.stdout.splitlines()[-1] == "/usr/sbin/xtables-nft-multi"  # nft by default
        return
    script = 'lacewing "$@" && iptables-save -t nat'
    done = archive.run(image, ["sh", *args], entrypoint=["sh", "-c", script], user="0:0")
    assert done.returncode == 0, done.stderr
    rules = [line for line in done.stdout.splitlines() if line.startswith("-A ")]
    assert any("-p tcp -m multiport --dports 4190,4191" in r and "-j RETURN" in r for r in rules)
    assert any("-m owner --uid-owner 2102" in r and "-j RETURN" in r for r in rules)
    assert any("-j REDIRECT --to-ports 4140" in r for r in rules)
    assert any("-j REDIRECT --to-ports 4143" in r for r in rules)
