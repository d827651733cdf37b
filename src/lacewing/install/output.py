"""Serialize rendered objects for `kubectl apply -f -`: YAML documents or one JSON List.

YAML goes through PyYAML's safe dumper, which quotes every string that a YAML 1.1 reader
would take for something else (`"true"`, `"on"`, `"0755"`, `"1.10"`), so a label value or an
image tag survives the round trip as a string. Multi-line strings (PEM certificates, the
values document) are written as literal blocks (`|`) so they stay readable. Key order is the
order the renderer built (apiVersion, kind, metadata first), not alphabetical.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import yaml

__all__ = ["FORMATS", "dump", "dump_json", "dump_yaml", "skeleton"]


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes multi-line strings as literal blocks and never uses anchors.

    A dict shared between two places of a manifest (one schema fragment reused) would
    otherwise come out as `&id001` / `*id001`: valid YAML, but not what people expect to read
    or diff in a Kubernetes manifest.
    """

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value and not any(line != line.rstrip() for line in value.splitlines()):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


def dump_yaml(docs: Iterable[dict[str, Any]]) -> str:
    """`---`-separated YAML documents."""
    parts = [
        yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1 << 16)
        for doc in docs
    ]
    return "".join(f"---\n{part}" for part in parts)


def dump_json(docs: Iterable[dict[str, Any]]) -> str:
    """One `v1 List` (what `kubectl apply -f -` reads as many objects)."""
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(docs)}, indent=2) + "\n"


FORMATS = {"yaml": dump_yaml, "json": dump_json}


def dump(docs: Iterable[dict[str, Any]], output: str) -> str:
    return FORMATS[output](docs)


def skeleton(doc: dict[str, Any]) -> dict[str, Any]:
    """apiVersion, kind and name/namespace only: enough for `kubectl delete -f -`."""
    meta = doc.get("metadata") or {}
    out_meta = {"name": meta["name"]}
    if meta.get("namespace"):
        out_meta["namespace"] = meta["namespace"]
    return {"apiVersion": doc["apiVersion"], "kind": doc["kind"], "metadata": out_meta}
