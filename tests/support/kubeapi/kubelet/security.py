"""securityContext -> the `setpriv` command line that starts a container's process (pure).

The pod's securityContext is the default for every container's own. What is honoured:
- runAsUser / runAsGroup (else the image's user, as a runtime would), supplementalGroups and
  fsGroup as supplementary groups; runAsNonRoot with uid 0 refuses to start the container
  (CreateContainerConfigError), as the kubelet does;
- capabilities: containerd's default set, minus `drop` (ALL clears it), plus `add`, becomes the
  bounding set; `privileged` keeps every capability. A uid-0 process gets the bounding set
  as its permitted and effective sets when it execs (that is how root works), so proxy-init
  (uid 0, add NET_ADMIN and NET_RAW, drop ALL) runs with exactly those two. A non-root
  process ends up with none, as under containerd, which sets no ambient capabilities;
- allowPrivilegeEscalation: false is `--no-new-privs`.
readOnlyRootFilesystem, seccompProfile and SELinux/AppArmor options are not emulated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["DEFAULT_CAPS", "SecurityError", "capabilities", "setpriv_argv"]

# containerd's default capabilities for an unprivileged container
DEFAULT_CAPS = (
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
)


class SecurityError(Exception):
    """The container cannot be started with this securityContext."""


def _merged(pod_sc: Mapping[str, Any], container_sc: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile")
    return {**{k: pod_sc[k] for k in keys if k in pod_sc}, **container_sc}


def capabilities(sc: Mapping[str, Any]) -> list[str] | None:
    """The bounding set, upper case without CAP_; None means all (privileged)."""
    if sc.get("privileged"):
        return None
    caps = sc.get("capabilities") or {}
    drop = {c.upper().removeprefix("CAP_") for c in caps.get("drop") or []}
    kept = set() if "ALL" in drop else {c for c in DEFAULT_CAPS if c not in drop}
    kept |= {c.upper().removeprefix("CAP_") for c in caps.get("add") or []}
    return sorted(kept)


def setpriv_argv(
    pod_spec: Mapping[str, Any], container: Mapping[str, Any], image_user: tuple[int, int]
) -> tuple[list[str], int]:
    """(the setpriv prefix, the uid) for the container; raise SecurityError if it may not run."""
    pod_sc = pod_spec.get("securityContext") or {}
    sc = _merged(pod_sc, container.get("securityContext") or {})
    uid = int(sc.get("runAsUser", image_user[0]))
    gid = int(sc.get("runAsGroup", image_user[1] if "runAsUser" not in sc else 0))
    if sc.get("runAsNonRoot") and uid == 0:
        raise SecurityError(
            "container has runAsNonRoot and image will run as root "
            f'(pod: "{container.get("name")}")'
        )
    groups = [int(g) for g in pod_sc.get("supplementalGroups") or []]
    if "fsGroup" in pod_sc:
        groups.append(int(pod_sc["fsGroup"]))
    argv = ["setpriv", f"--reuid={uid}", f"--regid={gid}"]
    argv.append(f"--groups={','.join(map(str, groups))}" if groups else "--clear-groups")
    caps = capabilities(sc)
    if caps is not None:
        spec = ",".join(["-all", *(f"+{c.lower()}" for c in caps)])
        argv += [f"--bounding-set={spec}", "--inh-caps=-all"]
    if sc.get("allowPrivilegeEscalation") is False:
        argv.append("--no-new-privs")
    return [*argv, "--"], uid
