"""`lacewing check`: health checks declared as data, a runner, and renderers.

    model.py      Check / Category (frozen data) and the results they produce
    facts.py      the context checks receive: lazily built, cached facts about the cluster
    runner.py     runs categories in order; fatal failures, `needs`, `--wait` retries
    render.py     human (streamed, spinner on a terminal), short and JSON output
    catalog.py    which categories `check --pre` and `check` run, in order
    checks/       the categories: kubernetes, pre, existence/config, identity/webhooks, versions
    versions.py   the latest-release lookup (a warning when offline)
    manifests.py  what `lacewing install` would emit, for dry-runs and expected names

This package never talks to Kubernetes itself: the CLI hands `Facts` a `connect` function
(`lacewing.k8s.cluster.Cluster.connect`), so only `lacewing.k8s` imports lightkube.
"""

from lacewing.healthcheck.catalog import categories
from lacewing.healthcheck.facts import CheckOptions, ClusterPort, Facts
from lacewing.healthcheck.model import Category, Check, CheckResult, Outcome, Report, Status
from lacewing.healthcheck.render import HumanRenderer, to_json
from lacewing.healthcheck.runner import run_checks

__all__ = [
    "Category",
    "Check",
    "CheckOptions",
    "CheckResult",
    "ClusterPort",
    "Facts",
    "HumanRenderer",
    "Outcome",
    "Report",
    "Status",
    "categories",
    "run_checks",
    "to_json",
]
