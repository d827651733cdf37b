"""The opaque relay's flow control, with in-memory transports (no sockets)."""

from __future__ import annotations

from lacewing.proxy.metrics import TcpStats
from lacewing.proxy.tcp import TunnelEnd, join
from lacewing.proxy.transport.fake import FakeTransport


def _pair(high_water: int = 1 << 30) -> tuple[TunnelEnd, FakeTransport, TunnelEnd, FakeTransport]:
    a, b = TunnelEnd(TcpStats()), TunnelEnd(TcpStats())
    ta, tb = FakeTransport(a, high_water), FakeTransport(b, high_water)
    a.connection_made(ta)
    b.connection_made(tb)
    return a, ta, b, tb


def test_bytes_before_attach_are_kept_and_reading_paused() -> None:
    a, ta, b, tb = _pair()
    a.data_received(b"early")
    assert not ta.reading, "reading must pause until the peer exists"
    join(a, b)
    assert tb.data() == b"early" and ta.reading
    a.data_received(b"more")
    b.data_received(b"back")
    assert tb.data() == b"earlymore" and ta.data() == b"back"
    assert a.stats.read_bytes == 9 and b.stats.write_bytes == 9


def test_slow_reader_pauses_the_writer_side() -> None:
    a, ta, b, tb = _pair(high_water=10)
    join(a, b)
    a.data_received(b"x" * 8)
    assert ta.reading
    a.data_received(b"x" * 8)  # b's buffer passes 10 bytes: stop reading from a
    assert not ta.reading
    tb.drain()  # b's peer caught up
    assert ta.reading


def test_half_close_is_passed_on_and_both_close_after_both_eofs() -> None:
    a, ta, b, tb = _pair()
    join(a, b)
    assert a.eof_received() is True
    assert tb.eof_written and not ta.closed
    b.data_received(b"reply after client's EOF")
    assert ta.data() == b"reply after client's EOF"
    b.eof_received()
    assert ta.closed and tb.closed
    assert a.stats.closed == 1 and b.stats.closed == 1


def test_losing_one_side_closes_the_other() -> None:
    a, ta, b, tb = _pair()
    join(a, b)
    ta.abort()
    assert tb.closed
