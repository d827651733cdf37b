"""The test-bed kubelet runs pods for real: order, security, env, volumes, probes, Services.

One API test bed and one `NodeRuntime` for the module; each test uses its own namespace.
Containers use the busybox-like image (the machine's sh, cat, sleep) and the echo/client
test apps; what a test checks is what the pod itself wrote to an emptyDir, what the API
server shows in the pod's status, or what a request from inside a pod got back.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.kubeapi import KubeAPI, start_kube_api
from tests.support.kubeapi.kubelet.node import NodeRuntime

from lacewing.local.netns import http_get, in_netns

pytestmark = pytest.mark.root
BUSYBOX = "testbed.local/busybox:1.36"
Obj = dict[str, Any]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KubeAPI, NodeRuntime]]:
    tmp = tmp_path_factory.mktemp("kubelet")
    api = start_kube_api(tmp)
    runtime = NodeRuntime(api, tmp / "node")
    try:
        runtime.start()
        yield api, runtime
    finally:
        runtime.stop()
        api.close()
    assert not [n for n in os.listdir("/run/netns") if n.startswith(runtime.prefix)]
    assert not runtime.errors, runtime.errors


def wait_for(what: str, fn: Callable[[], Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def namespace(api: KubeAPI, name: str) -> str:
    api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    api.create(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "default", "namespace": name},
        }
    )
    return name


def pod(ns: str, name: str, spec: Obj, labels: dict[str, str] | None = None) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
        "spec": {"nodeName": "testbed-node", **spec},
    }


def status(api: KubeAPI, ns: str, name: str) -> Obj:
    got = api.get("v1", "Pod", name, ns)
    assert got is not None
    return got.get("status") or {}


def container_status(api: KubeAPI, ns: str, name: str, container: str) -> Obj:
    st = status(api, ns, name)
    for c in (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or []):
        if c["name"] == container:
            return dict(c)
    return {}


def is_ready(api: KubeAPI, ns: str, name: str) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in status(api, ns, name).get("conditions") or []
    )


def sh(name: str, script: str, **extra: Any) -> Obj:
    return {"name": name, "image": BUSYBOX, "command": ["sh", "-c", script], **extra}


WORK = {"name": "work", "mountPath": "/tmp/work"}


def test_init_order_sidecar_security_env_and_volumes(node: tuple[KubeAPI, NodeRuntime]) -> None:
    api, runtime = node
    ns = namespace(api, "kl-basics")
    api.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s", "namespace": ns},
            "data": {"password": "aHVudGVyMg=="},
        }
    )
    api.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": ns},
            "data": {"color": "green", "file.txt": "from a configmap\n"},
        }
    )
    spec = {
        "serviceAccountName": "default",
        "initContainers": [
            sh(
                "first",
                "echo first >> /tmp/work/order; chmod 666 /tmp/work/order",
                volumeMounts=[WORK],
            ),
            sh(
                "side",
                "echo side >> /tmp/work/order; exec sleep 600",
                restartPolicy="Always",
                # the next init container waits for this sidecar's startup probe
                startupProbe={
                    "exec": {"command": ["grep", "-q", "side", "/tmp/work/order"]},
                    "periodSeconds": 1,
                    "failureThreshold": 30,
                },
                volumeMounts=[WORK],
            ),
            sh(
                "caps",
                "echo caps >> /tmp/work/order; grep -E '^Cap(Eff|Bnd)' /proc/self/status"
                " > /tmp/work/caps; id -u > /tmp/work/caps-uid",
                securityContext={
                    "runAsUser": 0,
                    "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
                },
                volumeMounts=[WORK],
            ),
        ],
        "containers": [
            sh(
                "main",
                "echo main >> /tmp/work/order; env > /tmp/work/env; id -u > /tmp/work/uid;"
                " id -g > /tmp/work/gid; cat /run/cfg/file.txt > /tmp/work/cfg;"
                " cat /run/secret/password > /tmp/work/secret; cat /etc/hosts > /tmp/work/hosts;"
                ' touch /run/cfg/x 2>/tmp/work/ro-error; echo "$1" > /tmp/work/arg;'
                " exec sleep 600",
                args=["x", "$(POD_NAME)-arg"],
                securityContext={"runAsUser": 1234, "runAsGroup": 4321},
                env=[
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {
                        "name": "POD_NS",
                        "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
                    },
                    {
                        "name": "POD_SA",
                        "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}},
                    },
                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {
                        "name": "PASSWORD",
                        "valueFrom": {"secretKeyRef": {"name": "s", "key": "password"}},
                    },
                    {
                        "name": "COLOR",
                        "valueFrom": {"configMapKeyRef": {"name": "c", "key": "color"}},
                    },
                    {"name": "GREETING", "value": "hello $(POD_NAME)"},
                ],
                volumeMounts=[
                    WORK,
                    {"name": "cfg", "mountPath": "/run/cfg", "readOnly": True},
                    {"name": "secret", "mountPath": "/var/run/secret", "readOnly": True},
                    {"name": "token", "mountPath": "/var/run/secrets/tokens", "readOnly": True},
                ],
            )
        ],
        "volumes": [
            {"name": "work", "emptyDir": {}},
            {"name": "cfg", "configMap": {"name": "c"}},
            {"name": "secret", "secret": {"secretName": "s"}},
            {
                "name": "token",
                "projected": {
                    "sources": [
                        {
                            "serviceAccountToken": {
                                "audience": "identity.example",
                                "expirationSeconds": 3600,
                                "path": "tok",
                            }
                        }
                    ]
                },
            },
        ],
    }
    api.create(pod(ns, "basics", spec))
    wait_for("the pod to be Ready", lambda: is_ready(api, ns, "basics"))
    work = runtime.volume_dir(ns, "basics", "work")
    wait_for("main to write its files", lambda: (work / "arg").exists())
    assert (work / "order").read_text().split() == ["first", "side", "caps", "main"]
    # proxy-init's securityContext: uid 0 with exactly NET_ADMIN and NET_RAW
    caps = dict(line.split(":\t") for line in (work / "caps").read_text().splitlines())
    assert int(caps["CapEff"], 16) == int(caps["CapBnd"], 16) == (1 << 12) | (1 << 13)
    assert (work / "caps-uid").read_text().strip() == "0"
    assert (work / "uid").read_text().strip() == "1234"
    assert (work / "gid").read_text().strip() == "4321"
    env = dict(
        line.split("=", 1) for line in (work / "env").read_text().splitlines() if "=" in line
    )
    st = status(api, ns, "basics")
    assert env["POD_NAME"] == "basics" and env["POD_NS"] == ns and env["POD_SA"] == "default"
    assert env["POD_IP"] == st["podIP"] and st["podIP"].startswith("10.244.0.")
    assert env["PASSWORD"] == "hunter2" and env["COLOR"] == "green"
    assert env["GREETING"] == "hello basics"
    assert (work / "arg").read_text().strip() == "basics-arg"
    assert (work / "cfg").read_text() == "from a configmap\n"
    assert (work / "secret").read_text() == "hunter2"
    assert "Read-only file system" in (work / "ro-error").read_text()
    assert f"{st['podIP']}\tbasics" in (work / "hosts").read_text()
    # the projected token: minted for the pod's service account and audience
    token = (runtime.volume_dir(ns, "basics", "token") / "tok").read_text()
    review = api.create(
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token, "audiences": ["identity.example"]},
        }
    )
    assert review["status"]["authenticated"] is True
    assert review["status"]["user"]["username"] == f"system:serviceaccount:{ns}:default"
    wrong = api.create(
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token, "audiences": ["other"]},
        }
    )
    assert wrong["status"]["authenticated"] is False
    side = container_status(api, ns, "basics", "side")
    assert side["started"] is True and "running" in side["state"]
    first = container_status(api, ns, "basics", "first")
    assert first["state"]["terminated"]["reason"] == "Completed"


def test_restarts_back_off_and_probes(node: tuple[KubeAPI, NodeRuntime]) -> None:
    api, runtime = node
    ns = namespace(api, "kl-probes")
    spec = {
        "containers": [
            sh("crash", "echo started; exit 3"),
            sh(
                "gated",
                "exec sleep 600",
                readinessProbe={
                    "exec": {"command": ["cat", "/tmp/work/ready"]},
                    "periodSeconds": 1,
                    "failureThreshold": 1,
                },
                livenessProbe={
                    "exec": {"command": ["sh", "-c", "! test -e /tmp/work/dead"]},
                    "periodSeconds": 1,
                    "failureThreshold": 2,
                },
                volumeMounts=[WORK],
            ),
        ],
        "volumes": [{"name": "work", "emptyDir": {}}],
        "terminationGracePeriodSeconds": 1,
    }
    api.create(pod(ns, "probed", spec))
    crash = wait_for(
        "CrashLoopBackOff after restarts",
        lambda: (
            (c := container_status(api, ns, "probed", "crash")).get("restartCount", 0) >= 2
            and c["state"].get("waiting", {}).get("reason") == "CrashLoopBackOff"
            and c
        ),
    )
    assert crash["lastState"]["terminated"]["exitCode"] == 3
    assert runtime.logs(ns, "probed", "crash").count("started") >= 3
    gated = container_status(api, ns, "probed", "gated")
    assert "running" in gated["state"] and gated["ready"] is False
    work = runtime.volume_dir(ns, "probed", "work")
    (work / "ready").write_text("yes")
    wait_for("readiness", lambda: container_status(api, ns, "probed", "gated")["ready"])
    assert not is_ready(api, ns, "probed")  # the crashing container is never ready
    (work / "dead").write_text("yes")
    wait_for(
        "a liveness restart",
        lambda: container_status(api, ns, "probed", "gated")["restartCount"] >= 1,
    )


def test_unknown_image_is_an_image_pull_error(node: tuple[KubeAPI, NodeRuntime]) -> None:
    api, _ = node
    ns = namespace(api, "kl-image")
    api.create(pod(ns, "nope", {"containers": [{"name": "app", "image": "example.org/nope:9"}]}))
    reasons = set()

    def seen_both() -> bool:
        waiting = container_status(api, ns, "nope", "app").get("state", {}).get("waiting", {})
        reasons.add(waiting.get("reason"))
        return {"ErrImagePull", "ImagePullBackOff"} <= reasons

    wait_for("ErrImagePull then ImagePullBackOff", seen_both)
    assert status(api, ns, "nope")["phase"] == "Pending"


def test_delete_sends_sigterm_then_sigkill(node: tuple[KubeAPI, NodeRuntime]) -> None:
    api, runtime = node
    ns = namespace(api, "kl-delete")
    stubborn = sh("app", "trap '' TERM; echo up; while :; do sleep 0.1; done")
    polite = sh("app", "trap 'echo got TERM; exit 0' TERM; echo up; while :; do sleep 0.1; done")
    api.create(pod(ns, "stubborn", {"containers": [stubborn], "terminationGracePeriodSeconds": 2}))
    api.create(pod(ns, "polite", {"containers": [polite], "terminationGracePeriodSeconds": 30}))
    for name in ("stubborn", "polite"):
        wait_for(f"{name} to run", lambda n=name: "up" in runtime.logs(ns, n, "app"))
    pids = {n: runtime.runner(ns, n).mains[0].proc.pid for n in ("stubborn", "polite")}  # type: ignore[union-attr]
    t0 = time.monotonic()
    api.delete("v1", "Pod", "polite", ns)
    api.delete("v1", "Pod", "stubborn", ns)
    wait_for("polite to exit on SIGTERM", lambda: not Path(f"/proc/{pids['polite']}").exists(), 10)
    polite_s = time.monotonic() - t0
    wait_for("stubborn to be SIGKILLed", lambda: not Path(f"/proc/{pids['stubborn']}").exists(), 10)
    stubborn_s = time.monotonic() - t0
    assert polite_s < 1.5, polite_s
    assert 1.8 <= stubborn_s < 4, stubborn_s


def test_services_route_to_ready_endpoints_by_dns_name(node: tuple[KubeAPI, NodeRuntime]) -> None:
    api, runtime = node
    ns = namespace(api, "kl-svc")
    for app, image, port in (
        ("echo", "testbed.local/echo:1", 8080),
        ("client", "testbed.local/client:1", 8081),
    ):
        api.create(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": app, "namespace": ns},
                "spec": {
                    "replicas": 2 if app == "echo" else 1,
                    "selector": {"matchLabels": {"app": app}},
                    "template": {
                        "metadata": {"labels": {"app": app}},
                        "spec": {
                            "containers": [
                                {
                                    "name": app,
                                    "image": image,
                                    "ports": [{"name": "http", "containerPort": port}],
                                    "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
                                }
                            ]
                        },
                    },
                },
            }
        )
    api.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "echo", "namespace": ns},
            "spec": {
                "selector": {"app": "echo"},
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            },
        }
    )

    def ready_pods(app: str) -> list[str]:
        return [
            p["metadata"]["name"]
            for p in api.list("v1", "Pod", ns)
            if p["metadata"]["labels"].get("app") == app
            and is_ready(api, ns, p["metadata"]["name"])
        ]

    wait_for(
        "echo x2 and client ready", lambda: len(ready_pods("echo")) == 2 and ready_pods("client")
    )
    (client,) = ready_pods("client")
    runtime.settle()  # kube-proxy's rules follow the endpoints a tick later, as on a cluster
    netns = runtime.runner(ns, client).netns
    answered: set[str] = set()
    for name in ("echo", f"echo.{ns}", f"echo.{ns}.svc.cluster.local"):
        url = f"http://{name}/hello"

        def fetch(u: str = url) -> tuple[int, bytes]:
            return http_get("127.0.0.1", 8081, f"/fetch?url={u}&n=20", timeout=30)

        code, body = in_netns(netns, fetch, timeout=40)
        assert code == 200
        results = json.loads(body)
        assert all(s == 200 for s, _ in results), results[:3]
        answered |= {json.loads(b)["pod"] for _, b in results}
    assert answered == set(ready_pods("echo"))  # both replicas served, through the ClusterIP
    # the API server's pods/proxy reaches a pod over the pod network (kubectl get --raw)
    echo = sorted(answered)[0]
    raw = api.kubectl("get", "--raw", f"/api/v1/namespaces/{ns}/pods/{echo}:8080/proxy/via-api")
    assert raw.returncode == 0, raw.stderr
    assert json.loads(raw.stdout)["pod"] == echo and json.loads(raw.stdout)["path"] == "/via-api"
    # a Service without ready endpoints refuses at once, as kube-proxy's REJECT rule makes it
    api.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "nobody", "namespace": ns},
            "spec": {"selector": {"app": "none"}, "ports": [{"name": "http", "port": 80}]},
        }
    )
    runtime.settle()
    t0 = time.monotonic()
    code, body = in_netns(
        netns,
        lambda: http_get("127.0.0.1", 8081, "/fetch?url=http://nobody/&n=1&timeout=5", timeout=30),
    )
    ((status_code, error),) = json.loads(body)
    assert status_code == 0 and "refused" in error, error
    assert time.monotonic() - t0 < 2
    # a webhook Service gets a relay from the host into the pod network
    api.create(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "kl-relay"},
            "webhooks": [
                {
                    "name": "echo.example.org",
                    "admissionReviewVersions": ["v1"],
                    "sideEffects": "None",
                    "failurePolicy": "Ignore",
                    "objectSelector": {"matchLabels": {"never": "matches"}},
                    "clientConfig": {"service": {"namespace": ns, "name": "echo", "port": 80}},
                    "rules": [
                        {
                            "operations": ["CREATE"],
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "resources": ["pods"],
                        }
                    ],
                }
            ],
        }
    )
    url = wait_for("the relay", lambda: api.cluster.webhook_urls.get((ns, "echo", 80)))
    port = int(url.rsplit(":", 1)[1])
    code, body = http_get("127.0.0.1", port, "/via-relay")
    assert code == 200 and json.loads(body)["pod"] in answered
    api.delete("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "kl-relay")


def test_pods_reach_the_api_with_their_service_account(node: tuple[KubeAPI, NodeRuntime]) -> None:
    api, runtime = node
    ns = namespace(api, "kl-api")
    script = (
        "import json, ssl, urllib.request\n"
        "sa = '/var/run/secrets/kubernetes.io/serviceaccount/'\n"
        "ctx = ssl.create_default_context(cafile=sa + 'ca.crt')\n"
        "req = urllib.request.Request('https://10.96.0.1/api/v1/namespaces/' + "
        "open(sa + 'namespace').read() + '/pods',"
        " headers={'Authorization': 'Bearer ' + open(sa + 'token').read()})\n"
        "print('pods:', [p['metadata']['name'] for p in json.load("
        "urllib.request.urlopen(req, context=ctx, timeout=10))['items']], flush=True)\n"
    )
    api.create(
        pod(
            ns,
            "caller",
            {
                "restartPolicy": "Never",
                "containers": [
                    {"name": "app", "image": BUSYBOX, "command": ["python", "-c", script]}
                ],
            },
        )
    )
    wait_for("the pod to succeed", lambda: status(api, ns, "caller").get("phase") == "Succeeded")
    assert "pods: ['caller']" in runtime.logs(ns, "caller", "app")
