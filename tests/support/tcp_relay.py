"""`python -m tests.support.tcp_relay LISTEN_HOST:PORT TARGET_HOST:PORT [READY_URL]`: a relay.

Test support for network-namespace pods: the Kubernetes API test bed listens on 127.0.0.1 of
the pod it runs in, so a relay there (on the pod's address) and one in each other pod (on
their 127.0.0.1) let every pod use the same kubeconfig, as pods use the API server's Service.
Each accepted connection is copied both ways until either side closes; runs until killed.

With READY_URL (`http://10.0.0.5:4191/ready`) the relay is a Service with one backend, as
kube-proxy makes it: a connection is forwarded only while that backend answers 200 there (its
readiness), and closed at once otherwise, as a Service without ready endpoints refuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys


def _split(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


async def _ready(url: str) -> bool:
    rest = url.removeprefix("http://")
    hostport, _, path = rest.partition("/")
    host, port = _split(hostport)
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(
            f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 2)
        return status.split(b" ")[1:2] == [b"200"]
    except (OSError, TimeoutError, IndexError):
        return False
    finally:
        writer.close()


async def _main(listen: tuple[str, int], target: tuple[str, int], ready_url: str) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if ready_url and not await _ready(ready_url):
            writer.close()  # no ready endpoint
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(handle, *listen)
    print(f"relay {listen[0]}:{listen[1]} -> {target[0]}:{target[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_main(_split(sys.argv[1]), _split(sys.argv[2]), "".join(sys.argv[3:4])))
