"""The test bed's controllers and its kubelet.

- `controllers.Kubelet`: what kube-controller-manager and the scheduler do (Deployments ->
  ReplicaSets -> Pods bound to the one node, EndpointSlices), plus `mark_ready`, the fake
  kubelet that only flips Pods to Ready, for tests that run nothing.
- `node.NodeRuntime`: a real kubelet for the same node. It runs every Pod as processes in
  network namespaces (`network.py`, `pods.py`, `containers.py`, `launch.py`), images mapped
  to programs (`images.py`), env and volumes from the spec (`envs.py`, `volumes.py`),
  securityContext as setpriv (`security.py`), probes (`probes.py`), Services as kube-proxy
  DNAT rules and hosts files (`services.py`), and relays that let the API server and the
  pods reach each other (`relay.py`). It needs root.
"""

from __future__ import annotations

from tests.support.kubeapi.kubelet.controllers import (
    NODE_IP,
    NODE_NAME,
    NODE_POD_CIDR,
    Admit,
    Kubelet,
    node_object,
    template_hash,
)

__all__ = [
    "NODE_IP",
    "NODE_NAME",
    "NODE_POD_CIDR",
    "Admit",
    "Kubelet",
    "node_object",
    "template_hash",
]
