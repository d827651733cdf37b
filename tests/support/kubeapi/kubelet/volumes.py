"""A pod's volumes as directories on the host, and each container's mounts of them.

`prepare(pod, root, api)` writes every volume of the pod under `root/<volume name>/`:
- `emptyDir`: an empty directory (mode 0777, as the kubelet makes it); shared by every
  container that mounts it, as in a pod;
- `secret` / `configMap`: one file per key (or per `items` entry, at its `path`), mode from
  `defaultMode` / the item's `mode` (0644 by default); a missing object fails the pod's
  start (the container waits with CreateContainerConfigError) unless `optional`;
- `projected`: its sources merged into one directory: `serviceAccountToken` is minted by
  the test bed's TokenRequest for the pod's service account with the source's `audience`
  and `expirationSeconds` (so the API server's TokenReview accepts it for that audience),
  plus `secret`, `configMap` and `downwardAPI` sources;
- `downwardAPI`: the fieldRef items.
Unless `automountServiceAccountToken` is false (pod or ServiceAccount), the pod also gets
the directory a real API server's ServiceAccount admission would add as `kube-api-access`:
`token` (a TokenRequest token with the API server's audience), `ca.crt` and `namespace`,
mounted in every container at /var/run/secrets/kubernetes.io/serviceaccount.
`mounts(container, volumes)` gives the launcher's (source, target, readOnly) list; subPath
mounts and hostPath volumes are refused with a message (nothing here needs them).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tests.support.kubeapi.kubelet.envs import EnvError, Lookup, field_value

__all__ = ["SA_MOUNT", "VolumeError", "mounts", "prepare"]

SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
SA_VOLUME = "kube-api-access"
# (namespace, service account, audiences, expirationSeconds) -> the token
MintToken = Callable[[str, str, list[str], int], str]


class VolumeError(Exception):
    """A volume cannot be made (a missing Secret or ConfigMap, an unsupported kind)."""


def _write(directory: Path, rel: str, data: bytes, mode: int) -> None:
    path = directory / rel
    if ".." in Path(rel).parts or Path(rel).is_absolute():
        raise VolumeError(f"invalid item path {rel!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)


def _keyed(
    directory: Path, kind: str, source: Mapping[str, Any], lookup: Lookup, name_field: str
) -> None:
    name = source.get(name_field) or source.get("name", "")
    obj = lookup(kind, name)
    if obj is None:
        if source.get("optional"):
            return
        raise VolumeError(f'{kind.lower()} "{name}" not found')
    if kind == "Secret":
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        data.update({k: str(v).encode() for k, v in (obj.get("stringData") or {}).items()})
    else:
        data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    mode = int(source.get("defaultMode", 0o644))
    items = source.get("items")
    if not items:
        for key, value in data.items():
            _write(directory, key, value, mode)
        return
    for item in items:
        if item["key"] not in data:
            if source.get("optional"):
                continue
            raise VolumeError(f'key "{item["key"]}" not found in {kind.lower()} "{name}"')
        _write(directory, item["path"], data[item["key"]], int(item.get("mode", mode)))


def _downward(
    directory: Path, pod: Mapping[str, Any], items: list[dict[str, Any]], mode: int
) -> None:
    for item in items:
        if "fieldRef" not in item:
            raise VolumeError("downwardAPI: only fieldRef items are supported by the test bed")
        try:
            value = field_value(pod, item["fieldRef"]["fieldPath"])
        except EnvError as exc:
            raise VolumeError(str(exc)) from None
        _write(directory, item["path"], value.encode(), int(item.get("mode", mode)))


def _projected(
    directory: Path,
    pod: Mapping[str, Any],
    source: Mapping[str, Any],
    lookup: Lookup,
    mint: MintToken,
    api_audience: str,
) -> None:
    meta, spec = pod["metadata"], pod.get("spec") or {}
    mode = int(source.get("defaultMode", 0o644))
    for part in source.get("sources") or []:
        if "serviceAccountToken" in part:
            sat = part["serviceAccountToken"]
            audience = sat.get("audience") or api_audience
            seconds = int(sat.get("expirationSeconds", 3600))
            token = mint(
                meta["namespace"], spec.get("serviceAccountName") or "default", [audience], seconds
            )
            _write(directory, sat["path"], token.encode(), mode)
        elif "secret" in part:
            _keyed(directory, "Secret", {"defaultMode": mode, **part["secret"]}, lookup, "name")
        elif "configMap" in part:
            _keyed(
                directory, "ConfigMap", {"defaultMode": mode, **part["configMap"]}, lookup, "name"
            )
        elif "downwardAPI" in part:
            _downward(directory, pod, part["downwardAPI"].get("items") or [], mode)
        else:
            raise VolumeError(f"projected source {sorted(part)} is not supported by the test bed")


def prepare(
    pod: Mapping[str, Any],
    root: Path,
    lookup: Lookup,
    mint: MintToken,
    ca_pem: bytes,
    api_audience: str,
    automount: bool,
) -> dict[str, Path]:
    """Write the pod's volumes under `root`; volume name -> its directory."""
    out: dict[str, Path] = {}
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        directory = root / volume["name"]
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o755)
        if "emptyDir" in volume:
            directory.chmod(0o777)
        elif "secret" in volume:
            _keyed(directory, "Secret", volume["secret"], lookup, "secretName")
        elif "configMap" in volume:
            _keyed(directory, "ConfigMap", volume["configMap"], lookup, "name")
        elif "projected" in volume:
            _projected(directory, pod, volume["projected"], lookup, mint, api_audience)
        elif "downwardAPI" in volume:
            src = volume["downwardAPI"]
            _downward(directory, pod, src.get("items") or [], int(src.get("defaultMode", 0o644)))
        else:
            kinds = sorted(k for k in volume if k != "name")
            raise VolumeError(
                f"volume {volume['name']!r}: {kinds} is not supported by the test bed"
            )
        out[volume["name"]] = directory
    if automount:
        directory = root / SA_VOLUME
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o755)
        meta, spec = pod["metadata"], pod.get("spec") or {}
        token = mint(
            meta["namespace"], spec.get("serviceAccountName") or "default", [api_audience], 3607
        )
        _write(directory, "token", token.encode(), 0o644)
        _write(directory, "ca.crt", ca_pem, 0o644)
        _write(directory, "namespace", meta["namespace"].encode(), 0o644)
        out[SA_VOLUME] = directory
    return out


def mounts(container: Mapping[str, Any], volumes: Mapping[str, Path]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for vm in container.get("volumeMounts") or []:
        if vm.get("subPath") or vm.get("subPathExpr"):
            raise VolumeError(
                f"volumeMount {vm['name']!r}: subPath is not supported by the test bed"
            )
        if vm["name"] not in volumes:
            raise VolumeError(f"volumeMount {vm['name']!r} names no volume of the pod")
        out.append(
            {
                "source": str(volumes[vm["name"]]),
                "target": vm["mountPath"],
                "readOnly": bool(vm.get("readOnly")),
            }
        )
    targets = {os.path.normpath(m["target"]) for m in out}
    if SA_VOLUME in volumes and SA_MOUNT not in targets:
        out.append({"source": str(volumes[SA_VOLUME]), "target": SA_MOUNT, "readOnly": True})
    return out
