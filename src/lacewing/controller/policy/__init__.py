"""The policy controller: which clients may reach which port of which pod.

Sources reduce what they watch to a `lacewing.core.policy_index.PolicyIndex`:
`kubernetes.KubernetesSource` (Servers, AuthorizationPolicies, MeshTLSAuthentications,
NetworkAuthentications, Pods and Namespaces through `lacewing.k8s.watch`) or
`local.LocalSource` (the local runtime's registry file plus a file of policy resources).
`server.PolicyServer` streams each asked-for (pod, port)'s compiled `PortPolicy` as JSON lines
and pushes every change; `admission.ValidatorServer` is the policy-validator webhook
(see docs/policy.md).
"""

from lacewing.controller.policy.admission import Validator, ValidatorServer
from lacewing.controller.policy.kubernetes import KubernetesSource, index_from_objects
from lacewing.controller.policy.local import LocalSource, index_from_local, pods_from_registry
from lacewing.controller.policy.server import Hub, PolicyServer

__all__ = [
    "Hub",
    "KubernetesSource",
    "LocalSource",
    "PolicyServer",
    "Validator",
    "ValidatorServer",
    "index_from_local",
    "index_from_objects",
    "pods_from_registry",
]
