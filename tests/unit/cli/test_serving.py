"""Running a controller in the foreground: the banner, the stop paths, the drain, the failure."""

from __future__ import annotations

import asyncio
import io
import os
import signal

import pytest

from lacewing.cli.context import Output
from lacewing.cli.serving import parse_listen_addr, serve_until_signalled
from lacewing.errors import UsageError


class FakeServer:
    def __init__(self) -> None:
        self.events: list[str] = []

    @property
    def bound_port(self) -> int:
        return 4242

    async def start(self) -> None:
        self.events.append("start")

    async def stop(self) -> None:
        self.events.append("stop")


async def test_banner_then_drain_when_stop_is_set() -> None:
    server, text, stop = FakeServer(), io.StringIO(), asyncio.Event()
    serving = asyncio.create_task(
        serve_until_signalled(
            server, Output(out=text), lambda p: f"up on :{p}", name="t", stop=stop
        ),
        name="serving",
    )
    await asyncio.sleep(0.01)
    assert (text.getvalue(), server.events) == ("up on :4242\n", ["start"])
    stop.set()
    await serving
    assert server.events == ["start", "stop"]


async def test_sigterm_stops_and_the_handlers_are_removed() -> None:
    server = FakeServer()
    serving = asyncio.create_task(
        serve_until_signalled(server, Output(out=io.StringIO()), str, name="t"), name="serving"
    )
    await asyncio.sleep(0.01)
    os.kill(os.getpid(), signal.SIGTERM)
    async with asyncio.timeout(2):
        await serving
    assert server.events == ["start", "stop"]
    assert not asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)


async def test_a_failing_companion_ends_serving_with_its_error() -> None:
    server = FakeServer()

    async def source() -> None:
        await asyncio.sleep(0.01)
        raise UsageError("the source broke")

    with pytest.raises(UsageError, match="the source broke"):
        async with asyncio.timeout(2):
            await serve_until_signalled(
                server, Output(out=io.StringIO()), str, name="t", companion=source
            )
    assert server.events == ["start", "stop"]


async def test_a_companion_is_cancelled_on_stop() -> None:
    server, stop, cancelled = FakeServer(), asyncio.Event(), asyncio.Event()

    async def source() -> None:
        try:
            await asyncio.sleep(30)
        finally:
            cancelled.set()

    stop.set()
    await serve_until_signalled(
        server, Output(out=io.StringIO()), str, name="t", stop=stop, companion=source
    )
    assert cancelled.is_set() and server.events == ["start", "stop"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:0", ("127.0.0.1", 0)), (":8080", ("0.0.0.0", 8080)), ("[::1]:9", ("::1", 9))],
)
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen_addr(text, "0.0.0.0:8086") == expected


@pytest.mark.parametrize("text", ["8080", "host:", "h:99999", "h:x"])
def test_bad_listen_addresses_name_the_flag_and_an_example(text: str) -> None:
    with pytest.raises(UsageError, match=r"--listen-addr: .* is not HOST:PORT") as err:
        parse_listen_addr(text, "0.0.0.0:8086")
    assert err.value.hint == "for example 0.0.0.0:8086"
