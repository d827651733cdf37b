"""Which rule of which route a request takes: Gateway API precedence over one flat list.

`RouteTable(routes)` takes the routes attached to one Service and flattens them into one
entry per (route, rule, match), sorted once by precedence; `find(request)` walks that list
and returns the first entry whose match the request satisfies, so the best match wins
without comparing candidates per request. The order, as the Gateway API specifies it for
HTTPRoute matches (ties go to the next line):

    1. path Exact before RegularExpression before PathPrefix, and within a kind the longest
       value first (the spec leaves regexes to implementations; like Linkerd we rank them
       above prefixes, so a catch-all "/" never hides a regex rule)
    2. a match with a method before one without
    3. more header matches first
    4. more query parameter matches first
    5. the oldest route (creationTimestamp), then `namespace/name` alphabetically, then its
       kind and group (an HTTPRoute and a GRPCRoute, or both groups' copies, may share a
       name), then its place in the list
    6. the rule's, then the match's, place in its route

A linear walk would cost a hundred comparisons on a Service with a hundred routes, so the
list is also split by a path's first segment: an `Exact` or `PathPrefix` match can only
match paths whose first segment is its own (prefixes match whole segments), so the entries
for `/api/...` are the `api` entries plus the ones any path may match (`PathPrefix /`,
regular expressions), still in precedence order; a request walks only its segment's list.
Those lists hold each entry flattened (method, path kind and value, regex, header and query
matches), so the walk calls no method per entry for the path: with 100 query matches under
one prefix, the last matching, the proxy's Python per request is +36 us over a proxy with no
routes on the 2-core test VM (`bench/route_cost.py --no-memo`), +84-97 us when each entry
was asked through `Match`.

`uses_headers` says whether any match looks at headers: without, `match` is a function of
method, path and query alone (the proxy's router then remembers recent answers).

A request is `Request(method, path, header, query)`: `path` without the query string,
`header(name)` the first value of a lower-cased header name or None, `query` the raw query
string (parsed only when some match looks at query parameters). Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from lacewing.core.routes import HeaderMatch, Match, Route, Rule

__all__ = ["Request", "RouteMatch", "RouteTable"]

_PATH_RANK = {"Exact": 0, "RegularExpression": 1, "PathPrefix": 2}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    header: Callable[[str], str | None]
    query: str = ""


@dataclass(frozen=True)
class RouteMatch:
    route: Route
    rule_index: int
    rule: Rule
    match: Match  # the match of the rule the request satisfied


def _key(route: Route, index: int, rule_index: int, match_index: int,
         match: Match) -> tuple[object, ...]:  # fmt: skip
    return (_PATH_RANK[match.path.kind], -len(match.path.value),
            0 if match.method else 1, -len(match.headers), -len(match.query),
            route.created or "~", f"{route.namespace}/{route.name}", route.kind, route.group,
            index, rule_index, match_index)  # fmt: skip


def _segment(match: Match) -> str | None:
    """The first path segment every path this match accepts starts with (None: any)."""
    path = match.path
    if path.kind == "RegularExpression":
        return None
    value = path.value.rstrip("/") if path.kind == "PathPrefix" else path.value
    if path.kind == "PathPrefix" and not value:
        return None  # PathPrefix "/": every path
    return value[1:].partition("/")[0]


def _first_values(query: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        values.setdefault(name, value)
    return values


class RouteTable:
    """The routes of one Service, ready to match requests against."""

    __slots__ = ("_by_segment", "_entries", "_uses_query", "_wild", "routes", "uses_headers")

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = tuple(routes)
        ranked = sorted(
            (_key(route, i, r, m, match), RouteMatch(route, r, rule, match), match)
            for i, route in enumerate(self.routes)
            for r, rule in enumerate(route.rules)
            for m, match in enumerate(rule.matches)
        )  # the keys are unique (they end with the places), so values are never compared
        self._entries = tuple((found, match) for _key_, found, match in ranked)
        self._uses_query = any(match.query for _found, match in self._entries)
        # without header matches, `match` is a function of method, path and query alone
        self.uses_headers = any(match.headers for _found, match in self._entries)
        flat = [_compile(found, match) for found, match in self._entries]
        segments = [_segment(m) for _f, m in self._entries]
        self._wild = tuple(e for e, seg in zip(flat, segments, strict=True) if seg is None)
        self._by_segment = {
            key: tuple(e for e, seg in zip(flat, segments, strict=True) if seg in (None, key))
            for key in {seg for seg in segments if seg is not None}
        }

    def __len__(self) -> int:
        return len(self.routes)

    def entries(self) -> list[RouteMatch]:
        """Every (route, rule, match), best first."""
        return [found for found, _match in self._entries]

    def find(self, request: Request) -> RouteMatch | None:
        return self.match(request.method, request.path, request.header, request.query)

    def match(self, method: str, path: str, header: Callable[[str], str | None],
              query_text: str = "") -> RouteMatch | None:  # fmt: skip
        """`find` without building a `Request` (the proxy's per-request call)."""
        query = _first_values(query_text) if self._uses_query and query_text else {}
        first = path[1:].partition("/")[0]
        # `Match`'s tests, flattened (`_compile`): a request may walk every entry
        for found, want, kind, value, regex, headers, queries in self._by_segment.get(
            first, self._wild
        ):
            if want is not None and want != method:
                continue
            if kind == _PREFIX:  # element-wise: /foo matches /foo and /foo/bar, not /foobar
                if not path.startswith(value) or (
                    len(path) != len(value) and path[len(value)] != "/"
                ):
                    continue
            elif kind == _EXACT:
                if path != value:
                    continue
            elif regex is None or regex.fullmatch(path) is None:
                continue
            if headers and not _all_match(headers, header):
                continue
            if queries and not _all_match(queries, query.get):
                continue
            return found
        return None


_EXACT, _REGEX, _PREFIX = 0, 1, 2
_Entry = tuple[RouteMatch, "str | None", int, str, "re.Pattern[str] | None",
               "tuple[HeaderMatch, ...]", "tuple[HeaderMatch, ...]"]  # fmt: skip


def _compile(found: RouteMatch, match: Match) -> _Entry:
    """One entry as `match` walks it: (found, method, path kind, the prefix without its
    trailing slash or the exact path, regex, header matches, query matches)."""
    path = match.path
    kind = {"Exact": _EXACT, "RegularExpression": _REGEX, "PathPrefix": _PREFIX}[path.kind]
    value = path.value.rstrip("/") if kind == _PREFIX else path.value
    return (found, match.method, kind, value, path.regex, match.headers, match.query)


def _all_match(matches: tuple[HeaderMatch, ...], value_of: Callable[[str], str | None]) -> bool:
    for one in matches:  # noqa: SIM110 (a loop: `all` of a generator costs twice this)
        if not one.matches(value_of(one.name)):
            return False
    return True
