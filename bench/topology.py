"""What the benchmark puts between the load generator and the backend: the rows, as data.

Every row is a `RowSpec` in `ROWS`: a key, a label, a family (`plain`, `tls` or `h2`, which
picks the HAProxy row it is compared with and, for `h2`, that the load is HTTP/2), a
`missing()` check that says why the row cannot run here
(or None), and a `start(sup, env)` function that starts the row's processes through the
`Supervisor` and returns a `Deployed`: the URL the load generator hits and the proxy processes
to sample, client-side first. A pair is always two processes, like two sidecars:

    load generator -> client-side proxy (outbound) -> server-side proxy (inbound) -> backend

The backend (nginx `return 200 "ok"`, or HAProxy `http-request return` when nginx is missing)
and the load generator share core `env.load_cpu`; the proxies of a pair share `env.proxy_cpu`.
The backend answers HTTP/1.1 on `env.backend_port` and HTTP/2 with prior knowledge (h2c) on
`env.backend_h2_port`; the `h2` rows speak h2c end to end (h2load -> pair -> backend), the
HAProxy h2 pair with `proto h2` on every bind and server line. The `h2-tls` rows do the same
with HTTP/2 inside mutual TLS (ALPN h2) between the two proxies of the pair.

The lacewing mTLS row (`start_lacewing_mtls`) runs the real identity path: a
`lacewing controller identity` on loopback issues both proxies' certificates (and one more, for
the handshake soak client, `Deployed.soak`); the HAProxy TLS pair it is measured against
(`start_haproxy_tls`) uses `env.pki()` from `tlsgen`.

The `-base` rows run the same lacewing pairs from another checkout (`--baseline EXE`, that
checkout's `lacewing` entry point), so an old tree and this one are compared in the same run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import BenchError, Child, Supervisor, free_port
from bench.tlsgen import SERVER_NAME, Pki, make_pki

__all__ = [
    "ROWS",
    "Deployed",
    "Env",
    "RowSpec",
    "SoakTarget",
    "start_backend",
]


@dataclass
class Env:
    """What every start function needs: the run's directory, cores, and the backend's port."""

    workdir: Path
    load_cpu: int
    proxy_cpu: int
    backend_port: int = 0
    backend_h2_port: int = 0
    baseline: str | None = None  # another checkout's `lacewing`, for the -base rows
    h2_streams: int = 10  # streams in flight per connection of the h2 rows' 16-connection runs
    _pki: Pki | None = field(default=None, repr=False)

    def pki(self) -> Pki:
        if self._pki is None:
            self._pki = make_pki(self.workdir / "pki")
        return self._pki


@dataclass(frozen=True)
class SoakTarget:
    """What the TLS handshake soak client needs to reach a meshed server-side proxy."""

    port: int
    server_name: str
    cert: Path
    key: Path
    ca: Path


@dataclass(frozen=True)
class Deployed:
    url: str
    proxies: tuple[Child, ...]  # client-side first; empty for the direct row
    soak: SoakTarget | None = None


@dataclass(frozen=True)
class RowSpec:
    key: str
    label: str
    family: str  # "plain", "tls", "h2" or "h2-tls": the HAProxy row of that family is the baseline
    missing: Callable[[], str | None]
    start: Callable[[Supervisor, Env], Deployed]


# --- backend -------------------------------------------------------------------------------

_NGINX_CONF = """\
master_process off;
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    client_body_temp_path {dir}/nginx-tmp; proxy_temp_path {dir}/nginx-tmp;
    fastcgi_temp_path {dir}/nginx-tmp; uwsgi_temp_path {dir}/nginx-tmp;
    scgi_temp_path {dir}/nginx-tmp;
    server {{
        listen 127.0.0.1:{port} reuseport;
        location / {{ return 200 "ok"; }}
    }}
    server {{
        listen 127.0.0.1:{h2port} http2;
        http2_max_requests 100000000;
        location / {{ return 200 "ok"; }}
    }}
}}
"""


def start_backend(sup: Supervisor, env: Env) -> str:
    """Start the fast backend on env.load_cpu; set env.backend_port; return what it is."""
    env.backend_port, env.backend_h2_port = free_port(), free_port()
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )
    if nginx is not None:
        (env.workdir / "nginx-tmp").mkdir(exist_ok=True)
        conf = env.workdir / "nginx.conf"
        conf.write_text(
            _NGINX_CONF.format(dir=env.workdir, port=env.backend_port, h2port=env.backend_h2_port)
        )
        child = sup.start(
            "backend-nginx", [nginx, "-c", str(conf), "-p", str(env.workdir)], cpu=env.load_cpu
        )
        sup.wait_tcp(child, env.backend_port)
        sup.wait_tcp(child, env.backend_h2_port)
        return _version([nginx, "-v"])
    conf = env.workdir / "backend-haproxy.cfg"
    conf.write_text(
        _HAPROXY_HEAD + f"frontend backend\n    bind 127.0.0.1:{env.backend_port}\n"
        f"    bind 127.0.0.1:{env.backend_h2_port} proto h2\n"
        '    http-request return status 200 content-type text/plain string "ok"\n'
    )
    child = sup.start("backend-haproxy", [_haproxy(), "-f", str(conf), "-db"], cpu=env.load_cpu)
    sup.wait_tcp(child, env.backend_port)
    return "HAProxy http-request return (nginx not installed)"


def _version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "unknown"
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0] if text else "unknown"


# --- direct --------------------------------------------------------------------------------


def start_direct(sup: Supervisor, env: Env) -> Deployed:
    return Deployed(f"http://127.0.0.1:{env.backend_port}/", ())


def start_direct_h2(sup: Supervisor, env: Env) -> Deployed:
    return Deployed(f"http://127.0.0.1:{env.backend_h2_port}/", ())


# --- HAProxy pairs --------------------------------------------------------------------------

_HAPROXY_HEAD = """\
global
    nbthread 1
    maxconn 4096
    tune.ssl.default-dh-param 2048
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
"""


def _haproxy() -> str:
    path = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not os.path.exists(path):
        raise BenchError("haproxy is not installed", hint="apt-get install haproxy")
    return path


def _haproxy_missing() -> str | None:
    if shutil.which("haproxy") or os.path.exists("/usr/sbin/haproxy"):
        return None
    return "haproxy is not installed (apt-get install haproxy)"


def _start_haproxy(
    sup: Supervisor,
    env: Env,
    name: str,
    listen: int,
    upstream: int,
    bind_opts: str,
    server_opts: str,
    frontend_extra: str = "",
) -> Child:
    conf = env.workdir / f"{name}.cfg"
    conf.write_text(
        _HAPROXY_HEAD
        + f"frontend in\n    bind 127.0.0.1:{listen}{bind_opts}\n{frontend_extra}"
        + "    default_backend out\n"
        + f"backend out\n    server up 127.0.0.1:{upstream}{server_opts}\n"
    )
    child = sup.start(name, [_haproxy(), "-f", str(conf), "-db"], cpu=env.proxy_cpu)
    sup.wait_tcp(child, listen)
    return child


def start_haproxy(sup: Supervisor, env: Env) -> Deployed:
    inbound_port, outbound_port = free_port(), free_port()
    inbound = _start_haproxy(sup, env, "haproxy-inbound", inbound_port, env.backend_port, "", "")
    outbound = _start_haproxy(sup, env, "haproxy-outbound", outbound_port, inbound_port, "", "")
    return Deployed(f"http://127.0.0.1:{outbound_port}/", (outbound, inbound))


def start_haproxy_h2(sup: Supervisor, env: Env) -> Deployed:
    """HTTP/2 (h2c) on both sides of both proxies: streams multiplexed end to end."""
    inbound_port, outbound_port = free_port(), free_port()
    h2 = " proto h2"
    inbound = _start_haproxy(
        sup, env, "haproxy-h2-inbound", inbound_port, env.backend_h2_port, h2, h2
    )
    outbound = _start_haproxy(sup, env, "haproxy-h2-outbound", outbound_port, inbound_port, h2, h2)
    return Deployed(f"http://127.0.0.1:{outbound_port}/", (outbound, inbound))


def start_haproxy_h2_tls(sup: Supervisor, env: Env) -> Deployed:
    """h2c from the client and to the backend; between the two, HTTP/2 inside mutual TLS
    (ALPN h2): streams multiplexed over the pooled TLS connections."""
    pki = env.pki()
    inbound_port, outbound_port = free_port(), free_port()
    h2 = " proto h2"
    inbound = _start_haproxy(
        sup, env, "haproxy-h2-tls-inbound", inbound_port, env.backend_h2_port,
        f" ssl crt {pki.server} ca-file {pki.ca} verify required alpn h2", h2,
    )  # fmt: skip
    outbound = _start_haproxy(
        sup, env, "haproxy-h2-tls-outbound", outbound_port, inbound_port, h2,
        f" ssl crt {pki.client} ca-file {pki.ca} verify required alpn h2"
        f" sni str({SERVER_NAME}) verifyhost {SERVER_NAME}",
    )  # fmt: skip
    return Deployed(f"http://127.0.0.1:{outbound_port}/", (outbound, inbound))


def start_haproxy_tls_h2mesh(sup: Supervisor, env: Env) -> Deployed:
    """HTTP/1 from the client and to the backend, HTTP/2 inside mutual TLS (ALPN h2) between
    the two proxies: the other way two meshed proxies can carry HTTP/1 (Linkerd's)."""
    pki = env.pki()
    inbound_port, outbound_port = free_port(), free_port()
    inbound = _start_haproxy(
        sup, env, "haproxy-tls-h2mesh-inbound", inbound_port, env.backend_port,
        f" ssl crt {pki.server} ca-file {pki.ca} verify required alpn h2", "",
    )  # fmt: skip
    outbound = _start_haproxy(
        sup, env, "haproxy-tls-h2mesh-outbound", outbound_port, inbound_port, "",
        f" ssl crt {pki.client} ca-file {pki.ca} verify required alpn h2"
        f" sni str({SERVER_NAME}) verifyhost {SERVER_NAME}",
        # an HTTP/2 answer has no reason phrase, and h2load --h1 (the fixed-rate step)
        # counts `HTTP/1.1 200 ` as no status at all
        "    http-response set-status 200 reason OK if { status 200 }\n",
    )  # fmt: skip
    return Deployed(f"http://127.0.0.1:{outbound_port}/", (outbound, inbound))


def start_haproxy_tls(sup: Supervisor, env: Env) -> Deployed:
    """Client side originates mutual TLS (pooled, reused), server side terminates it."""
    pki = env.pki()
    inbound_port, outbound_port = free_port(), free_port()
    inbound = _start_haproxy(
        sup,
        env,
        "haproxy-tls-inbound",
        inbound_port,
        env.backend_port,
        f" ssl crt {pki.server} ca-file {pki.ca} verify required",
        "",
    )
    outbound = _start_haproxy(
        sup,
        env,
        "haproxy-tls-outbound",
        outbound_port,
        inbound_port,
        "",
        f" ssl crt {pki.client} ca-file {pki.ca} verify required"
        f" sni str({SERVER_NAME}) verifyhost {SERVER_NAME}",
    )
    return Deployed(f"http://127.0.0.1:{outbound_port}/", (outbound, inbound))


# --- lacewing pairs -------------------------------------------------------------------------


def _lacewing() -> str:
    """The `lacewing` entry point of the interpreter running the benchmark (the venv's)."""
    beside = Path(sys.executable).with_name("lacewing")
    return str(beside) if beside.exists() else (shutil.which("lacewing") or "lacewing")


def _lacewing_missing() -> str | None:
    try:
        done = subprocess.run(
            [_lacewing(), "proxy", "--help"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError as exc:
        return f"`lacewing` cannot be run: {exc}"
    if done.returncode != 0:
        return "`lacewing proxy` is not available in this checkout"
    return None


def _start_lacewing_proxy(
    sup: Supervisor,
    env: Env,
    name: str,
    side: str,
    listen: int,
    upstream: int,
    extra_env: dict[str, str] | None = None,
    exe: str | None = None,
) -> Child:
    """One `lacewing proxy` process; `side` ('INBOUND' or 'OUTBOUND') is the listener used.

    The unused listener and the admin server get ports of their own, so the two processes of a
    pair never collide. Fixed destinations replace SO_ORIGINAL_DST on loopback.
    """
    admin = free_port()
    ports = {"INBOUND": free_port(), "OUTBOUND": free_port(), side: listen}
    variables = {
        "LACEWING_PROXY_INBOUND_LISTEN_ADDR": f"127.0.0.1:{ports['INBOUND']}",
        "LACEWING_PROXY_OUTBOUND_LISTEN_ADDR": f"127.0.0.1:{ports['OUTBOUND']}",
        "LACEWING_PROXY_ADMIN_LISTEN_ADDR": f"127.0.0.1:{admin}",
        f"LACEWING_PROXY_{side}_FIXED_DST": f"127.0.0.1:{upstream}",
        **(extra_env or {}),
    }
    child = sup.start(name, [exe or _lacewing(), "proxy"], cpu=env.proxy_cpu, env=variables)
    sup.wait_http_ok(child, admin, "/ready")
    sup.wait_tcp(child, listen)
    return child


def _baseline_exe(env: Env) -> str:
    if env.baseline is None:
        raise BenchError("a -base row needs --baseline (another checkout's `lacewing`)")
    return env.baseline


def start_lacewing(sup: Supervisor, env: Env, *, exe: str | None = None) -> Deployed:
    inbound_port, outbound_port = free_port(), free_port()
    tag = "-base" if exe else ""
    inbound = _start_lacewing_proxy(
        sup, env, f"lacewing{tag}-inbound", "INBOUND", inbound_port, env.backend_port, exe=exe
    )
    outbound = _start_lacewing_proxy(
        sup, env, f"lacewing{tag}-outbound", "OUTBOUND", outbound_port, inbound_port, exe=exe
    )
    return Deployed(f"http://127.0.0.1:{outbound_port}/", (outbound, inbound))


def start_lacewing_base(sup: Supervisor, env: Env) -> Deployed:
    return start_lacewing(sup, env, exe=_baseline_exe(env))


def start_lacewing_h2(sup: Supervisor, env: Env, *, exe: str | None = None) -> Deployed:
    inbound_port, outbound_port = free_port(), free_port()
    tag = "-base" if exe else ""
    inbound = _start_lacewing_proxy(
        sup, env, f"lacewing{tag}-h2-inbound", "INBOUND", inbound_port, env.backend_h2_port,
        exe=exe,
    )  # fmt: skip
    outbound = _start_lacewing_proxy(
        sup, env, f"lacewing{tag}-h2-outbound", "OUTBOUND", outbound_port, inbound_port,
        exe=exe,
    )  # fmt: skip
    return Deployed(f"http://127.0.0.1:{outbound_port}/", (outbound, inbound))


def start_lacewing_h2_base(sup: Supervisor, env: Env) -> Deployed:
    return start_lacewing_h2(sup, env, exe=_baseline_exe(env))


MESH_NAMESPACE = "bench"
_TOKEN_KEY = b"lacewing-benchmark-local-token-key"


def _lacewing_mtls_missing() -> str | None:
    reason = _lacewing_missing()
    if reason is not None:
        return reason
    try:
        from lacewing.proxy.identity import sidecar  # noqa: F401  (mTLS is in this checkout)
    except ImportError:
        return "this checkout's proxy has no workload identity (lacewing.proxy.identity.sidecar)"
    return None


def _start_identity_controller(
    sup: Supervisor, env: Env, base: bool = False, tag: str = ""
) -> tuple[int, str, Path]:
    """The identity CA on loopback, with a fresh trust anchor and issuer, local tokens.

    Returns its port, the trust anchor PEM the proxies verify with, and its files' directory.
    """
    from lacewing.tls.pki import generate_issuer, generate_trust_anchor

    files = env.workdir / (("mesh-base" if base else "mesh") + tag)
    issuer_dir = files / "issuer"
    issuer_dir.mkdir(parents=True)
    anchor = generate_trust_anchor()
    issuer = generate_issuer(anchor)
    (issuer_dir / "tls.crt").write_text(issuer.cert_pem)
    (issuer_dir / "tls.key").write_text(issuer.key_pem)
    (files / "ca.crt").write_text(anchor.cert_pem)
    (files / "token.key").write_bytes(_TOKEN_KEY)
    for path in (issuer_dir / "tls.key", files / "token.key"):
        path.chmod(0o600)
    port = free_port()
    argv = [
        _lacewing(), "controller", "identity", "--issuer-dir", str(issuer_dir),
        "--trust-anchors-file", str(files / "ca.crt"), "--validator", "local",
        "--local-token-key-file", str(files / "token.key"), "--listen-addr", f"127.0.0.1:{port}",
    ]  # fmt: skip
    child = sup.start(f"identity-controller{'-base' if base else ''}{tag}", argv, cpu=env.load_cpu)
    sup.wait_tcp(child, port, timeout_s=20)
    return port, anchor.cert_pem, files


def _identity_env(files: Path, controller: int, anchors: str, account: str) -> dict[str, str]:
    from lacewing.core.identity import mint_local_token

    token = files / f"token-{account}"
    token.write_text(mint_local_token(_TOKEN_KEY, MESH_NAMESPACE, account))
    token.chmod(0o600)
    return {
        "LACEWING_POD_NAMESPACE": MESH_NAMESPACE,
        "LACEWING_POD_SERVICE_ACCOUNT": account,
        "LACEWING_IDENTITY_ADDR": f"127.0.0.1:{controller}",
        "LACEWING_IDENTITY_TRUST_ANCHORS": anchors,
        "LACEWING_IDENTITY_TOKEN_FILE": str(token),
    }


def _soak_client(files: Path, controller: int, anchors: str) -> tuple[Path, Path, Path]:
    """A client certificate from the run's identity controller, for the soak client."""
    import asyncio

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from lacewing.core.identity import (
        DEFAULT_TRUST_DOMAIN,
        Identity,
        identity_service_name,
        mint_local_token,
    )
    from lacewing.proxy.identity.client import IdentityClient
    from lacewing.tls.issuance import identity_subject

    me = Identity(MESH_NAMESPACE, "soak")
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(identity_subject(me.name))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(me.name), x509.UniformResourceIdentifier(me.spiffe_id)]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    service = identity_service_name("lacewing", DEFAULT_TRUST_DOMAIN)
    client = IdentityClient("127.0.0.1", controller, service, anchors)
    token = mint_local_token(_TOKEN_KEY, MESH_NAMESPACE, "soak")
    try:
        answer = asyncio.run(client.certify(me, token, csr))
    except Exception as exc:  # (any failure: the row says why)
        raise BenchError(f"no certificate for the soak client: {exc}") from None
    cert, key_file, ca = files / "soak.crt", files / "soak.key", files / "ca.crt"
    cert.write_text(answer.leaf_pem + "".join(answer.chain_pem))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return cert, key_file, ca


def start_lacewing_h2_mtls(sup: Supervisor, env: Env) -> Deployed:
    """The meshed pair carrying HTTP/2: h2c from the load generator and to the backend, HTTP/2
    multiplexed over mutual TLS (ALPN h2) between the two proxies."""
    return start_lacewing_mtls(sup, env, backend_port=env.backend_h2_port, tag="-h2")


def start_lacewing_mtls(sup: Supervisor, env: Env, *, exe: str | None = None,
                        backend_port: int | None = None, tag: str = "") -> Deployed:  # fmt: skip
    """Two meshed proxies: the outbound one originates mTLS to the inbound one's listener.

    Both get leaf certificates from a `lacewing controller identity` started here (local
    tokens, a trust anchor made for this run). `LACEWING_IDENTITY_PEERS` tells the outbound
    proxy that its fixed destination is the server-side proxy's identity, as service
    discovery would. The TLS connections between them are pooled, as HAProxy's are.
    """
    from lacewing.core.identity import Identity

    controller, anchors, files = _start_identity_controller(sup, env, exe is not None, tag)
    inbound_port, outbound_port = free_port(), free_port()
    server = Identity(MESH_NAMESPACE, "server")
    tag = ("-base" if exe else "") + tag
    inbound = _start_lacewing_proxy(
        sup, env, f"lacewing{tag}-mtls-inbound", "INBOUND", inbound_port,
        backend_port or env.backend_port, _identity_env(files, controller, anchors, "server"),
        exe=exe,
    )  # fmt: skip
    outbound = _start_lacewing_proxy(
        sup, env, f"lacewing{tag}-mtls-outbound", "OUTBOUND", outbound_port, inbound_port,
        {**_identity_env(files, controller, anchors, "client"),
         "LACEWING_IDENTITY_PEERS": f"127.0.0.1:{inbound_port}={server.name}"}, exe=exe,
    )  # fmt: skip
    if backend_port is not None:  # (the soak is an HTTP/1 client: the HTTP/1 row has it)
        return Deployed(f"http://127.0.0.1:{outbound_port}/", (outbound, inbound))
    cert, key, ca = _soak_client(files, controller, anchors)
    soak = SoakTarget(inbound_port, server.name, cert, key, ca)
    return Deployed(f"http://127.0.0.1:{outbound_port}/", (outbound, inbound), soak)


def start_lacewing_mtls_base(sup: Supervisor, env: Env) -> Deployed:
    return start_lacewing_mtls(sup, env, exe=_baseline_exe(env))


ROWS: tuple[RowSpec, ...] = (
    RowSpec("direct", "direct (no proxy)", "plain", lambda: None, start_direct),
    RowSpec("haproxy", "HAProxy pair, HTTP", "plain", _haproxy_missing, start_haproxy),
    RowSpec("lacewing", "lacewing pair, HTTP", "plain", _lacewing_missing, start_lacewing),
    RowSpec("haproxy-tls", "HAProxy pair, mTLS", "tls", _haproxy_missing, start_haproxy_tls),
    RowSpec(
        "lacewing-mtls", "lacewing pair, mTLS", "tls", _lacewing_mtls_missing, start_lacewing_mtls
    ),
    RowSpec(
        "haproxy-tls-h2mesh",
        "HAProxy pair, mTLS, HTTP/2 between the proxies",
        "tls",
        _haproxy_missing,
        start_haproxy_tls_h2mesh,
    ),
    RowSpec(
        "lacewing-base",
        "lacewing pair, HTTP, baseline tree",
        "plain",
        lambda: None,
        start_lacewing_base,
    ),
    RowSpec(
        "lacewing-mtls-base",
        "lacewing pair, mTLS, baseline tree",
        "tls",
        lambda: None,
        start_lacewing_mtls_base,
    ),
    RowSpec("direct-h2", "direct h2c (no proxy)", "h2", lambda: None, start_direct_h2),
    RowSpec("haproxy-h2", "HAProxy pair, HTTP/2", "h2", _haproxy_missing, start_haproxy_h2),
    RowSpec("lacewing-h2", "lacewing pair, HTTP/2", "h2", _lacewing_missing, start_lacewing_h2),
    RowSpec(
        "haproxy-h2-tls",
        "HAProxy pair, HTTP/2 over mTLS",
        "h2-tls",
        _haproxy_missing,
        start_haproxy_h2_tls,
    ),
    RowSpec(
        "lacewing-h2-mtls",
        "lacewing pair, HTTP/2 over mTLS",
        "h2-tls",
        _lacewing_mtls_missing,
        start_lacewing_h2_mtls,
    ),
    RowSpec(
        "lacewing-h2-base",
        "lacewing pair, HTTP/2, baseline tree",
        "h2",
        lambda: None,
        start_lacewing_h2_base,
    ),
)
