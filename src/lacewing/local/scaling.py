"""Scaling a workload of a running local cluster: the new plan, and what to add and remove (pure).

`scale_plan(plan, workload, replicas, busy=...)` returns `Scaled(plan, added, removed)`:

- scaling down removes the pods with the highest replica numbers (as a Deployment's newest
  pods go first); the supervisor takes them out of the registry and the Service chains at
  once and stops them a moment later, so clients stop picking them before they go away;
- scaling up adds `<workload>-<r>` for the lowest free replica numbers `r`, each at the
  lowest free pod index (address `10.42.0.<10+index>`, bridge end `lwv<index>`). Pods still
  being stopped (`busy`) keep their name, address and veth until their namespace is gone, so
  a new pod never collides with one on its way out.

Pods keep file order by workload (a scaled-up pod sits after its workload's other pods), so
`status` lists a workload's pods together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from lacewing.errors import UsageError
from lacewing.local.plan import FIRST_HOST, POD_SUBNET, ClusterPlan, PodPlan
from lacewing.local.spec import MAX_PODS, MAX_REPLICAS, WorkloadSpec

__all__ = ["Scaled", "find_workload", "pod_index", "scale_plan"]

LAST_HOST = 254


@dataclass(frozen=True)
class Scaled:
    plan: ClusterPlan
    added: tuple[PodPlan, ...]
    removed: tuple[PodPlan, ...]


def pod_index(pod: PodPlan) -> int:
    return int(pod.ip.rsplit(".", 1)[1]) - FIRST_HOST


def find_workload(plan: ClusterPlan, name: str) -> WorkloadSpec:
    for workload in plan.workloads:
        if workload.name == name:
            return workload
    known = ", ".join(w.name for w in plan.workloads if not w.name.startswith("lacewing-"))
    raise UsageError(
        f"no workload {name!r} in local cluster {plan.name!r}", hint=f"workloads: {known}"
    )


def scale_plan(
    plan: ClusterPlan, workload: str, replicas: int, busy: Sequence[PodPlan] = ()
) -> Scaled:
    spec = find_workload(plan, workload)
    if workload.startswith("lacewing-"):
        raise UsageError(f"{workload} is part of the control plane and cannot be scaled")
    if not 0 <= replicas <= MAX_REPLICAS:
        raise UsageError(f"replicas must be a number from 0 to {MAX_REPLICAS}, not {replicas}")
    mine = sorted((p for p in plan.pods if p.workload.name == workload), key=lambda p: p.replica)
    if replicas <= len(mine):
        removed = tuple(mine[replicas:])
        kept = tuple(p for p in plan.pods if p not in removed)
        return Scaled(replace(plan, pods=kept), (), removed)
    if len(plan.pods) + replicas - len(mine) > MAX_PODS:
        raise UsageError(f"a local cluster holds at most {MAX_PODS} pods")
    taken_replicas = {p.replica for p in (*mine, *busy) if p.workload.name == workload}
    taken_index = {pod_index(p) for p in (*plan.pods, *busy)}
    added: list[PodPlan] = []
    for _ in range(replicas - len(mine)):
        replica = min(r for r in range(len(taken_replicas) + 1) if r not in taken_replicas)
        free = [i for i in range(LAST_HOST - FIRST_HOST + 1) if i not in taken_index]
        if not free:
            raise UsageError("the local cluster has no pod address left (10.42.0.0/24)")
        index = free[0]
        taken_replicas.add(replica)
        taken_index.add(index)
        name = f"{workload}-{replica}"
        added.append(
            PodPlan(
                name=name,
                workload=spec,
                replica=replica,
                ip=f"{POD_SUBNET}.{FIRST_HOST + index}",
                netns=plan.node_netns.removesuffix("node") + name,
                veth=f"lwv{index}",
            )
        )
    pods = list(plan.pods)
    after = max((i for i, p in enumerate(pods) if p.workload.name == workload), default=None)
    if after is None:  # the workload had no pods: place them in file order of workloads
        order = [w.name for w in plan.workloads]
        rank = order.index(workload)
        after = max(
            (i for i, p in enumerate(pods) if order.index(p.workload.name) < rank), default=-1
        )
    pods[after + 1 : after + 1] = added
    return Scaled(replace(plan, pods=tuple(pods)), tuple(added), ())
