"""Configuration is found as kubectl finds it, and every mistake is one clear line."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from lacewing.errors import ClusterUnreachable
from lacewing.k8s.cluster import Cluster
from lacewing.k8s.kubeconfig import resolve_config


def _kubeconfig(path: Path, server: str, context: str = "one", current: bool = True) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": server}}],
        "users": [{"name": context, "user": {"token": "t"}}],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": context, "user": context, "namespace": f"{context}-ns"},
            }
        ],
    }
    if current:
        doc["current-context"] = context
    path.write_text(yaml.safe_dump(doc))
    return path


def test_no_configuration_at_all(tmp_path: Path) -> None:
    with pytest.raises(ClusterUnreachable) as caught:
        resolve_config(None, None, environ={"HOME": str(tmp_path)})
    assert "no Kubernetes configuration found" in str(caught.value)
    assert caught.value.hint and "--kubeconfig" in caught.value.hint


def test_home_kube_config_is_the_default(tmp_path: Path) -> None:
    (tmp_path / ".kube").mkdir()
    _kubeconfig(tmp_path / ".kube" / "config", "https://a.test")
    config = resolve_config(None, None, environ={"HOME": str(tmp_path)})
    assert config.cluster.server == "https://a.test"
    assert config.namespace == "one-ns"


def test_kubeconfig_env_list_is_merged_first_wins(tmp_path: Path) -> None:
    first = _kubeconfig(tmp_path / "a", "https://a.test", "one")
    second = _kubeconfig(tmp_path / "b", "https://b.test", "two", current=False)
    env = {"HOME": str(tmp_path), "KUBECONFIG": f"{first}:{second}"}
    assert resolve_config(None, None, environ=env).cluster.server == "https://a.test"
    assert resolve_config(None, "two", environ=env).cluster.server == "https://b.test"


def test_explicit_path_beats_the_environment(tmp_path: Path) -> None:
    first = _kubeconfig(tmp_path / "a", "https://a.test")
    second = _kubeconfig(tmp_path / "b", "https://b.test")
    env = {"HOME": str(tmp_path), "KUBECONFIG": str(first)}
    assert resolve_config(str(second), None, environ=env).cluster.server == "https://b.test"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("clusters: [", "is not valid YAML"),
        ("- a list", "is not a kubeconfig"),
        ("clusters: []\ncontexts: []\n", "defines no context"),
    ],
)
def test_malformed_files(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "config"
    path.write_text(content)
    with pytest.raises(ClusterUnreachable, match=expected):
        resolve_config(str(path), None, environ={})


def test_unknown_context(tmp_path: Path) -> None:
    path = _kubeconfig(tmp_path / "config", "https://a.test")
    with pytest.raises(ClusterUnreachable, match="Context 'nope' not found"):
        resolve_config(str(path), "nope", environ={})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ClusterUnreachable, match="does not exist"):
        Cluster.connect(str(tmp_path / "absent"))


def test_refused_connection_is_unreachable(tmp_path: Path) -> None:
    with socket.socket() as sock:  # find a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = _kubeconfig(tmp_path / "config", f"https://127.0.0.1:{port}")
    with Cluster.connect(str(path), timeout=2) as cluster, pytest.raises(ClusterUnreachable):
        cluster.server_version()
