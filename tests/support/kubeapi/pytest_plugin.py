"""Fixtures: `kube_api`, a fresh emulated cluster per test, over one session-wide server.

The server (TLS material, thread, port, kubeconfig) starts once per session; each test gets
a new seeded `Cluster` swapped in, so the fixture costs about two milliseconds. At the end of
the test the cluster's watches are closed so no stream outlives its test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.kubeapi.testbed import KubeAPI, start_kube_api


@pytest.fixture(scope="session")
def _kube_api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeAPI]:
    api = start_kube_api(tmp_path_factory.mktemp("kubeapi"))
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def kube_api(_kube_api_server: KubeAPI) -> Iterator[KubeAPI]:
    _kube_api_server.reset()
    yield _kube_api_server
    _kube_api_server.cluster.store.close()
