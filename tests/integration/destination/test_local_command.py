"""`lacewing controller destination --source local` as a process: registry file in, stream out."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.destination import Stream, addresses

from lacewing.cli.commands.controller_destination import DestinationOptions, run_destination
from lacewing.cli.context import GlobalOptions, Output
from lacewing.core.registry import PodEntry, Registry, ServiceEntry, ServicePort, WorkloadRef
from lacewing.errors import UsageError

# The command as the `controller` group will run it (role G owns the group).
RUNNER = (
    "import sys; from lacewing.cli.context import GlobalOptions;"
    "from lacewing.cli.commands.controller_destination import destination_command as c;"
    "c.main(args=sys.argv[1:], obj=GlobalOptions(), standalone_mode=False)"
)


def write_registry(path: Path, *ips: str, revision: int) -> None:
    doc = Registry(
        cluster="t",
        revision=revision,
        services=(
            ServiceEntry(
                "web", "demo", "10.43.0.10", (ServicePort("http", 80, 8080),), {"app": "web"}
            ),
        ),
        pods=tuple(
            PodEntry(
                f"web-{i}",
                "demo",
                ip,
                {"app": "web"},
                "web",
                True,
                True,
                WorkloadRef("Deployment", "web"),
            )
            for i, ip in enumerate(ips)
        ),
    ).to_dict()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    os.utime(tmp, ns=(revision * 10**9, revision * 10**9))
    tmp.rename(path)


async def test_local_source_streams_registry_changes_and_stops_on_sigterm(tmp_path: Path) -> None:
    registry = tmp_path / "registry.json"
    write_registry(registry, "10.42.0.10", revision=1)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            RUNNER,
            "--source",
            "local",
            "--registry-file",
            str(registry),
            "--listen-addr",
            "127.0.0.1:0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert "destination (local source) listening on http://127.0.0.1:" in banner
        port = int(banner.rsplit(":", 1)[1])
        stream = await Stream.open(port, "web.demo.svc.cluster.local:80")
        first = await stream.next(timeout=3.0)
        assert addresses(first) == ["10.42.0.10:8080"]
        assert first["endpoints"][0]["identity"] == (
            "web.demo.serviceaccount.identity.lacewing.cluster.local"
        )
        write_registry(registry, "10.42.0.10", "10.42.0.11", revision=2)
        added = await stream.next(timeout=1.0)
        assert (added["type"], addresses(added)) == ("ADDED", ["10.42.0.11:8080"])
        await stream.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (DestinationOptions(listen_addr="nowhere"), "not HOST:PORT"),
        (DestinationOptions(source="consul"), "unknown source"),
        (DestinationOptions(issuer_dir=Path("/x")), "goes with --identity-addr or --issuer-dir"),
        (
            DestinationOptions(identity_addr="identity:8080", trust_anchors_file=Path("/x")),
            "--identity-addr and --identity-token-file go together",
        ),
        (
            DestinationOptions(
                issuer_dir=Path("/x"), identity_addr="i:8080", trust_anchors_file=Path("/x")
            ),
            "exclude each other",
        ),
        (
            DestinationOptions(issuer_dir=Path("/nonexistent"), trust_anchors_file=Path("/nope")),
            "cannot read --trust-anchors-file",
        ),
    ],
)
def test_mistakes_are_one_line_before_listening(options: DestinationOptions, words: str) -> None:
    with pytest.raises(UsageError, match=words):
        run_destination(options, GlobalOptions(), Output())
