"""Bearer tokens, denials (403 and SelfSubjectAccessReview) and TokenReview."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from lightkube import ApiError, Client, KubeConfig
from lightkube.models.authentication_v1 import TokenReviewSpec
from lightkube.models.authorization_v1 import ResourceAttributes, SelfSubjectAccessReviewSpec
from lightkube.resources.authentication_v1 import TokenReview
from lightkube.resources.authorization_v1 import SelfSubjectAccessReview
from lightkube.resources.core_v1 import ConfigMap, Secret
from tests.support.kubeapi import KubeAPI


def _client_with_token(kube_api: KubeAPI, token: str) -> Client:
    """A client for the same cluster that presents another bearer token."""
    config = yaml.safe_load(kube_api.kubeconfig.read_text())
    config["users"][0]["user"] = {"token": token}
    return Client(config=KubeConfig.from_dict(config))


def test_wrong_token_is_401(kube_api: KubeAPI) -> None:
    client = _client_with_token(kube_api, "not-the-token")
    with pytest.raises(ApiError) as denied:
        client.get(ConfigMap, "x", namespace="default")
    assert denied.value.status.code == 401
    client.close()


def test_registered_token_authenticates_requests(kube_api: KubeAPI) -> None:
    kube_api.register_token("sa-token", "system:serviceaccount:lacewing:identity")
    client = _client_with_token(kube_api, "sa-token")
    assert client.get(ConfigMap, "extension-apiserver-authentication", namespace="kube-system")
    client.close()


def _review(
    client: Any, verb: str, resource: str, group: str = "", namespace: str | None = None
) -> bool:
    ssar = SelfSubjectAccessReview(
        spec=SelfSubjectAccessReviewSpec(
            resourceAttributes=ResourceAttributes(
                verb=verb, resource=resource, group=group, namespace=namespace
            )
        )
    )
    return bool(client.create(ssar).status.allowed)


def test_access_review_and_denials_agree(client: Any, kube_api: KubeAPI) -> None:
    assert _review(client, "create", "secrets", namespace="default")
    kube_api.deny("create", "secrets", namespace="default")
    assert not _review(client, "create", "secrets", namespace="default")
    assert _review(client, "create", "secrets", namespace="other")
    assert _review(client, "get", "secrets", namespace="default")
    with pytest.raises(ApiError) as forbidden:
        client.create(
            Secret.from_dict({"metadata": {"name": "s"}, "stringData": {"a": "b"}}),
            namespace="default",
        )
    assert forbidden.value.status.code == 403
    assert 'cannot create resource "secrets"' in str(forbidden.value.status.message)
    kube_api.deny("list", "customresourcedefinitions", group="apiextensions.k8s.io")
    assert not _review(client, "list", "customresourcedefinitions", group="apiextensions.k8s.io")


def _token_review(client: Any, token: str, audiences: list[str] | None = None) -> Any:
    return client.create(TokenReview(spec=TokenReviewSpec(token=token, audiences=audiences)))


def test_token_review(client: Any, kube_api: KubeAPI) -> None:
    kube_api.register_token(
        "proxy-token",
        "system:serviceaccount:shop:web",
        ("system:serviceaccounts",),
        ("identity.l5d.io",),
    )
    ok = _token_review(client, "proxy-token", ["identity.l5d.io"]).status
    assert ok.authenticated is True
    assert ok.user.username == "system:serviceaccount:shop:web"
    assert ok.user.groups == ["system:serviceaccounts"]
    assert ok.audiences == ["identity.l5d.io"]
    assert _token_review(client, "proxy-token", ["other"]).status.authenticated is False
    unknown = _token_review(client, "forged").status
    assert unknown.authenticated is False and unknown.error


def test_token_request_mints_reviewable_tokens(client: Any, kube_api: KubeAPI) -> None:
    minted = kube_api.kubectl(
        "create", "token", "default", "-n", "default", "--audience", "identity.lacewing.io"
    )
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    review = _token_review(client, token, ["identity.lacewing.io"]).status
    assert review.authenticated is True
    assert review.user.username == "system:serviceaccount:default:default"
    assert "system:serviceaccounts:default" in review.user.groups
    assert _token_review(client, token, ["kubernetes"]).status.authenticated is False
    missing = kube_api.kubectl("create", "token", "ghost", "-n", "default")
    assert missing.returncode == 1 and 'serviceaccounts "ghost" not found' in missing.stderr
