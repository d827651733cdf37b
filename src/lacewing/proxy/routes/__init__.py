"""Routes in the proxy: HTTPRoute matching, filters, traffic splits, timeouts and retries.

`router.Router` sits between the logical target and the concrete backend (see its module
docstring); `budget.RetryBudget` bounds retries; `headers` applies the header and redirect
filters to HTTP/1 heads. The codecs call the router once per request head, and only for
destinations the control plane sent routes for.
"""

from lacewing.proxy.routes.budget import RetryBudget
from lacewing.proxy.routes.router import MAX_REPLAY, BackendPlan, Routed, Router, RulePlan

__all__ = ["MAX_REPLAY", "BackendPlan", "RetryBudget", "Routed", "Router", "RulePlan"]
