"""Find the Kubernetes configuration the way kubectl does.

Order, as in kubectl (lightkube's own `from_env` tries in-cluster first, which is wrong for a
CLI run inside a pod that has a kubeconfig):

1. an explicit path (`--kubeconfig`), which may be a `:`-separated list like `KUBECONFIG`;
2. the `KUBECONFIG` environment variable (a `:`-separated list);
3. `~/.kube/config` if it exists;
4. the in-cluster service account (`KUBERNETES_SERVICE_HOST` + the token files).

Several files are merged as kubectl merges them: the first file that names a cluster, user or
context wins, and `current-context` comes from the first file that sets it. Relative paths inside
a file are resolved against the first file's directory (kubectl resolves per file; lacewing's
kubeconfigs are generated with absolute paths or inline data, so the difference does not bite).

Every failure is a `ClusterUnreachable` with a hint, never a lightkube or YAML traceback.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from lightkube.config.kubeconfig import SERVICE_ACCOUNT, KubeConfig, SingleConfig
from lightkube.config.models import User
from lightkube.core.exceptions import ConfigError as LightkubeConfigError

from lacewing.errors import ClusterUnreachable

__all__ = ["resolve_config"]

_NO_CONFIG_HINT = (
    "point --kubeconfig or KUBECONFIG at your cluster's kubeconfig "
    "(for K3s: /etc/rancher/k3s/k3s.yaml), or run inside a pod with a service account"
)


def _candidate_files(explicit: str | None, environ: dict[str, str]) -> list[Path]:
    raw = explicit if explicit else environ.get("KUBECONFIG", "")
    paths = [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]
    if paths:
        return paths
    default = Path(environ.get("HOME", str(Path.home()))) / ".kube" / "config"
    return [default] if default.is_file() else []


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ClusterUnreachable(
            f"cannot read kubeconfig {path}: {exc.strerror or exc}", hint=_NO_CONFIG_HINT
        ) from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ClusterUnreachable(
            f"kubeconfig {path} is not valid YAML{where}", hint="fix or regenerate the file"
        ) from None
    if not isinstance(data, dict):
        raise ClusterUnreachable(
            f"kubeconfig {path} is not a kubeconfig (expected a mapping)",
            hint="fix or regenerate the file",
        )
    return data


def _merge(files: list[Path]) -> dict[str, Any]:
    merged: dict[str, Any] = {"clusters": [], "contexts": [], "users": []}
    seen: dict[str, set[str]] = {key: set() for key in merged}
    for path in files:
        if not path.is_file() and len(files) > 1:
            continue  # kubectl skips missing entries of a KUBECONFIG list
        data = _load_yaml(path)
        if merged.get("current-context") is None and data.get("current-context"):
            merged["current-context"] = data["current-context"]
        for key in ("clusters", "contexts", "users"):
            for entry in data.get(key) or []:
                name = entry.get("name") if isinstance(entry, dict) else None
                if name is None or name in seen[key]:
                    continue
                seen[key].add(name)
                merged[key].append(entry)
    return merged


def _in_cluster(environ: dict[str, str]) -> SingleConfig | None:
    if not environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    if not (Path(SERVICE_ACCOUNT) / "token").is_file():
        return None
    try:
        single = KubeConfig.from_service_account().get()
    except (LightkubeConfigError, KeyError, OSError) as exc:
        raise ClusterUnreachable(
            f"in-cluster configuration is incomplete: {exc}", hint=_NO_CONFIG_HINT
        ) from None
    assert single is not None
    return single


def resolve_config(
    kubeconfig: str | None = None,
    context: str | None = None,
    environ: dict[str, str] | None = None,
) -> SingleConfig:
    """Return the one (cluster, user, context) to talk to, as kubectl would pick it.

    Raises `ClusterUnreachable` (with a hint) when there is no configuration at all, when a
    file is unreadable or malformed, or when the context does not exist.
    """
    env = dict(os.environ) if environ is None else environ
    files = _candidate_files(kubeconfig, env)
    if not files:
        single = _in_cluster(env)
        if single is None:
            raise ClusterUnreachable(
                "no Kubernetes configuration found (no kubeconfig, not running in a cluster)",
                hint=_NO_CONFIG_HINT,
            )
        return single
    if len(files) == 1 and not files[0].is_file():
        raise ClusterUnreachable(f"kubeconfig {files[0]} does not exist", hint=_NO_CONFIG_HINT)
    merged = _merge(files)
    if not merged["contexts"]:
        raise ClusterUnreachable(
            f"kubeconfig {':'.join(map(str, files))} defines no context", hint=_NO_CONFIG_HINT
        )
    try:
        config = KubeConfig.from_dict(merged, fname=files[0])
        single = config.get(context)
    except LightkubeConfigError as exc:
        raise ClusterUnreachable(
            f"kubeconfig: {exc}", hint="choose one of its contexts with --context"
        ) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ClusterUnreachable(
            f"kubeconfig {files[0]} is malformed: {exc!r}", hint="fix or regenerate the file"
        ) from None
    assert single is not None
    if single.user is None:  # lightkube insists on a user object; kubectl allows none
        single = single._replace(user=User())
    return single
