"""What `lacewing.proxy.build` reports: which hot-path modules import as mypyc extensions."""

from __future__ import annotations

import importlib.util

from lacewing.proxy.build import COMPILED, Build, current


def test_every_listed_module_exists_and_is_classified_once() -> None:
    build = current()
    assert sorted(build.compiled + build.pure) == sorted(COMPILED)
    for name in COMPILED:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, name
        assert (name in build.compiled) == spec.origin.endswith(".so"), name


def test_the_name_and_line_say_which_build() -> None:
    assert Build(("a", "b"), ()).name == "mypyc"
    assert Build((), ("a", "b")).name == "pure-python"
    assert Build(("a",), ("b",)).name == "mixed"
    assert Build((), ("a",)).describe().startswith("pure Python")
    assert Build(("a",), ("b",)).describe() == "mixed: 1 modules compiled, not b"
