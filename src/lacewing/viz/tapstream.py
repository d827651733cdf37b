"""Where tap events come from: `viz tap`, `viz top` and the dashboard's live tap share this.

`tap_events(query, local, kubernetes, opened)` validates the query (`lacewing.viz.tap`), then
yields each ended request, as the proxies' tap servers describe it (plus `pod`, the tapped pod,
and the tapped end's `deployment`), from one of two places:

- a local cluster (`local` names it): the caller runs as root on the cluster's machine, so it
  finds the meshed pods of the resource in the cluster's state, issues itself a tap certificate
  from the cluster's issuer and taps every pod's proxy (`lacewing.viz.tapclient`);
- otherwise Kubernetes (`kubernetes()` gives a `lacewing.k8s.cluster.Cluster`): the viz
  install's tap relay (`lacewing.viz.taprelay`), reached through the API server's pod proxy
  with the token of the Secret `lacewing-viz/tap-token` (whoever may read it may tap), taps
  them and relays their events as JSON lines.

`opened(pods, through)` is called once the taps are open (`through`: the relay's pod, or None
when tapped here). With `heartbeat` (seconds), an empty dict comes whenever the stream was
quiet about that long (a local tap: `heartbeat`; the relay: its own 5 s), so a caller that
relays the stream writes something and learns when its own client has gone. The stream ends
at the query's `duration`, when every proxy's stream ended, or when the caller closes the
generator (every tap socket, or the relay's stream, is closed then). Refusals are one line:
`UsageError` (no such resource, bad query), `RuntimeEnvError` (a proxy or the relay refused).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from lacewing.errors import RuntimeEnvError, UsageError
from lacewing.viz.tap import parse_target, tap_filter
from lacewing.viz.taprelay import TAP_RELAY_PORT, TOKEN_HEADER, TOKEN_KEY, TOKEN_SECRET, TapQuery

__all__ = ["Opened", "kubernetes_events", "local_events", "tap_events"]

Opened = Callable[[list[str], str | None], None]
NAMESPACE = "lacewing-viz"
TAP_SELECTOR = "app.kubernetes.io/name=tap"


def tap_events(
    query: TapQuery,
    local: str | None,
    kubernetes: Callable[[], Any],
    opened: Opened,
    heartbeat: float | None = None,
) -> Iterator[dict[str, Any]]:
    """The events of `query`'s resource, tapped here (`local`) or by the Kubernetes relay."""
    if query.duration is not None and not query.duration > 0:
        raise UsageError(f"invalid --duration {query.duration}", hint="a positive number")
    parse_target(query.resource, "resource")
    tap_filter(query.namespace, query.to, query.to_namespace, query.path, query.method,
               query.authority, query.max_rps)  # fmt: skip
    if local:
        return local_events(query, local, opened, heartbeat)
    return kubernetes_events(query, kubernetes(), opened, heartbeat is not None)


def local_events(query: TapQuery, local: str, opened: Opened,
                 heartbeat: float | None = None) -> Iterator[dict[str, Any]]:  # fmt: skip
    from lacewing.local.control import check_machine, read_pods, selected_cluster
    from lacewing.local.plan import netns_prefix
    from lacewing.local.state import ClusterState
    from lacewing.viz.tapclient import local_tap_client

    kind, name = parse_target(query.resource, "resource")
    wanted = tap_filter(query.namespace, query.to, query.to_namespace, query.path,
                        query.method, query.authority, query.max_rps)  # fmt: skip
    cluster = selected_cluster(local)
    check_machine()
    pods = [
        p for p in read_pods(cluster)
        if p.namespace == query.namespace and p.meshed
        and (p.workload == name if kind == "deployment" else p.name == name)
    ]  # fmt: skip
    if not pods:
        raise UsageError(
            f"no meshed pod of {query.resource} in namespace {query.namespace!r} "
            f"of local cluster {cluster!r}",
            hint="see `lacewing local status`",
        )
    client = local_tap_client(ClusterState(cluster).dir, netns_prefix(cluster) + "node",
                              {p.name: p.ip for p in pods})  # fmt: skip
    workload = {p.name: p.workload for p in pods}
    names = [p.name for p in pods]
    return _local(client.events(names, wanted, query.duration, lambda: opened(names, None),
                                heartbeat), workload if kind == "deployment" else {})  # fmt: skip


def _local(events: Iterator[dict[str, Any]],
           workload: dict[str, str]) -> Iterator[dict[str, Any]]:  # fmt: skip
    try:
        for event in events:
            if event and workload:
                # the tapped pod's own end: we know its workload (the proxy knows its pod)
                inbound = event.get("direction") == "inbound"
                own = event["destination"] if inbound else event["source"]
                if isinstance(own, dict):
                    own.setdefault("deployment", workload.get(str(event.get("pod")), ""))
            yield event
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()


def kubernetes_events(query: TapQuery, cluster: Any, opened: Opened,
                      heartbeat: bool = False) -> Iterator[dict[str, Any]]:  # fmt: skip
    pods = [
        p for p in cluster.list("v1", "Pod", namespace=NAMESPACE, label_selector=TAP_SELECTOR)
        if (p.get("status") or {}).get("phase") == "Running"
    ]  # fmt: skip
    if not pods:
        raise UsageError(
            f"no running tap pod in {NAMESPACE}: viz tap on Kubernetes goes through it",
            hint="`lacewing viz install | kubectl apply -f -`, then `lacewing viz check`",
        )
    tap_pod = pods[0]["metadata"]["name"]
    secret = cluster.get("v1", "Secret", TOKEN_SECRET, NAMESPACE)  # who may read it may tap
    token = ((secret or {}).get("data") or {}).get(TOKEN_KEY)
    if not token:
        raise UsageError(f"Secret {NAMESPACE}/{TOKEN_SECRET} has no {TOKEN_KEY}",
                         hint="`lacewing viz install | kubectl apply -f -` makes it")  # fmt: skip
    headers = {TOKEN_HEADER: base64.b64decode(token).decode()}
    return _relayed(query, cluster, tap_pod, headers, opened, heartbeat)


def _relayed(query: TapQuery, cluster: Any, tap_pod: str, headers: dict[str, str],
             opened: Opened, heartbeat: bool) -> Iterator[dict[str, Any]]:  # fmt: skip
    deadline = None if query.duration is None else time.monotonic() + query.duration
    with cluster.pod_proxy_open(NAMESPACE, tap_pod, TAP_RELAY_PORT, "tap",
                                query.params(), headers) as answer:  # fmt: skip
        if answer.status_code != 200:
            body = answer.read().decode(errors="replace")
            try:
                data = json.loads(body)
                why = data.get("error") or data.get("message") or body
            except ValueError:
                why = body.strip() or f"HTTP {answer.status_code}"
            raise RuntimeEnvError(f"tap ({NAMESPACE}/{tap_pod}): {why}")
        for line in answer.iter_lines():
            if deadline is not None and time.monotonic() > deadline:
                return
            if not line.strip():
                if heartbeat:
                    yield {}
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            if "tapping" in event:
                opened(list(event["tapping"]), f"{NAMESPACE}/{tap_pod}")
                if heartbeat:
                    yield {}  # a relaying caller can answer now: the taps are open
            elif "direction" in event:
                yield event
