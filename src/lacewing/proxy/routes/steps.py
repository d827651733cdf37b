"""The route steps every codec takes the same way, whatever carries the bytes.

    roll_fault(rng, rule)     an injected fault for this request: (abort status or None,
                              delay seconds), rolled once per request from the router's rng
    attempt_timeout(rule)     the per-attempt deadline: `timeouts.backendRequest`, else the
                              retry timeout annotation
    grant_retry(plan, n)      may a request that has had `n` retries be retried once more:
                              the attempt limit, then the route's budget, each refusal
                              counted on the route (limit_exceeded, overflow); the codec
                              counts the retry (`stats.retries`) when it sends it

The codec decides *whether* an answer is retryable (its status or grpc-status in the
policy, the whole request kept in the replay buffer, nothing answered yet) and how to send
the request again; these decide the rest. Pure: no I/O.
"""

from __future__ import annotations

import random

from lacewing.core.routes import Rule
from lacewing.proxy.routes.router import RulePlan

__all__ = ["attempt_timeout", "grant_retry", "roll_fault"]


def roll_fault(rng: random.Random, rule: Rule) -> tuple[int | None, float]:
    fault = rule.fault
    if fault is None:
        return None, 0.0
    if fault.abort_percent and rng.random() * 100 < fault.abort_percent:
        return fault.abort_status, 0.0
    if fault.delay_percent and rng.random() * 100 < fault.delay_percent:
        return None, fault.delay
    return None, 0.0


def attempt_timeout(rule: Rule) -> float | None:
    return rule.backend_timeout or (rule.retry.timeout if rule.retry else None)


def grant_retry(plan: RulePlan, attempts: int) -> bool:
    policy = plan.rule.retry
    assert policy is not None
    stats = plan.stats
    if attempts >= policy.limit:
        stats.limit_exceeded += 1
        return False
    if plan.budget is None or not plan.budget.try_retry():
        stats.overflow += 1
        return False
    return True
