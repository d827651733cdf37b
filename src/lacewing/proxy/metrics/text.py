"""Prometheus text exposition format (version 0.0.4), the small part the proxy needs.

Label values are escaped (backslash, double quote, newline); numbers print as integers when
they are whole so counters read `request_total{...} 3`, not `3.0`.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["CONTENT_TYPE", "family_header", "labels", "number", "sample"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def labels(names: Iterable[str], values: Iterable[str]) -> str:
    return ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))


def number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def sample(name: str, label_text: str, value: float) -> str:
    return f"{name}{{{label_text}}} {number(value)}" if label_text else f"{name} {number(value)}"


def family_header(name: str, kind: str, help_text: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
