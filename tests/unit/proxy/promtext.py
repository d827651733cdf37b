"""A strict little parser of the Prometheus text format for tests: every sample line must
parse and belong to a family declared by `# TYPE`, or it raises."""

from __future__ import annotations

import re

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


class Samples(dict[tuple[str, frozenset[tuple[str, str]]], float]):
    def __getitem__(self, key: tuple[str, dict[str, str]]) -> float:  # type: ignore[override]
        name, labels = key
        return super().__getitem__((name, frozenset(labels.items())))

    def get_value(self, name: str, **labels: str) -> float:
        return self[(name, labels)]


def parse(text: str) -> Samples:
    out = Samples()
    types: dict[str, str] = {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
            continue
        if line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise ValueError(f"bad sample line: {line!r}")
        name, _, body, value = m.groups()
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        if name not in types and family not in types:
            raise ValueError(f"sample without # TYPE: {line!r}")
        labels: list[tuple[str, str]] = []
        if body:
            pos = 0
            while pos < len(body):
                lm = _LABEL.match(body, pos)
                if not lm:
                    raise ValueError(f"bad labels in {line!r}")
                raw = lm.group(2)
                val = raw.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
                labels.append((lm.group(1), val))
                pos = lm.end()
        out[(name, frozenset(labels))] = float(value.replace("+Inf", "inf"))
    return out
