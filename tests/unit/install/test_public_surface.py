"""Every name in the `__all__` of role B's modules exists (the surface others import)."""

from __future__ import annotations

import importlib

import pytest

MODULES = [
    "lacewing.install.values",
    "lacewing.install.sidecar",
    "lacewing.install.crds",
    "lacewing.install.credentials",
    "lacewing.install.rbac",
    "lacewing.install.render",
    "lacewing.install.output",
    "lacewing.tls.pem",
    "lacewing.tls.pki",
    "lacewing.tls.validate",
    "lacewing.k8s.cluster",
    "lacewing.k8s.kubeconfig",
    "lacewing.cli.commands.install",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert exported, name
    missing = [n for n in exported if not hasattr(module, n)]
    assert missing == []
    assert module.__doc__ and len(module.__doc__.splitlines()) > 2  # says how it works
