"""The bundled demo application (in the spirit of Linkerd's emojivoto) and its cluster file.

    vote-bot ──► web ──► emoji   (2 replicas; replica 1 answers 40 ms slower)
                     └─► voting  (fails a fraction of votes with 500)

Each app is `python -m lacewing.local.demo.<app>`, a small stdlib HTTP server that finds its
peers by Service name (`http://emoji:8080`), as it would in Kubernetes. `cluster.yaml` here is
the cluster file `lacewing demo` starts; `CLUSTER_FILE` is its path. `canary.yaml`
(`CANARY_FILE`, `lacewing demo --canary`) is the same mesh plus `emoji-canary`, which an
HTTPRoute gives 10% of web's calls to emoji. `policy.yaml` (`POLICY_FILE`) is the
authorization policy `lacewing demo --policy` adds to either: the voting Server's routes,
votes for web alone (docs/policy.md).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CANARY_FILE", "CLUSTER_FILE", "POLICY_FILE"]

CLUSTER_FILE = Path(__file__).with_name("cluster.yaml")
CANARY_FILE = Path(__file__).with_name("canary.yaml")
POLICY_FILE = Path(__file__).with_name("policy.yaml")
