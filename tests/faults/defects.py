"""Every defect the fault suite and the fuzzers found: fixed (with the test that guards it) or
open (with the case that shows it). The report (`tests.faults.report`) prints this table, so
the committed report says what was found, not only what passed.

A new finding becomes a row here in the commit that fixes it, or in the one that gives up.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFECTS", "Defect"]


@dataclass(frozen=True)
class Defect:
    found_by: str
    case: str
    status: str  # "fixed" or "open"
    guard: str  # fixed: the regression test; open: what is left, and where


DEFECTS: tuple[Defect, ...] = (
    Defect(
        "fault suite: server proxy SIGKILL",
        "a GET 6 ms after a server proxy's kill got 502 (its connect was refused)",
        "fixed",
        "a refused connect goes once to the balancer's next pick: "
        "tests/unit/proxy/discovery/test_outbound_proxy.py",
    ),
    Defect(
        "fault suite: certificate expired",
        "436 of 436 requests went on over pooled mTLS connections after every certificate "
        "had expired",
        "fixed",
        "ExpiryWatch: tests/unit/proxy/identity/test_mesh.py::"
        "test_a_connection_ends_with_its_certificate_and_traffic_stops_closed",
    ),
    Defect(
        "fault suite: every handshake in the cluster",
        "ssl.cert_time_to_seconds imports _strptime lazily, unreadable after the drop to uid 2102",
        "fixed",
        "tests/unit/proxy/identity/test_expiry.py::"
        "test_certificate_times_read_as_openssl_writes_them",
    ),
    Defect(
        "fault suite: certificate expired",
        "renewal backed off past the expiry (recovery 25.7 s after identity returned)",
        "fixed",
        "tests/unit/proxy/identity/test_renewal.py::"
        "test_retries_never_sleep_past_the_expiry_and_come_every_5s_once_expired",
    ),
    Defect(
        "fuzzer: policy stream",
        "a non-list `except` in a policy killed that port's stream task",
        "fixed",
        "@example in tests/unit/fuzz/test_policy_fuzz.py",
    ),
    Defect(
        "fuzzer: identity certify fields",
        'csr "\\ud800" (JSON decodes lone surrogates): UnicodeEncodeError out of certify',
        "fixed",
        "400; tests/unit/controller/identity/test_service.py (and @example)",
    ),
    Defect(
        "fuzzer: local tokens",
        'token "v1:shop:web:\\ud800": UnicodeEncodeError in the MAC comparison',
        "fixed",
        "401; tests/unit/controller/identity/test_service.py (and @example)",
    ),
    Defect(
        "fuzzer: signed CSRs",
        "a validly signed CSR whose SAN is not DER GeneralNames: ValueError out of certify",
        "fixed",
        "400 (load_csr parses names and extensions); tests/unit/controller/identity/"
        "test_service.py (and @example)",
    ),
    Defect(
        "fuzzer: identity request bytes",
        "`Content-Length: \\xb2` ('²'.isdigit()) and 40,000 nested '[' (RecursionError): the "
        "connection closed with no answer",
        "fixed",
        "411 / 400; tests/unit/controller/identity/test_server.py::"
        "test_http_surface_is_small_and_answers_json (and @example)",
    ),
    Defect(
        "fuzzer: TokenReview answers",
        "a status, user or audiences of the wrong JSON type: TypeError / AttributeError",
        "fixed",
        "a refusal; tests/unit/k8s/test_tokenreview.py",
    ),
    Defect(
        "fault suite: connection flood",
        "srv-0's proxy RSS 41.5 -> 125.0 MiB, and it stayed (glibc kept the freed heap: "
        "bench/flood_memory.py, not a leak)",
        "fixed",
        "trimmed once the load passed (lacewing.proxy.memory): tests/unit/proxy/test_memory.py; "
        "the flood fault checks RSS returns within 32 MiB of before in 30 s",
    ),
    Defect(
        "bench/flood_memory.py (the flood, on loopback)",
        "a connection that closes while in detection having sent nothing is still relayed "
        "to the app as opaque TCP (a connect, then the EOF): when 10,000 idle clients leave "
        "at once the proxy makes 10,000 connections, RSS 48 (held) -> 90-98 MiB (+3 s)",
        "open",
        "proxy/accept.py `Accepted.eof_received`; dropping such a connection would change what "
        "a client that only half-closes sees; Linkerd's behaviour not checked",
    ),
    Defect(
        "fault suite: certificate expired (review of its cases)",
        "an outbound HTTP/2 mTLS connection closed at once when a certificate expired: the "
        "stream in flight got 502",
        "fixed",
        "GOAWAY and drain: tests/unit/proxy/identity/test_mesh.py::"
        "test_an_http2_connection_drains_when_its_certificate_expires",
    ),
    Defect(
        "fault suite: certificate expired (review of its cases)",
        "an opaque mTLS connection is closed when a certificate expires, bytes in flight "
        "or not (TLS close_notify, then FIN)",
        "open",
        "by design for now: opaque TCP has no request boundary to drain at; an application "
        "protocol over it sees its connection end (proxy/identity/mtls.py `_expire`)",
    ),
    Defect(
        "fault suite: trust anchor rotated (Kubernetes)",
        "injected proxies get the trust bundle inlined at injection, so a rotation there "
        "needs `kubectl rollout restart` after steps 1 and 3",
        "open",
        "not run on a cluster or the test bed; docs/identity.md has the procedure",
    ),
)
