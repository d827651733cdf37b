from __future__ import annotations

from lacewing.proxy.config import Addr, load
from lacewing.proxy.metrics import ProxyMetrics
from lacewing.proxy.server import build_sides
from lacewing.proxy.side import Side
from lacewing.proxy.targets import HTTP1, Logical


def _to(side: Side, dst: Addr) -> Addr:
    pick = side.pick(Logical(dst, HTTP1))
    assert pick.ticket is None  # no discovery: nothing to count
    return pick.endpoint.addr


def test_inbound_forwards_to_the_app_at_the_original_port_and_outbound_to_the_destination() -> None:
    inbound, outbound = build_sides(load({}), ProxyMetrics())
    assert (inbound.direction, outbound.direction) == ("inbound", "outbound")
    assert _to(inbound, Addr("10.42.0.7", 8080)) == Addr("127.0.0.1", 8080)
    assert _to(outbound, Addr("10.42.0.9", 80)) == Addr("10.42.0.9", 80)


def test_fixed_destinations_replace_the_original_destination() -> None:
    cfg = load(
        {
            "LACEWING_PROXY_INBOUND_FIXED_DST": "127.0.0.1:9000",
            "LACEWING_PROXY_OUTBOUND_FIXED_DST": "127.0.0.1:4143",
            "LACEWING_PROXY_INBOUND_FORWARD_HOST": "127.0.0.2",
        }
    )
    inbound, outbound = build_sides(cfg, ProxyMetrics())
    assert _to(inbound, Addr("10.42.0.7", 8080)) == Addr("127.0.0.1", 9000)
    assert _to(outbound, Addr("10.42.0.9", 80)) == Addr("127.0.0.1", 4143)
