"""The test-bed kubelet's pure parts: images, env, securityContext, Services, probes, back-off."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from tests.support.kubeapi.kubelet import envs, images, security, services
from tests.support.kubeapi.kubelet.containers import Backoff
from tests.support.kubeapi.kubelet.probes import Prober

POD: dict[str, Any] = {
    "metadata": {"name": "web-1", "namespace": "shop", "uid": "u1", "labels": {"app": "web"}},
    "spec": {"serviceAccountName": "web", "nodeName": "n"},
    "status": {"podIP": "10.244.0.7", "podIPs": [{"ip": "10.244.0.7"}]},
}


def lookup(kind: str, name: str) -> dict[str, Any] | None:
    objects = {
        ("Secret", "s"): {
            "metadata": {"namespace": "shop"},
            "data": {"k": base64.b64encode(b"v").decode()},
        },
        ("ConfigMap", "c"): {"metadata": {"namespace": "shop"}, "data": {"x": "1"}},
    }
    return objects.get((kind, name))


def test_image_table_and_kubernetes_command_rules() -> None:
    image = images.resolve("ghcr.io/lacewing-mesh/lacewing:0.1.0")
    assert image is not None
    assert images.argv(image, {"args": ["proxy"]}) == [images.BINARIES["lacewing"], "proxy"]
    assert images.argv(image, {})[1:] == ["--help"]
    assert images.argv(image, {"command": ["sh", "-c"], "args": ["true"]}) == ["sh", "-c", "true"]
    assert images.resolve("docker.io/library/nginx:1.27") is None
    assert images.split_reference("registry:5000/a/b") == ("registry:5000/a/b", "latest")
    assert images.split_reference("a/b:1@sha256:ff") == ("a/b", "1")


def test_env_from_the_spec() -> None:
    container = {
        "env": [
            {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "x"}}},
            {
                "name": "O",
                "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "x", "optional": True}},
            },
            {"name": "MSG", "value": "$(NAME) at $(IP), $$(NAME) $(NOPE)"},
        ]
    }
    env = envs.container_env(POD, container, lookup)
    assert env == {
        "NAME": "web-1",
        "SA": "web",
        "IP": "10.244.0.7",
        "APP": "web",
        "S": "v",
        "C": "1",
        "MSG": "web-1 at 10.244.0.7, $(NAME) $(NOPE)",
    }
    assert envs.expand_all(["--name=$(NAME)"], env) == ["--name=web-1"]
    with pytest.raises(envs.EnvError, match='secret "nope" not found'):
        envs.container_env(
            POD,
            {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}]},
            lookup,
        )


def test_security_context_becomes_setpriv() -> None:
    init = {
        "securityContext": {
            "runAsUser": 0,
            "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
            "allowPrivilegeEscalation": False,
        }
    }
    argv, uid = security.setpriv_argv({}, init, (2102, 2102))
    assert uid == 0
    assert "--bounding-set=-all,+net_admin,+net_raw" in argv and "--no-new-privs" in argv
    argv, uid = security.setpriv_argv({"securityContext": {"runAsUser": 2103}}, {}, (0, 0))
    assert uid == 2103 and "--reuid=2103" in argv
    assert "+chown" in next(a for a in argv if a.startswith("--bounding-set"))  # defaults kept
    with pytest.raises(security.SecurityError, match="runAsNonRoot"):
        security.setpriv_argv({}, {"securityContext": {"runAsNonRoot": True}}, (0, 0))


def test_services_rules_and_hosts() -> None:
    svc = {
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "clusterIP": "10.96.0.20",
            "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80}],
        },
    }
    empty = {
        "metadata": {"name": "db", "namespace": "shop"},
        "spec": {
            "clusterIP": "10.96.0.21",
            "selector": {"app": "db"},
            "ports": [{"name": "", "port": 5432}],
        },
    }
    sl = {
        "metadata": {"namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
        "ports": [{"name": "http", "port": 8080}],
        "endpoints": [
            {"addresses": ["10.244.0.5"], "conditions": {"ready": True}},
            {"addresses": ["10.244.0.6"], "conditions": {"ready": True}},
            {"addresses": ["10.244.0.9"], "conditions": {"ready": False}},
        ],
    }
    text = services.nat_restore([svc, empty], [sl])
    dnat = [line for line in text.splitlines() if "DNAT" in line]
    assert len(dnat) == 2
    assert "--probability 0.50000000000" in dnat[0] and "10.244.0.5:8080" in dnat[0]
    assert "statistic" not in dnat[1] and "10.244.0.6:8080" in dnat[1]
    assert "10.244.0.9" not in text
    assert "-d 10.96.0.21/32 -p tcp -m tcp --dport 5432" in text.split("*filter")[1]
    hosts = services.hosts_text("a-1", "10.244.0.3", "shop", [svc])
    assert "10.96.0.20\tweb web.shop web.shop.svc web.shop.svc.cluster.local" in hosts
    other = services.hosts_text("b-1", "10.244.0.4", "default", [svc])
    assert "10.96.0.20\tweb.shop web.shop.svc" in other


def test_probe_thresholds_and_back_off() -> None:
    readiness = Prober(
        {"periodSeconds": 10, "failureThreshold": 2, "initialDelaySeconds": 2},
        "readiness",
        started=100.0,
        max_period=1.0,
    )
    assert not readiness.passing and not readiness.due(101.0) and readiness.due(102.0)
    readiness.record(True, 102.0)
    assert readiness.passing and readiness.due(103.0)  # the period is capped at 1 s
    readiness.record(False, 103.0)
    assert readiness.passing
    readiness.record(False, 104.0)
    assert not readiness.passing and readiness.exhausted
    liveness = Prober({}, "liveness", started=0.0)
    assert liveness.passing and liveness.period == 10
    backoff = Backoff()
    assert [backoff.delay(n) for n in (1, 2, 3, 9)] == [10, 20, 40, 300]
