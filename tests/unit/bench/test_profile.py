"""py-spy's collapsed stacks become the self-time and inclusive-time tables of the report."""

from __future__ import annotations

import pytest
from bench.profile import Syscalls, components, summarize

RAW = [
    "<module> (lacewing:8);main (/v/lacewing/cli/main.py:40);"
    "run (/usr/lib/python3.11/asyncio/runners.py:118) 60\n",
    "<module> (lacewing:8);main (/v/lacewing/cli/main.py:40);"
    "run (/usr/lib/python3.11/asyncio/runners.py:118);"
    "data_received (/v/lacewing/proxy/http1/server.py:200);"
    "_flush_up (/v/lacewing/proxy/http1/server.py:300) 30\n",
    "<module> (lacewing:8);main (/v/lacewing/cli/main.py:40);"
    "run (/usr/lib/python3.11/asyncio/runners.py:118);"
    "data_received (/v/lacewing/proxy/http1/server.py:200) 10\n",
    "not a stack line\n",
]


def test_self_time_names_the_event_loop_and_shortens_files() -> None:
    prof = summarize(RAW)
    assert prof.samples == 100
    assert [(h.function, round(h.share, 2)) for h in prof.self_time] == [
        ("event loop: uvloop C code + syscalls", 0.6),
        ("_flush_up (http1/server.py)", 0.3),
        ("data_received (http1/server.py)", 0.1),
    ]


def test_inclusive_time_drops_entry_frames_present_in_every_stack() -> None:
    prof = summarize(RAW)
    inclusive = {h.function: h.share for h in prof.inclusive}
    assert inclusive == pytest.approx(
        {"data_received (http1/server.py)": 0.4, "_flush_up (http1/server.py)": 0.3}
    )


def test_no_samples_gives_an_empty_profile() -> None:
    assert summarize([]).samples == 0
    assert summarize(["garbage\n"]).self_time == ()


def test_syscalls_per_request_by_group() -> None:
    counts = Syscalls(
        requests=1000, calls={"sendto": 2000, "writev": 10, "recvfrom": 2000, "epoll_wait": 250}
    )
    assert counts.per_request("writes") == 2.01
    assert counts.per_request("reads") == 2.0
    assert counts.per_request("polls") == 0.25
    assert counts.per_request() == 4.26


def test_shared_objects_are_grouped_into_components() -> None:
    parts = components(
        {
            "[kernel.kallsyms]": 0.5,
            "libpython3.11.so.1.0": 0.3,
            "parser.cpython-311-x86_64-linux-gnu.so": 0.05,
            "loop.cpython-311-x86_64-linux-gnu.so": 0.04,
            "libc.so.6": 0.02,
            "haproxy": 0.0,
            "libfoo.so": 0.09,
        }
    )
    assert parts == pytest.approx(
        {
            "kernel": 0.5,
            "Python interpreter": 0.3,
            "httptools (llhttp)": 0.05,
            "uvloop (libuv)": 0.04,
            "libc": 0.02,
            "HAProxy": 0.0,
            "other": 0.09,
        }
    )
