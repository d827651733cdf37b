"""A meshed proxy reads its policy over mutual TLS and checks whose certificate it is.

The policy controller's stream server listens with a certificate from the same issuer
(`controller.destination.tls.serving_context`, as the local runtime makes it); the meshed
proxy gets its own from a real identity service. The default policy is deny and the
controller allows loopback clients, so the first request's status says whether the policy
came over the stream: 200 when the proxy reached the controller as `lacewing-policy`, 403
(the default) when the controller presents another identity or speaks plaintext.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.unit.controller.identity.running import RunningIdentity
from tests.unit.proxy.identity.test_sidecar import _identity
from tests.unit.proxy.policy.test_enforcement import LOOPBACK_AUTHZ, App, Bed, _pod, _server

from lacewing.controller.destination.tls import serving_context
from lacewing.controller.policy import Hub, PolicyServer, index_from_objects
from lacewing.core.identity import DESTINATION_SERVICE_ACCOUNT, POLICY_SERVICE_ACCOUNT, Identity
from lacewing.core.policy_index import PolicyConfig
from lacewing.proxy.config import load
from lacewing.proxy.identity.sidecar import MeshedProxyServer


@pytest.mark.parametrize(
    ("served_as", "status"),
    [(POLICY_SERVICE_ACCOUNT, 200), (DESTINATION_SERVICE_ACCOUNT, 403), (None, 403)],
    ids=["policy-identity", "wrong-identity", "plaintext"],
)
async def test_the_policy_stream_is_mutual_tls_to_the_policy_identity(
    identity_server: RunningIdentity, tmp_path: Path, served_as: str | None, status: int
) -> None:
    app = App()
    await app.start()
    anchors = tmp_path / "anchors.pem"
    anchors.write_text(identity_server.pki.anchors_pem)
    context = None
    if served_as is not None:
        me = Identity("lacewing", served_as)
        context = serving_context(identity_server.issuer_dir, anchors, me)
    hub = Hub()
    index, _ = index_from_objects(
        [_server(app.port), *LOOPBACK_AUTHZ], [_pod(app.port)], [], PolicyConfig()
    )
    hub.publish(index)
    policy = PolicyServer(hub, "127.0.0.1", 0, ssl_context=context, heartbeat=0.2)
    await policy.start()
    config = load(
        {
            "LACEWING_PROXY_INBOUND_LISTEN_ADDR": "127.0.0.1:0",
            "LACEWING_PROXY_OUTBOUND_LISTEN_ADDR": "127.0.0.1:0",
            "LACEWING_PROXY_ADMIN_LISTEN_ADDR": "127.0.0.1:0",
            "LACEWING_PROXY_SHUTDOWN_GRACE_PERIOD": "100ms",
            "LACEWING_PROXY_INBOUND_FIXED_DST": f"127.0.0.1:{app.port}",
            "LACEWING_PROXY_POLICY_ADDR": f"127.0.0.1:{policy.bound_port}",
            "LACEWING_PROXY_POLICY_WAIT": "2s",
            "LACEWING_PROXY_POD_NAME": "web-0",
            "LACEWING_PROXY_POD_NAMESPACE": "shop",
            "LACEWING_PROXY_DEFAULT_INBOUND_POLICY": "deny",
        }
    )
    proxy = MeshedProxyServer(config, _identity(identity_server, tmp_path))
    await proxy.start()
    try:
        assert proxy.ready
        assert await Bed(hub, app, proxy).get() == status
        assert (app.received > 0) == (status == 200)
    finally:
        await proxy.shutdown()
        await policy.stop()
        await app.stop()
