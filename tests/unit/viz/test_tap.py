"""`viz tap` / `viz top` as data: the filter from the options, the printed lines, the ranking."""

from __future__ import annotations

import pytest

from lacewing.errors import UsageError
from lacewing.proxy.tap.filter import TapFilter
from lacewing.viz.tap import Top, tap_filter, tap_line

CLI = "cli.t.serviceaccount.identity.lacewing.cluster.local"
SRV = "srv.t.serviceaccount.identity.lacewing.cluster.local"


def _event(path: str, status: int = 200, latency: float = 1.5, pod: str = "srv-0",
           grpc: int | None = None) -> dict[str, object]:  # fmt: skip
    event: dict[str, object] = {
        "direction": "inbound", "method": "GET", "authority": "srv:8080", "path": path,
        "status": status, "latency_ms": latency, "tls": "true", "pod": pod,
        "source": {"identity": CLI, "namespace": "t"},
        "destination": {"identity": SRV, "namespace": "t", "pod": pod, "deployment": "srv"},
    }  # fmt: skip
    if grpc is not None:
        event["grpc_status"] = grpc
    return event


def test_filter_from_options() -> None:
    assert tap_filter("t") == TapFilter()
    f = tap_filter("t", to="deploy/web", path="/x", method="post", max_rps=5)
    assert f == TapFilter(destination=(("deployment", "web"), ("namespace", "t")), path="/x",
                          method="POST", rps=5.0)  # fmt: skip
    assert tap_filter("t", to="pod/web-0", to_namespace="u").destination == (
        ("namespace", "u"), ("pod", "web-0"),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"to": "svc/web"}, "invalid --to 'svc/web'"),
        ({"to": "deploy/"}, "invalid --to"),
        ({"path": "x"}, "invalid --path 'x'"),
        ({"max_rps": 0.0}, "invalid --max-rps"),
    ],
)
def test_bad_options_are_one_line(kw: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        tap_filter("t", **kw)  # type: ignore[arg-type]


def test_tap_line() -> None:
    assert tap_line(_event("/x")) == (
        "rsp proxy=in src=cli.t dst=srv-0 tls=true :method=GET :authority=srv:8080 :path=/x "
        ":status=200 latency=1500µs"
    )
    wide = tap_line(_event("/x", grpc=14), wide=True)
    assert "grpc-status=14" in wide and wide.endswith(f"src_id={CLI} dst_id={SRV} pod=srv-0")


def test_top_ranks_paths_across_replicas() -> None:
    top = Top()
    for i in range(5):
        top.add(_event("/x?i=1", latency=1.0 + i, pod=f"srv-{i % 2}"))
    for _ in range(3):
        top.add(_event("/fail", status=500))
    top.add(_event("/y", grpc=2))
    rows = top.ranked()
    assert [(r["path"], r["count"], r["success"]) for r in rows] == [
        ("/x", 5, 1.0), ("/fail", 3, 0.0), ("/y", 1, 0.0),
    ]  # fmt: skip
    assert rows[0]["destination"] == "srv" and rows[0]["source"] == "cli.t"
    assert (rows[0]["best_ms"], rows[0]["worst_ms"], rows[0]["last_ms"]) == (1.0, 5.0, 5.0)
    lines = top.render()
    assert lines[0].split() == ["SOURCE", "DESTINATION", "METHOD", "PATH", "COUNT", "BEST",
                                "WORST", "LAST", "SUCCESS"]  # fmt: skip
    assert lines[1].split() == ["cli.t", "srv", "GET", "/x", "5", "1.0ms", "5.0ms", "5.0ms",
                                "100.00%"]  # fmt: skip


def test_duration_takes_the_demos_forms() -> None:
    from lacewing.cli.commands.viz_tap import _build

    base = {"resource": "deploy/web", "namespace": "default"}
    for text, seconds in (("5s", 5.0), ("1m", 60.0), ("2", 2.0), ("500ms", 0.5)):
        assert _build(**base, duration=text).query.duration == seconds
    with pytest.raises(UsageError, match="invalid duration '5x' for --duration"):
        _build(**base, duration="5x")
