"""The proxy's client for the identity service: one `POST /v1/certify` over verified TLS.

`IdentityClient.certify(identity, token, csr_pem)` opens a TLS connection to the identity
service (verified against the trust anchors, with the service's own identity name as the
expected server name), sends one HTTP/1.1 request with `Connection: close`, reads the whole
answer and closes. A certify call happens once per ~17 hours per proxy, so there is no pool
and no HTTP library: the request is built by hand and the response parsed with the stdlib
(status line, headers up to a blank line, body to EOF, capped at 256 KiB). The service is
verified against the current trust bundle (`TrustBundle`: during an anchor rotation the
service's certificate moves to the new anchor while the proxy runs).

Any failure (cannot connect, TLS refused, timeout, non-200, body not the documented JSON)
raises IdentityError with the service's own message where it gave one; the caller (the
renewal loop) decides when to retry.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from lacewing.core.identity import Identity
from lacewing.errors import IdentityError
from lacewing.tls.bundle import TrustBundle

if TYPE_CHECKING:
    from lacewing.proxy.metrics.control import ControlStats

__all__ = ["CertifyResponse", "IdentityClient"]

_MAX_BODY = 256 * 1024


@dataclass(frozen=True)
class CertifyResponse:
    leaf_pem: str
    chain_pem: list[str]
    valid_until: datetime


class IdentityClient:
    control: ControlStats | None = None  # its `control_*` metrics (set by the proxy)

    def __init__(
        self,
        host: str,
        port: int,
        server_identity: Identity,
        trust_anchors: TrustBundle | str,
        *,
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port = host, port
        self.server_identity = server_identity
        self.timeout = timeout
        self.bundle = (
            trust_anchors if isinstance(trust_anchors, TrustBundle) else TrustBundle(trust_anchors)
        )
        self._generation = 0
        self._built: ssl.SSLContext | None = None

    @property
    def _context(self) -> ssl.SSLContext:
        """Verifies the service against the current trust bundle (rebuilt when it changed)."""
        pem = self.bundle.pem()
        if self._built is None or self._generation != self.bundle.generation:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.load_verify_locations(cadata=pem)
            context.check_hostname = True
            self._built, self._generation = context, self.bundle.generation
        return self._built

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def certify(self, identity: Identity, token: str, csr_pem: str) -> CertifyResponse:
        body = json.dumps({"identity": identity.name, "token": token, "csr": csr_pem}).encode()
        try:
            status, payload = await asyncio.wait_for(self._counted(body), self.timeout)
        except TimeoutError:
            raise IdentityError(
                f"identity service at {self.address} did not answer within {self.timeout:g}s"
            ) from None
        except ssl.SSLError as exc:
            raise IdentityError(
                f"TLS to the identity service at {self.address} failed: {exc.reason or exc}",
                hint="the proxy's trust anchors must be the ones the identity issuer chains to",
            ) from None
        except OSError as exc:
            raise IdentityError(
                f"cannot reach the identity service at {self.address}: {exc.strerror or exc}"
            ) from None
        try:
            answer = json.loads(payload)
        except ValueError:
            answer = None
        if status != 200:
            message = answer.get("error") if isinstance(answer, dict) else None
            raise IdentityError(f"identity service refused ({status}): {message or 'no reason'}")
        return _parse_answer(answer)

    async def _counted(self, body: bytes) -> tuple[int, bytes]:
        """`_post`, counted in `control` (`control_*` metrics) when the proxy set it."""
        control = self.control
        if control is None:
            return await self._post(body)
        started = control.request()
        try:
            status, payload = await self._post(body)
        except BaseException:
            control.response(0, started)  # no answer (timed out, refused, TLS failed)
            raise
        control.response(status, started)
        return status, payload

    async def _post(self, body: bytes) -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection(
            self.host, self.port, ssl=self._context, server_hostname=self.server_identity.name
        )
        try:
            head = (
                f"POST /v1/certify HTTP/1.1\r\nHost: {self.server_identity.name}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
            raw = await reader.read(_MAX_BODY + 8192)
            while chunk := await reader.read(65536):
                raw += chunk
                if len(raw) > _MAX_BODY + 8192:
                    raise IdentityError("the identity service's answer is too large")
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (OSError, ssl.SSLError):
                pass
        head_bytes, sep, payload = raw.partition(b"\r\n\r\n")
        status_line = head_bytes.split(b"\r\n", 1)[0].split()
        if not sep or len(status_line) < 2 or not status_line[1].isdigit():
            raise IdentityError("the identity service's answer is not HTTP")
        return int(status_line[1]), payload


def _parse_answer(answer: object) -> CertifyResponse:
    if not isinstance(answer, dict):
        raise IdentityError("the identity service's answer is not a JSON object")
    leaf, chain, until = answer.get("leaf"), answer.get("chain"), answer.get("valid_until")
    if not (
        isinstance(leaf, str)
        and isinstance(chain, list)
        and all(isinstance(c, str) for c in chain)
        and isinstance(until, str)
    ):
        raise IdentityError("the identity service's answer lacks leaf, chain or valid_until")
    try:
        valid_until = datetime.fromisoformat(until.replace("Z", "+00:00"))
    except ValueError:
        raise IdentityError(f"valid_until {until!r} is not an RFC 3339 time") from None
    return CertifyResponse(leaf, list(chain), valid_until)
