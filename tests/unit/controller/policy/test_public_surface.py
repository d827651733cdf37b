"""The public names of policy's modules exist, and nothing private leaks into `__all__`."""

from __future__ import annotations

import importlib

import pytest

MODULES = {
    "lacewing.core.policy": {"PortPolicy", "Decision", "evaluate", "policy_from_dict"},
    "lacewing.core.policy_resources": {"parse_resource", "Server", "AuthorizationPolicy"},
    "lacewing.core.policy_index": {"PolicyIndex", "PolicyConfig", "pod_from_object"},
    "lacewing.controller.policy": {"Hub", "PolicyServer", "KubernetesSource", "LocalSource",
                                   "Validator", "ValidatorServer"},
    "lacewing.proxy.policy": {"PolicyClient", "InboundGate", "ConnectionVerdict"},
    "lacewing.k8s.policy_kinds": {"POLICY_KINDS"},
    "lacewing.cli.commands.controller_policy": {"run_policy", "PolicyOptions", "policy_command"},
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(MODULES))
def test_exports(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    assert MODULES[name] <= exported
    assert all(hasattr(module, attr) and not attr.startswith("_") for attr in exported)
