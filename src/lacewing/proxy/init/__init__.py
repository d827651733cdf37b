"""proxy-init: the pod's iptables nat rules that send its TCP through the sidecar proxy.

`rules.build_ruleset(options)` is the rule set as data (pure); `runner.execute(...)` applies it
through the host's iptables, idempotently, or prints the commands (`dry_run`), or removes
them (`clean`). `lacewing proxy-init` (cli/commands/proxy_init.py) is the command-line face.
"""

from __future__ import annotations

from lacewing.proxy.init.rules import ProxyInitOptions, RuleSet, build_ruleset
from lacewing.proxy.init.runner import Outcome, execute

__all__ = ["Outcome", "ProxyInitOptions", "RuleSet", "build_ruleset", "execute"]
