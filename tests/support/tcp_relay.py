"""`python -m tests.support.tcp_relay LISTEN_HOST:PORT TARGET_HOST:PORT`: a plain TCP relay.

Test support for network-namespace pods: the Kubernetes API test bed listens on 127.0.0.1 of
the pod it runs in, so a relay there (on the pod's address) and one in each other pod (on
their 127.0.0.1) let every pod use the same kubeconfig, as pods use the API server's Service.
Each accepted connection is copied both ways until either side closes; runs until killed.
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


async def _main(listen: tuple[str, int], target: tuple[str, int]) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
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
    asyncio.run(_main(_split(sys.argv[1]), _split(sys.argv[2])))
