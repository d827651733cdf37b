"""The public names of discovery's modules exist, and nothing private leaks into `__all__`."""

from __future__ import annotations

import importlib

import pytest

MODULES = {
    "lacewing.core.discovery": {"parse_authority", "Endpoint", "EndpointSet", "diff", "apply"},
    "lacewing.controller.destination": {"DestinationServer", "Hub", "KubernetesSource"},
    "lacewing.proxy.discovery": {"DestinationClient", "Resolution"},
    "lacewing.proxy.balance": {"Balancer", "PeakEwma", "Unavailable"},
    "lacewing.k8s.watch": {"KindWatch", "WatchEvent", "connect_async"},
    "lacewing.core.routes": {"parse_route", "Route", "RouteError", "route_conditions"},
    "lacewing.core.route_table": {"RouteTable", "Request"},
    "lacewing.proxy.routes": {"Router", "RetryBudget", "MAX_REPLAY"},
}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_exports(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    assert MODULES[name] <= exported
    assert all(hasattr(module, attr) and not attr.startswith("_") for attr in exported)
