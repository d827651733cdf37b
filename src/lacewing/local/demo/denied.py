"""`lacewing demo --policy`: show what the voting Server's routes admit, and a denied call.

With `POLICY_FILE` in the cluster, web's votes go through (route `voting-vote`, web's
identity only); `show` then makes three calls from inside the vote-bot pod, whose proxy
speaks for the bot's identity (`bot.emojivoto...`): `GET /leaderboard` (route
`voting-leaderboard`, any meshed client: 200), `POST /vote` (route `voting-vote`, not the
bot's: 403, and the voting app never sees it) and `GET /admin` (no route: 404). Each call
runs as `python -c` under `ip netns exec` in the pod, so the pod's hosts file names the
Service, as `lacewing local exec` would. `CALLS` are the calls and what each should get
(status, and a word of the body that says who answered: the voting app's JSON, or the
proxy's reason, so a 404 of the app itself is not mistaken for the proxy's); `Shown.ok` says
whether each did.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Final

from lacewing.local import control, netns

__all__ = ["CALLS", "Call", "Shown", "show"]

FROM_POD: Final = "vote-bot-0"
TARGET: Final = "http://voting:8080"


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    expected: int
    said: str  # in the body of the expected answer
    why: str


CALLS: Final = (
    Call("GET", "/leaderboard", 200, "{", "route voting-leaderboard: any meshed client"),
    Call("POST", "/vote?choice=:ghost:", 403, "unauthorized",
         "route voting-vote: web's identity only; the app never sees it"),
    Call("GET", "/admin", 404, "no route", "no route of voting-http matches; the proxy says so"),
)  # fmt: skip

_SCRIPT = """
import json, sys, urllib.error, urllib.request
for method, url in json.loads(sys.argv[1]):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=5) as r:
            print(json.dumps([r.status, r.read(200).decode(errors="replace")]))
    except urllib.error.HTTPError as err:
        print(json.dumps([err.code, err.read(200).decode(errors="replace")]))
    except OSError as err:
        print(json.dumps([0, str(err)]))
"""


@dataclass(frozen=True)
class Shown:
    answers: tuple[tuple[int, str], ...]  # (status, start of the body) per call; 0: none

    def matched(self, call: Call, answer: tuple[int, str]) -> bool:
        return answer[0] == call.expected and call.said in answer[1]

    @property
    def ok(self) -> bool:
        return all(self.matched(c, a) for c, a in zip(CALLS, self.answers, strict=True))

    def lines(self) -> list[str]:
        out = [f"policy: from {FROM_POD} (identity bot.emojivoto...) to voting:"]
        for call, answer in zip(CALLS, self.answers, strict=True):
            mark = "" if self.matched(call, answer) else f" -- EXPECTED {call.expected}"
            out.append(f"  {call.method} {call.path}: {answer[0]} ({call.why}){mark}")
        return out


def show(cluster: str) -> Shown:
    """Make the `CALLS` from the vote-bot pod: what each got."""
    pod = control.find_pod(cluster, FROM_POD)
    asked = json.dumps([(c.method, TARGET + c.path) for c in CALLS])
    argv = netns.exec_argv(pod.netns, [sys.executable, "-c", _SCRIPT, asked])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    answers: list[tuple[int, str]] = []
    for line in done.stdout.splitlines():
        status, body = json.loads(line)
        answers.append((int(status), str(body)))
    answers += [(0, done.stderr.strip()[-200:])] * (len(CALLS) - len(answers))
    return Shown(tuple(answers[: len(CALLS)]))
