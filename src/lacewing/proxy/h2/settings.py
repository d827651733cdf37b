"""HTTP/2 limits: what a peer may do to us, on both ends of the proxy.

`H2Limits` is what a peer may do to us: concurrent streams it may open, the size of a header
list it may send, the per-stream and connection receive windows we grant, how many streams
per second it may reset before they are answered (each one costs us a pick and an upstream
stream: the "rapid reset" attack, CVE-2023-44487, opens and cancels them in a loop), how many
SETTINGS and PINGs a second it may send (each one makes us write an answer: the "settings
flood" and "ping flood" of CVE-2019-9512/9515), and how long a stream may go without a frame
either way (a stream that never ends, or a reader holding its window at zero, is reset).
The windows are also the bound on buffering: DATA is acknowledged (and the window reopened)
only once it has been passed on to the other side, so a connection never holds more than
`connection_window` bytes of one peer's DATA that the other peer has not taken (see
`h2.stream`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_LIMITS", "H2Limits"]


@dataclass(frozen=True, slots=True)
class H2Limits:
    max_concurrent_streams: int = 100
    max_header_list_size: int = 64 * 1024
    stream_window: int = 256 * 1024
    connection_window: int = 1024 * 1024
    # rapid reset (CVE-2023-44487): streams a client may reset before their answer, per second
    max_early_resets_per_s: int = 200
    # SETTINGS and PING frames a peer may send per second (each one is answered)
    max_control_per_s: int = 100
    # a stream with no frame either way for this long is reset (or answered 504)
    stream_idle_s: float = 300.0


DEFAULT_LIMITS = H2Limits()
