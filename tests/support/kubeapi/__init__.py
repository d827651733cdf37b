"""An in-repo Kubernetes API server for tests, served over real HTTPS.

kubectl and lightkube reach it through a kubeconfig like any cluster. The pieces:

- `store.Store` holds the objects. One global resource-version counter orders every write
  (as etcd's revision does); `metadata.generation` grows only when the spec (anything but
  metadata and status) changes; a PUT or patch carrying a stale resourceVersion is a 409.
  Types with a status subresource ignore status in the main resource and everything but
  status in `/status`. A Namespace deleted over HTTP turns Terminating (new content is
  refused with 403) and goes, contents included, after a short grace; deleting an owner
  deletes its dependents (ownerReferences), unless the propagation policy is Orphan.
- Watches replay the store's bounded event history from a resourceVersion, or start with a
  synthetic ADDED per object; a version older than the history window gets an ERROR event
  with a 410 `Expired` Status, which makes clients relist. The window is settable
  (`KubeAPI.set_history_window`) so tests can provoke it. Selectors apply to events, and an
  object moving out of (into) a selector is seen as DELETED (ADDED).
- Patches (`patch.py`, `apply.py`): JSON merge patch, JSON patch, strategic merge patch (keyed
  lists such as containers, ports, env, volumes merge by their patchMergeKey; custom
  resources refuse it with 415 as the real server does) and server-side apply (create if
  absent, merge by field ownership in `managedFields`, 409 on conflicts unless `force`).
  `dryRun=All` runs every check and returns the result without storing it.
- `resources.py` lists the kinds served, as data; creating a CRD adds its kinds to
  discovery at once, and `schema.py` validates and prunes custom resources against the
  CRD's openAPIV3Schema (unknown fields are a 400 under `fieldValidation=Strict`, which
  kubectl sends). `openapi.py` serves just enough OpenAPI v3 for kubectl to validate on
  the server side. `auth.py` checks bearer tokens and test-made denials (403 and
  SelfSubjectAccessReview) and answers TokenReviews for test-registered tokens.
- `kubelet.Kubelet` plays the controllers: Deployments become ReplicaSets and Pods (with pod
  IPs from the Node's podCIDR), Pods can be marked Ready, and Services get EndpointSlices and
  Endpoints (`endpoints.py`). `kubelet.node.NodeRuntime` (root) is a real kubelet that runs
  every Pod as processes in network namespaces (see `kubelet/__init__.py`). Pods, whoever
  creates them, pass through the cluster's MutatingWebhookConfigurations over HTTPS
  (`webhooks.py`).
- `server.py` maps HTTP onto the store (with `tables.py` for `kubectl get` and `scale.py`
  for the scale subresource); `testbed.KubeAPI` runs it on a thread; `pytest_plugin` gives
  each test a fresh cluster.

Run it by hand with `python -m tests.support.kubeapi serve --kubeconfig PATH [--kubelet run]`.
"""

from __future__ import annotations

from tests.support.kubeapi.errors import ApiError
from tests.support.kubeapi.kubelet import Kubelet
from tests.support.kubeapi.testbed import KubeAPI, start_kube_api

__all__ = ["ApiError", "KubeAPI", "Kubelet", "start_kube_api"]
