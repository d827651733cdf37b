"""lightkube clients pointed at the per-test emulated cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from lightkube import AsyncClient, Client, KubeConfig
from tests.support.kubeapi import KubeAPI


@pytest.fixture
def client(kube_api: KubeAPI) -> Iterator[Client]:
    c = Client(config=KubeConfig.from_file(kube_api.kubeconfig), field_manager="lacewing-test")
    yield c
    c.close()


@pytest.fixture
async def aclient(kube_api: KubeAPI) -> AsyncIterator[AsyncClient]:
    c = AsyncClient(config=KubeConfig.from_file(kube_api.kubeconfig), field_manager="lacewing-test")
    yield c
    await c.close()
