"""ExpiryWatch: one timer per deadline, only open connections expire, closed ones forgotten."""

from __future__ import annotations

import asyncio
from typing import Any

from lacewing.proxy.identity.expiry import PRUNE_MIN, ExpiryWatch, cert_time


class FakeTransport:
    def __init__(self, not_after: str | None = None) -> None:
        self.closing = False
        self.not_after = not_after

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str) -> Any:
        if name != "ssl_object" or self.not_after is None:
            return None
        not_after = self.not_after

        class Ssl:
            def getpeercert(self) -> dict[str, str]:
                return {"notAfter": not_after}

        return Ssl()


async def test_open_connections_expire_at_the_earlier_certificate_closed_ones_do_not() -> None:
    clock = [1000.0]
    watch = ExpiryWatch(now=lambda: clock[0])
    ended: list[str] = []
    # the peer's certificate (notAfter far away) outlives ours (now + 0.05 s): ours decides
    peer = "Jan  1 00:00:00 2100 GMT"
    a, b = FakeTransport(peer), FakeTransport(peer)
    watch.watch(a, 1000.05, lambda: ended.append("a"))
    watch.watch(b, 1000.05, lambda: ended.append("b"))
    b.closing = True
    assert len(watch._timers) == 1  # one timer for the shared deadline
    await asyncio.sleep(1.2)  # deadlines are whole seconds
    assert ended == ["a"] and watch.expired == 1
    assert len(watch) == 0


async def test_closed_connections_are_forgotten_so_memory_stays_bounded() -> None:
    watch = ExpiryWatch(now=lambda: 0.0)
    for i in range(5_000):  # a handshake storm: each connection ends long before its certificate
        transport = FakeTransport()
        watch.watch(transport, 3600.0 + i % 3, lambda: None)
        transport.closing = True
        # each one it still holds keeps a whole TLS connection's memory alive
        assert len(watch) <= PRUNE_MIN
    watch.close()
    assert len(watch) == 0


async def test_closed_connections_held_stay_within_the_open_ones() -> None:
    watch = ExpiryWatch(now=lambda: 0.0)
    pooled = [FakeTransport() for _ in range(200)]  # long-lived, stay open
    for transport in pooled:
        watch.watch(transport, 3600.0, lambda: None)
    most = 0
    for _ in range(2_000):  # churn beside them
        transport = FakeTransport()
        watch.watch(transport, 3600.0, lambda: None)
        transport.closing = True
        most = max(most, len(watch) - len(pooled))
    assert most <= len(pooled) + 1
    assert len(watch) >= len(pooled)  # none of the open ones lost
    watch.close()


async def test_a_forgotten_connection_is_let_go_of_at_once_and_its_timer_with_it() -> None:
    watch = ExpiryWatch(now=lambda: 0.0)
    ended: list[str] = []
    a, b = FakeTransport(), FakeTransport()
    forget_a = watch.watch(a, 3600.0, lambda: ended.append("a"))
    forget_b = watch.watch(b, 3600.0, lambda: ended.append("b"))
    forget_a()
    assert len(watch) == 1 and len(watch._timers) == 1
    forget_a()  # twice is harmless
    forget_b()
    assert len(watch) == 0 and not watch._timers  # no timer left for a deadline nobody has
    assert watch.watch(FakeTransport(), None, lambda: None)() is None  # nothing to expire


def test_certificate_times_read_as_openssl_writes_them() -> None:
    import ssl

    for text in (
        "Jan  1 00:00:00 2100 GMT",
        "Dec 31 23:59:59 2026 GMT",
        "Jun  9 12:00:00 2027 GMT",
    ):
        assert cert_time(text) == ssl.cert_time_to_seconds(text)
