"""The Kubernetes validator against the Kubernetes API test bed (real HTTPS, real TokenReview)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from tests.unit.proxy.identity.pki import Pki

from lacewing.controller.identity.service import IdentityService
from lacewing.core.identity import IDENTITY_AUDIENCE, Identity
from lacewing.errors import ClusterError
from lacewing.k8s.cluster import Cluster
from lacewing.k8s.tokenreview import KubernetesValidator, interpret
from lacewing.proxy.identity.keygen import make_csr, new_private_key

SA_WEB = "system:serviceaccount:shop:web"


@pytest.fixture
def validator(kube_api: Any) -> KubernetesValidator:
    return KubernetesValidator(Cluster.connect(str(kube_api.kubeconfig)))


async def test_a_projected_service_account_token_is_accepted(
    kube_api: Any, validator: KubernetesValidator
) -> None:
    kube_api.register_token("tok-web", SA_WEB, ("system:serviceaccounts",), (IDENTITY_AUDIENCE,))
    review = await validator.validate("tok-web")
    assert review.authenticated and review.username == SA_WEB


async def test_unknown_tokens_other_audiences_and_users_are_refused(
    kube_api: Any, validator: KubernetesValidator
) -> None:
    kube_api.register_token("tok-api-aud", SA_WEB, audiences=("https://kubernetes.default.svc",))
    kube_api.register_token("tok-alice", "alice", audiences=(IDENTITY_AUDIENCE,))
    unknown = await validator.validate("no-such-token")
    assert not unknown.authenticated and unknown.error
    other_audience = await validator.validate("tok-api-aud")
    assert not other_audience.authenticated
    alice = await validator.validate("tok-alice")
    assert not alice.authenticated and "not a service account" in alice.error


async def test_the_identity_service_issues_for_a_reviewed_token_only(
    kube_api: Any, validator: KubernetesValidator
) -> None:
    kube_api.register_token("tok-web", SA_WEB, audiences=(IDENTITY_AUDIENCE,))
    issuer = Pki.make().issuer
    now = datetime.now(UTC)
    service = IdentityService("cluster.local", validator, lambda: issuer, now=lambda: now)
    web = Identity("shop", "web")
    body = {"identity": web.name, "token": "tok-web", "csr": make_csr(new_private_key(), web)}
    assert (await service.certify(body)).status == 200
    admin = Identity("shop", "admin")
    stolen = {**body, "identity": admin.name, "csr": make_csr(new_private_key(), admin)}
    result = await service.certify(stolen)
    assert result.status == 403 and "token proves web.shop" in result.body["error"]
    assert (await service.certify({**body, "token": "forged"})).status == 401


async def test_an_unreachable_api_is_a_cluster_error_not_a_refusal(tmp_path: Any) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:1',"
        " insecure-skip-tls-verify: true}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
    )
    validator = KubernetesValidator(Cluster.connect(str(kubeconfig), timeout=2))
    with pytest.raises(ClusterError):
        await validator.validate("tok")


def test_interpret_requires_our_audience_when_the_server_names_audiences() -> None:
    status = {"authenticated": True, "user": {"username": SA_WEB}, "audiences": ["other"]}
    assert not interpret({"status": status}).authenticated
    assert interpret({"status": {**status, "audiences": [IDENTITY_AUDIENCE]}}).authenticated
