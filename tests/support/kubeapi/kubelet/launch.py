"""The first process of every container: mounts its volumes, then becomes the program.

Run as `ip netns exec <pod> python -I -S launch.py SPEC.json` (standard library only, so it
starts in a few milliseconds). `ip netns exec` has already given the process its own mount
namespace (every mount under / a slave of the host's, so nothing done here leaks out) with
/etc/hosts and /etc/resolv.conf bound from /etc/netns/<pod>/. This script then:
1. mounts a private tmpfs on /run (which /var/run points to) and on /tmp, so mount points
   under them can be made without touching the machine's own directories (the checkout is
   bound back in place when it lives under one of them, as a clone in /tmp does);
2. bind-mounts (through /proc/self/fd, as the sources were opened before /tmp was covered)
   each volume's directory (prepared by `volumes.py` on the host) at its
   mountPath, parents first, and remounts it read-only when the mount says readOnly. A
   mountPath outside /run and /tmp must already exist on this machine (nothing is created
   in the host's file system); otherwise the container fails with a message saying so;
3. changes to workingDir and execs the setpriv prefix (`security.py`) and the program with
   exactly the environment the spec gives, so the pid the kubelet started is the program's.
Exit code 128 means the launch itself failed (the message is on stderr, in the log).
"""

import json
import os
import subprocess
import sys


def _mount(*args: str) -> None:
    proc = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise OSError(f"mount {' '.join(args)}: {proc.stderr.strip()}")


def _target(path: str) -> str:
    path = os.path.normpath(path)
    if path == "/var/run" or path.startswith("/var/run/"):
        path = "/run" + path[len("/var/run") :]
    return path


def main(spec_path: str) -> None:
    with open(spec_path) as f:
        spec = json.load(f)
    _mount("--make-rslave", "/")
    # The sources may live under /tmp: hold them open, and bind them through /proc afterwards.
    held = {m["source"]: os.open(m["source"], os.O_PATH) for m in spec["mounts"]}
    # The checkout (its .venv runs lacewing's image) may itself live under /tmp or /run, as
    # a fresh clone in /tmp does: keep it visible where it is.
    checkout = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__))))))  # fmt: skip
    covered = checkout.startswith(("/tmp/", "/run/"))
    kept = os.open(checkout, os.O_PATH) if covered else None
    _mount("-t", "tmpfs", "-o", "mode=0755,nosuid,nodev", "tmpfs", "/run")
    _mount("-t", "tmpfs", "-o", "mode=1777,nosuid,nodev", "tmpfs", "/tmp")
    if kept is not None:
        os.makedirs(checkout, exist_ok=True)
        _mount("--no-canonicalize", "--bind", f"/proc/{os.getpid()}/fd/{kept}", checkout)
    mounts = sorted(spec["mounts"], key=lambda m: _target(m["target"]).count("/"))
    for m in mounts:
        target = _target(m["target"])
        source = f"/proc/{os.getpid()}/fd/{held[m['source']]}"
        private = target in ("/run", "/tmp") or target.startswith(("/run/", "/tmp/"))
        if private:
            if os.path.isdir(source):
                os.makedirs(target, exist_ok=True)
            elif not os.path.exists(target):
                os.makedirs(os.path.dirname(target), exist_ok=True)
                open(target, "a").close()
        elif not os.path.exists(target):
            raise OSError(
                f"mountPath {m['target']} does not exist on this machine; the test bed only "
                "creates mount points under /run, /var/run and /tmp"
            )
        # (--no-canonicalize: mount would resolve /proc/PID/fd/N to its path text, which
        # names the covered place, not the held directory)
        _mount("--no-canonicalize", "--bind", source, target)
        if m.get("readOnly"):
            _mount("-o", "remount,bind,ro", target)
    os.chdir(spec.get("workingDir") or "/")
    argv = [*spec["setpriv"], *spec["argv"]]
    os.execvpe(argv[0], argv, spec["env"])


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except OSError as exc:
        print(f"testbed kubelet: cannot start the container: {exc}", file=sys.stderr, flush=True)
        sys.exit(128)
