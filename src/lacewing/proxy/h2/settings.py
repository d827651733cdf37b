"""HTTP/2 limits and the `h2` configuration both ends of the proxy use.

`H2Limits` is what a peer may do to us: concurrent streams it may open, the size of a header
list it may send, the per-stream and connection receive windows we grant, and how many
streams per second it may reset before they are answered (each one costs us a pick and an
upstream stream: the "rapid reset" attack, CVE-2023-44487, opens and cancels them in a loop).
The windows are also the bound on buffering: DATA is acknowledged (and the window reopened)
only once it has been passed on to the other side, so a connection never holds more than
`connection_window` bytes of one peer's DATA that the other peer has not taken (see
`h2.stream`).

`h2` validates headers and frames (a malformed frame is a `ProtocolError`, answered with
GOAWAY); normalizing outbound headers is switched off because every header we send is a
header `h2` has already validated on the way in.
"""

from __future__ import annotations

from dataclasses import dataclass

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.settings import SettingCodes

__all__ = ["DEFAULT_LIMITS", "H2Limits", "new_connection"]


@dataclass(frozen=True, slots=True)
class H2Limits:
    max_concurrent_streams: int = 100
    max_header_list_size: int = 64 * 1024
    stream_window: int = 256 * 1024
    connection_window: int = 1024 * 1024
    # rapid reset (CVE-2023-44487): streams a client may reset before their answer, per second
    max_early_resets_per_s: int = 200


DEFAULT_LIMITS = H2Limits()
_H2_DEFAULT_WINDOW = 65535


def new_connection(client_side: bool, limits: H2Limits) -> H2Connection:
    """A fresh `H2Connection` with our settings queued (call `data_to_send()` to send them)."""
    config = H2Configuration(
        client_side=client_side,
        header_encoding=None,
        validate_outbound_headers=False,
        normalize_outbound_headers=False,
        validate_inbound_headers=True,
    )
    conn = H2Connection(config=config)
    conn.local_settings = type(conn.local_settings)(
        client=client_side,
        initial_values={
            SettingCodes.MAX_CONCURRENT_STREAMS: limits.max_concurrent_streams,
            SettingCodes.MAX_HEADER_LIST_SIZE: limits.max_header_list_size,
            SettingCodes.INITIAL_WINDOW_SIZE: limits.stream_window,
        },
    )
    conn.initiate_connection()
    if limits.connection_window > _H2_DEFAULT_WINDOW:
        conn.increment_flow_control_window(limits.connection_window - _H2_DEFAULT_WINDOW)
    return conn
