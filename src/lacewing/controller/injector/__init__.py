"""The proxy injector: how a pod joins the mesh on Kubernetes.

    config.py     the annotations: inject on/off, configuration overrides as a table of
                  (annotation -> install value), native sidecar
    patch.py      the pure decision for one pod: skip rules (data) or the JSON patch that
                  adds `lacewing.install.sidecar`'s init container, proxy and volumes
    workloads.py  `lacewing inject` / `uninject` on manifests: pod templates of each kind
    admission.py  AdmissionReview v1 in, AdmissionReview v1 out (cached lookups)
    server.py     the HTTPS server the API server calls (`lacewing controller proxy-injector`)

The webhook and `lacewing inject --manual` produce the same patch from the same function; the
sidecar itself is defined once, in `lacewing.install.sidecar`.
"""

from lacewing.controller.injector.admission import Admission, Lookup, Reply
from lacewing.controller.injector.config import (
    INJECT_ANNOTATION,
    OVERRIDES,
    SKIPPED_ANNOTATION,
    pod_values,
)
from lacewing.controller.injector.patch import Decision, PodInput, apply_ops, decide
from lacewing.controller.injector.server import InjectorServer, TlsFiles

__all__ = [
    "INJECT_ANNOTATION",
    "OVERRIDES",
    "SKIPPED_ANNOTATION",
    "Admission",
    "Decision",
    "InjectorServer",
    "Lookup",
    "PodInput",
    "Reply",
    "TlsFiles",
    "apply_ops",
    "decide",
    "pod_values",
]
