"""The injector's modules export what they say and explain how they work."""

from __future__ import annotations

import importlib

import pytest

MODULES = [
    "lacewing.controller.injector",
    "lacewing.controller.injector.config",
    "lacewing.controller.injector.patch",
    "lacewing.controller.injector.workloads",
    "lacewing.controller.injector.admission",
    "lacewing.controller.injector.server",
    "lacewing.cli.commands.inject",
    "lacewing.cli.commands.controller_injector",
    "lacewing.healthcheck.checks.dataplane",
]


@pytest.mark.parametrize("name", MODULES)
def test_exports_exist_and_module_explains_itself(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__all__
    assert [n for n in module.__all__ if not hasattr(module, n)] == []
    assert module.__doc__ and len(module.__doc__.splitlines()) > 3


def test_every_override_maps_to_a_real_install_value() -> None:
    from lacewing.controller.injector.config import OVERRIDES
    from lacewing.errors import ConfigError
    from lacewing.install.values import build_values

    for override in OVERRIDES:
        head, *rest = override.value_path.split(".")
        tree: dict[str, object] = {}
        node = tree
        for part in [head, *rest][:-1]:
            node = node.setdefault(part, {})  # type: ignore[assignment]
        node[[head, *rest][-1]] = "1"
        try:
            build_values(overrides=tree)
        except ConfigError as exc:  # an unknown key would say "unknown value"
            assert "unknown value" not in str(exc), override.name
