"""gRPC (grpcio, not our code) and plain h2c test apps for the local cluster.

    python -m tests.integration.local.grpc_app server PORT     a gRPC server (h2c)
    python -m tests.integration.local.grpc_app h2c PORT        an h2c server for curl
    python -m tests.integration.local.grpc_app client TARGET N one channel, N calls of each kind

The gRPC service `lw.Echo` carries raw bytes (no protobuf needed): `Unary` answers the pod's
name, `Metadata` returns the `x-lw-sent` request metadata as trailing `x-lw-echo`, `Slow`
answers after 2 s (to let a deadline expire), `Fail` aborts with INVALID_ARGUMENT,
`ServerStream` answers N messages, `ClientStream` the total length it received, `Bidi` echoes
each message with the pod's name. The client
prints one JSON line: calls answered per pod, and what each kind of call returned.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator

import grpc

POD = os.environ.get("POD_NAME", "?").encode()
SERVICE = "lw.Echo"


def _unary(request: bytes, context: grpc.ServicerContext) -> bytes:
    if request:  # a named call (the policy matrix): say that it reached the app
        print(f"seen grpc {request.decode(errors='replace')}", flush=True)
    return POD


def _echo_metadata(request: bytes, context: grpc.ServicerContext) -> bytes:
    if request:  # a named call (the policy matrix)
        print(f"seen grpc {request.decode(errors='replace')}", flush=True)
    sent = dict(context.invocation_metadata()).get("x-lw-sent", "")
    context.set_trailing_metadata((("x-lw-echo", sent),))
    return POD


def _slow(request: bytes, context: grpc.ServicerContext) -> bytes:
    time.sleep(2.0)
    return POD


def _fail(request: bytes, context: grpc.ServicerContext) -> bytes:
    context.abort(grpc.StatusCode.INVALID_ARGUMENT, "asked to fail")
    raise AssertionError("unreachable")


def _server_stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    for i in range(int(request or b"3")):
        yield POD + b":%d" % i


def _client_stream(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
    return b"%d" % sum(len(r) for r in requests)


def _bidi(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
    for r in requests:
        yield POD + b"<" + r


def serve(port: int) -> None:
    from concurrent import futures

    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(_unary),
        "Metadata": grpc.unary_unary_rpc_method_handler(_echo_metadata),
        "Slow": grpc.unary_unary_rpc_method_handler(_slow),
        "Fail": grpc.unary_unary_rpc_method_handler(_fail),
        "ServerStream": grpc.unary_stream_rpc_method_handler(_server_stream),
        "ClientStream": grpc.stream_unary_rpc_method_handler(_client_stream),
        "Bidi": grpc.stream_stream_rpc_method_handler(_bidi),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                         options=[("grpc.max_receive_message_length", 8 << 20)])  # fmt: skip
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, handlers)])
    server.add_insecure_port(f"0.0.0.0:{port}")
    server.start()
    print(f"grpc_app listening on {port}", flush=True)
    server.wait_for_termination()


def client(target: str, calls: int) -> None:
    out: dict[str, object] = {}
    with grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 8 << 20)]
                               ) as channel:  # fmt: skip
        unary = channel.unary_unary(f"/{SERVICE}/Unary")
        pods = Counter(unary(b"", timeout=10).decode() for _ in range(calls))
        out["unary_by_pod"] = dict(pods)
        try:
            channel.unary_unary(f"/{SERVICE}/Fail")(b"", timeout=10)
            out["fail"] = "no error"
        except grpc.RpcError as exc:
            out["fail"] = exc.code().name
        stream = channel.unary_stream(f"/{SERVICE}/ServerStream")(b"5", timeout=10)
        out["server_stream"] = [m.decode().split(":")[1] for m in stream]
        big = b"m" * (4 << 20)
        upload = channel.stream_unary(f"/{SERVICE}/ClientStream")
        out["client_stream"] = upload(iter([big, b"xyz"]), timeout=20).decode()
        bidi = channel.stream_stream(f"/{SERVICE}/Bidi")
        out["bidi"] = [m.decode().split("<")[1] for m in bidi(iter([b"a", b"b", b"c"]), timeout=10)]
        _, call = channel.unary_unary(f"/{SERVICE}/Metadata").with_call(
            b"", timeout=10, metadata=(("x-lw-sent", "hello"),)
        )
        out["metadata"] = dict(call.trailing_metadata()).get("x-lw-echo")
        try:
            channel.unary_unary(f"/{SERVICE}/Slow")(b"", timeout=0.3)
            out["deadline"] = "no error"
        except grpc.RpcError as exc:
            out["deadline"] = exc.code().name
        try:
            channel.unary_unary(f"/{SERVICE}/Nope")(b"", timeout=10)
            out["unimplemented"] = "no error"
        except grpc.RpcError as exc:
            out["unimplemented"] = exc.code().name
    print(json.dumps(out), flush=True)


async def h2c(port: int) -> None:
    """A minimal h2c server: every request gets 200 and `POD_NAME path` as its body."""
    import h2.config
    import h2.connection
    import h2.events

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        while data := await reader.read(65536):
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    path = dict(ev.headers)[b":path"]
                    conn.send_headers(
                        ev.stream_id, [(b":status", b"200"), (b"content-type", b"text/plain")]
                    )
                    conn.send_data(ev.stream_id, POD + b" " + path + b"\n", end_stream=True)
                elif isinstance(ev, h2.events.DataReceived):
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            writer.write(conn.data_to_send())
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "0.0.0.0", port)
    print(f"h2c listening on {port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "server":
        serve(int(sys.argv[2]))
    elif kind == "h2c":
        asyncio.run(h2c(int(sys.argv[2])))
    else:
        client(sys.argv[2], int(sys.argv[3]))
