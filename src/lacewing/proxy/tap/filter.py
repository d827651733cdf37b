"""What a tap asks for and what it gets, as data: no I/O, no asyncio.

A tap request is one JSON object (the body of `POST /tap`):

    {"source":      {"namespace": NS, "pod": NAME, "deployment": NAME, "identity": ID},
     "destination": {... the same keys ...},
     "authority": "srv:8080", "path": "/x" (a prefix), "method": "GET",
     "max": 100 (events, then the stream ends), "rps": 10.0 (events per second, at most)}

every key optional. An event is one ended request/response (`TapEvent`), with its two ends
described by the same keys; a selector matches an end when every key it names is equal
there (an end that lacks the key does not match). `parse_filter` turns the JSON into a
frozen `TapFilter` or raises `TapRequestError` with one line saying what is wrong.
`encode_event` is the JSON line a tap client reads (keys as in `docs/viz.md`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from lacewing.errors import UsageError

__all__ = [
    "SELECTOR_KEYS",
    "TapEvent",
    "TapFilter",
    "TapRequestError",
    "encode_event",
    "parse_filter",
]

SELECTOR_KEYS = ("namespace", "pod", "deployment", "identity")
_TOP_KEYS = {"source", "destination", "authority", "path", "method", "max", "rps"}
MAX_EVENTS = 1_000_000


class TapRequestError(UsageError):
    """A tap request the proxy cannot serve (bad JSON, an unknown key, a bad limit)."""


Selector = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class TapEvent:
    """One ended request/response as the proxy saw it (times in seconds, wall clock)."""

    direction: str  # inbound | outbound
    method: str
    authority: str
    path: str
    status: int  # 0: no response (the proxy's own failure or abandoned)
    latency_ms: float
    source: dict[str, str] = field(default_factory=dict)
    destination: dict[str, str] = field(default_factory=dict)
    tls: str = ""  # the `tls` label: true, disabled, no_identity, ...
    grpc_status: int | None = None
    started: float = 0.0  # wall-clock seconds
    ended: float = 0.0


def _selector(value: Any, where: str) -> Selector:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise TapRequestError(f"tap request: {where!r} must be an object")
    out = []
    for key, item in sorted(value.items()):
        if key not in SELECTOR_KEYS:
            raise TapRequestError(
                f"tap request: unknown {where} key {key!r}",
                hint="keys: " + ", ".join(SELECTOR_KEYS),
            )
        if not isinstance(item, str) or not item:
            raise TapRequestError(f"tap request: {where}.{key} must be a non-empty string")
        out.append((key, item))
    return tuple(out)


@dataclass(frozen=True)
class TapFilter:
    source: Selector = ()
    destination: Selector = ()
    authority: str | None = None
    path: str | None = None  # a prefix of the request target
    method: str | None = None
    max_events: int | None = None
    rps: float | None = None

    def matches(self, event: TapEvent) -> bool:
        if self.path is not None and not event.path.startswith(self.path):
            return False
        if self.method is not None and event.method != self.method:
            return False
        if self.authority is not None and event.authority != self.authority:
            return False
        for key, value in self.source:
            if event.source.get(key) != value:
                return False
        return all(event.destination.get(key) == value for key, value in self.destination)

    def to_json(self) -> dict[str, Any]:
        """The request body that asks for this filter (what `parse_filter` reads back)."""
        body: dict[str, Any] = {}
        if self.source:
            body["source"] = dict(self.source)
        if self.destination:
            body["destination"] = dict(self.destination)
        for key, value in (("authority", self.authority), ("path", self.path),
                           ("method", self.method), ("max", self.max_events),
                           ("rps", self.rps)):  # fmt: skip
            if value is not None:
                body[key] = value
        return body


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise TapRequestError(f"tap request: {key!r} must be a non-empty string")
    return value


def parse_filter(raw: bytes | str) -> TapFilter:
    """The filter in a tap request body (empty body: everything)."""
    if not raw or not raw.strip():
        return TapFilter()
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise TapRequestError(f"tap request: not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise TapRequestError("tap request: the body must be a JSON object")
    unknown = sorted(set(body) - _TOP_KEYS)
    if unknown:
        raise TapRequestError(
            f"tap request: unknown key {unknown[0]!r}", hint="keys: " + ", ".join(sorted(_TOP_KEYS))
        )
    path = _text(body, "path")
    if path is not None and not path.startswith("/"):
        raise TapRequestError(f"tap request: path {path!r} must start with /")
    method = _text(body, "method")
    max_events = body.get("max")
    if max_events is not None and (
        isinstance(max_events, bool)
        or not isinstance(max_events, int)
        or not 0 < max_events <= MAX_EVENTS
    ):
        raise TapRequestError(f"tap request: max must be an integer in 1..{MAX_EVENTS}")
    rps = body.get("rps")
    if rps is not None and (
        isinstance(rps, bool) or not isinstance(rps, int | float) or not rps > 0
    ):
        raise TapRequestError("tap request: rps must be a positive number")
    return TapFilter(
        source=_selector(body.get("source"), "source"),
        destination=_selector(body.get("destination"), "destination"),
        authority=_text(body, "authority"),
        path=path,
        method=method.upper() if method else None,
        max_events=max_events,
        rps=float(rps) if rps is not None else None,
    )


def encode_event(event: TapEvent) -> bytes:
    """One JSON line (ending in a newline) for `event`."""
    out: dict[str, Any] = {
        "direction": event.direction,
        "method": event.method,
        "authority": event.authority,
        "path": event.path,
        "status": event.status,
        "latency_ms": round(event.latency_ms, 3),
        "source": event.source,
        "destination": event.destination,
        "tls": event.tls,
        "started": round(event.started, 6),
        "ended": round(event.ended, 6),
    }
    if event.grpc_status is not None:
        out["grpc_status"] = event.grpc_status
    return json.dumps(out, separators=(",", ":"), sort_keys=True).encode() + b"\n"
