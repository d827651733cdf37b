"""Every name the local runtime and viz modules export exists (the surface others build on)."""

from __future__ import annotations

import importlib

import pytest

MODULES = [
    "lacewing.core.registry",
    "lacewing.local.spec",
    "lacewing.local.plan",
    "lacewing.local.netns",
    "lacewing.local.state",
    "lacewing.local.control",
    "lacewing.local.controlplane",
    "lacewing.local.supervisor",
    "lacewing.local.scaling",
    "lacewing.local.demo",
    "lacewing.local.demo.run",
    "lacewing.viz.promtext",
    "lacewing.viz.stat",
    "lacewing.viz.table",
    "lacewing.viz.scrape",
]


@pytest.mark.parametrize("name", MODULES)
def test_exports_exist(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert exported, f"{name} exports nothing"
    assert sorted(set(exported)) == sorted(exported)
    for attr in exported:
        assert hasattr(module, attr), f"{name}.__all__ names missing {attr}"
