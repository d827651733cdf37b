"""The destination controller: where does a logical destination live?

Sources reduce what they watch to a `directory.Directory`: `kubernetes.KubernetesSource`
(Services, EndpointSlices, Pods through `lacewing.k8s.watch`) or `local.LocalSource` (the local
runtime's registry file). `server.DestinationServer` streams each asked-for authority's
endpoints (and the HTTPRoutes `routes.accept` let through) as JSON lines and pushes every
change (see docs/destination.md and docs/traffic.md).
"""

from lacewing.controller.destination.directory import (
    Backend,
    Directory,
    PodInfo,
    RouteDoc,
    Service,
    ServicePort,
)
from lacewing.controller.destination.kubernetes import KubernetesSource, directory_from_objects
from lacewing.controller.destination.local import (
    LocalSource,
    directory_from_registry,
    registry_path,
)
from lacewing.controller.destination.server import DestinationServer, Hub

__all__ = [
    "Backend",
    "DestinationServer",
    "Directory",
    "Hub",
    "KubernetesSource",
    "LocalSource",
    "PodInfo",
    "RouteDoc",
    "Service",
    "ServicePort",
    "directory_from_objects",
    "directory_from_registry",
    "registry_path",
]
