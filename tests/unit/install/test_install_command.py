"""`lacewing install / upgrade / uninstall` as a user runs them: output, and one-line errors."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from lacewing.cli.commands.install import InstallOptions, run_install, run_uninstall
from lacewing.cli.context import GlobalOptions, Output
from lacewing.cli.main import main
from lacewing.errors import AlreadyInstalled, ClusterError
from lacewing.install.crds import crd_names
from lacewing.tls import pki


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err


def _write_identity(tmp_path: Path, now: datetime, days: int = 365) -> list[str]:
    anchor = pki.generate_trust_anchor(now=now, lifetime=timedelta(days=days))
    issuer = pki.generate_issuer(anchor, now=now)
    (tmp_path / "ca.crt").write_text(anchor.cert_pem)
    (tmp_path / "issuer.crt").write_text(issuer.cert_pem)
    (tmp_path / "issuer.key").write_text(issuer.key_pem)
    return [
        "--identity-trust-anchors-file", str(tmp_path / "ca.crt"),
        "--identity-issuer-certificate-file", str(tmp_path / "issuer.crt"),
        "--identity-issuer-key-file", str(tmp_path / "issuer.key"),
    ]  # fmt: skip


def test_install_ignore_cluster_prints_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(capsys, "install", "--ignore-cluster", "--ha", "--tag", "1.2.3")
    assert code == 0, err
    docs = list(yaml.safe_load_all(out))
    assert docs[0]["kind"] == "Namespace"
    deploy = next(d for d in docs if d["kind"] == "Deployment")
    assert deploy["spec"]["replicas"] == 3
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":1.2.3")


def test_crds_yaml_has_no_anchors(capsys: pytest.CaptureFixture[str]) -> None:
    """Schema fragments reused across CRDs are written out in full, not as &id001/*id001."""
    code, out, _ = _cli(capsys, "install", "--crds")
    assert code == 0
    assert "&id" not in out and "*id" not in out
    assert [d["metadata"]["name"] for d in yaml.safe_load_all(out)] == crd_names()


def test_crds_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(capsys, "install", "--crds", "-o", "json")
    assert code == 0
    listed = json.loads(out)
    assert [i["metadata"]["name"] for i in listed["items"]] == crd_names()


def test_bad_set_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(capsys, "install", "--ignore-cluster", "--set", "proxy.bogus=1")
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert lines[0] == "Error: unknown value proxy.bogus"
    assert len(lines) == 2 and "logLevel" in lines[1]  # the hint names the known keys


def test_proxy_resource_flags(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(capsys, "install", "--ignore-cluster", "--proxy-cpu-limit", "2",
                        "--proxy-memory-limit", "250Mi")  # fmt: skip
    assert code == 0
    deploy = next(d for d in yaml.safe_load_all(out) if d["kind"] == "Deployment")
    proxy = deploy["spec"]["template"]["spec"]["containers"][1]
    assert proxy["resources"]["limits"] == {"cpu": "2", "memory": "250Mi"}
    code, _, err = _cli(capsys, "install", "--ignore-cluster", "--proxy-cpu-limit", "two")
    assert code == 2 and err.startswith("Error: value proxy.resources.cpuLimit='two'")


def test_identity_files_are_used(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flags = _write_identity(tmp_path, datetime.now(UTC))
    code, out, err = _cli(capsys, "install", "--ignore-cluster", *flags)
    assert code == 0, err
    roots = next(d for d in yaml.safe_load_all(out) if d["metadata"]["name"].endswith("roots"))
    assert roots["data"]["ca-bundle.crt"] == (tmp_path / "ca.crt").read_text()


def test_expired_identity_files_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = _write_identity(tmp_path, datetime.now(UTC) - timedelta(days=30), days=10)
    code, out, err = _cli(capsys, "install", "--ignore-cluster", *flags)
    assert code == 1 and out == ""
    first = err.splitlines()[0]
    assert first.startswith("Error: certificate CN=root.lacewing.cluster.local expired at ")
    assert "Traceback" not in err


def test_unreadable_or_swapped_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flags = _write_identity(tmp_path, datetime.now(UTC))
    flags[1] = str(tmp_path / "missing.crt")
    code, _, err = _cli(capsys, "install", "--ignore-cluster", *flags)
    assert code == 1
    assert err.splitlines()[0] == f"Error: cannot read trust anchors file {flags[1]}: no such file"
    flags = _write_identity(tmp_path, datetime.now(UTC))
    flags[5] = str(tmp_path / "ca.crt")  # a certificate where the key belongs
    code, _, err = _cli(capsys, "install", "--ignore-cluster", *flags)
    assert err.splitlines()[0].endswith("is a certificate, not a private key")
    other = pki.generate_issuer(pki.generate_trust_anchor())
    (tmp_path / "other.key").write_text(other.key_pem)
    flags = _write_identity(tmp_path, datetime.now(UTC))
    flags[5] = str(tmp_path / "other.key")
    code, _, err = _cli(capsys, "install", "--ignore-cluster", *flags)
    assert "private key does not match" in err.splitlines()[0]


def test_some_identity_files_but_not_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = _write_identity(tmp_path, datetime.now(UTC))
    code, _, err = _cli(capsys, "install", "--ignore-cluster", *flags[:2])
    assert code == 2
    assert "--identity-issuer-certificate-file, --identity-issuer-key-file missing" in err


class FakeCluster:
    def __init__(self, objects: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.objects = objects

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        return self.objects.get((kind, name))


def _crds() -> dict[tuple[str, str], dict[str, Any]]:
    return {("CustomResourceDefinition", n): {} for n in crd_names()}


def _run(run: Any, cluster: FakeCluster, options: InstallOptions) -> str:
    out = io.StringIO()
    run(options, GlobalOptions(), Output(out=out, err=io.StringIO()), connect=lambda g: cluster)
    return out.getvalue()


def test_install_checks_the_cluster() -> None:
    with pytest.raises(ClusterError, match="CRDs are not installed") as caught:
        _run(run_install, FakeCluster({}), InstallOptions())
    assert caught.value.hint == "run `lacewing install --crds | kubectl apply -f -` first"
    installed = FakeCluster({**_crds(), ("Namespace", "lacewing"): {}})
    with pytest.raises(AlreadyInstalled, match='"lacewing" already exists'):
        _run(run_install, installed, InstallOptions())
    assert _run(run_install, FakeCluster(_crds()), InstallOptions()).startswith("---\n")


def test_uninstall_lists_only_what_exists() -> None:
    everything = yaml.safe_load_all(_run(run_uninstall, FakeCluster({}), InstallOptions(
        ignore_cluster=True)))  # fmt: skip
    docs = list(everything)
    assert {d["kind"] for d in docs} >= {"Namespace", "ClusterRole", "CustomResourceDefinition"}
    assert not [d for d in docs if "namespace" in d["metadata"]]  # the namespace takes them
    some = FakeCluster({("Namespace", "lacewing"): {}, **_crds()})
    kinds = {d["kind"] for d in yaml.safe_load_all(_run(run_uninstall, some, InstallOptions()))}
    assert kinds == {"Namespace", "CustomResourceDefinition"}


def test_external_issuer_needs_what_cert_manager_makes() -> None:
    options = InstallOptions(external_issuer=True)
    prepared = {**_crds(), ("Namespace", "lacewing"): {}}
    with pytest.raises(ClusterError, match='Secret "lacewing-identity-issuer" does not exist'):
        _run(run_install, FakeCluster(prepared), options)
    prepared[("Secret", "lacewing-identity-issuer")] = {}
    with pytest.raises(ClusterError, match='ConfigMap "lacewing-identity-trust-roots"') as caught:
        _run(run_install, FakeCluster(prepared), options)
    assert "docs/cert-manager.md" in (caught.value.hint or "")
    prepared[("ConfigMap", "lacewing-identity-trust-roots")] = {}
    docs = list(yaml.safe_load_all(_run(run_install, FakeCluster(prepared), options)))
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("Secret", "lacewing-identity-issuer") not in names  # cert-manager owns it
    assert ("ConfigMap", "lacewing-identity-trust-roots") not in names  # trust-manager does
    prepared[("ConfigMap", "lacewing-config")] = {}
    with pytest.raises(AlreadyInstalled):
        _run(run_install, FakeCluster(prepared), options)


def test_upgrade_accepts_values_stored_with_the_retired_heartbeat() -> None:
    """0.1.0 stored `heartbeat:` in lacewing-config; upgrade drops it and renders no CronJob."""
    from lacewing.cli.commands.install import run_upgrade
    from lacewing.install.credentials import generate
    from lacewing.install.render import render_control_plane
    from lacewing.install.values import Values

    docs = render_control_plane(Values(), generate("lacewing", "cluster.local"))
    objects = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    config = objects[("ConfigMap", "lacewing-config")]
    stored = yaml.safe_load(config["data"]["values"])
    stored["heartbeat"] = {"enabled": True, "schedule": "0 0 * * *"}
    config["data"]["values"] = yaml.safe_dump(stored)
    upgraded = list(yaml.safe_load_all(_run(run_upgrade, FakeCluster(objects), InstallOptions())))
    assert upgraded and "CronJob" not in {d["kind"] for d in upgraded}
    assert "heartbeat" not in yaml.safe_load(
        next(d for d in upgraded if d["metadata"]["name"] == "lacewing-config")["data"]["values"]
    )


def test_upgrade_rolls_the_webhook_pods_onto_their_renewed_certificates() -> None:
    """upgrade renews the webhook certificates; the pods that serve them must be replaced (a
    running pod keeps the certificate it read, which the new caBundle no longer trusts)."""
    from lacewing.cli.commands.install import run_upgrade
    from lacewing.install.credentials import generate
    from lacewing.install.render import WEBHOOK_CERT_CHECKSUM, render_control_plane
    from lacewing.install.values import Values

    def pod_annotations(docs: list[Any]) -> dict[str, dict[str, str]]:
        return {
            d["metadata"]["name"]: d["spec"]["template"]["metadata"]["annotations"]
            for d in docs
            if d["kind"] == "Deployment"
        }

    docs = render_control_plane(Values(), generate("lacewing", "cluster.local"))
    objects = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    upgraded = list(yaml.safe_load_all(_run(run_upgrade, FakeCluster(objects), InstallOptions())))
    before, after = pod_annotations(docs), pod_annotations(upgraded)
    for name in ("lacewing-proxy-injector", "lacewing-policy"):  # the two webhook servers
        assert before[name][WEBHOOK_CERT_CHECKSUM] != after[name][WEBHOOK_CERT_CHECKSUM], name
    for name in ("lacewing-identity", "lacewing-destination"):  # nothing renewed: not rolled
        assert WEBHOOK_CERT_CHECKSUM not in before[name] and before[name] == after[name], name
