"""Every LACEWING_* variable install or inject renders is one its component really reads.

The known names are not a list kept here: each rendered container's environment (with
`valueFrom` resolved as the kubelet would) is handed, as a mapping that records every name
looked up, to the functions that component's entry point parses its environment with. A
rendered `LACEWING_*` name nobody looked up is a variable nothing reads (the bug this guards:
`LACEWING_DESTINATION_ADDR` rendered while the proxy reads `LACEWING_PROXY_DESTINATION_ADDR`).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from typing import Any

import pytest
import yaml

from lacewing.cli.commands.controller import controller_log_level
from lacewing.cli.commands.inject import InjectOptions, run_inject
from lacewing.cli.context import GlobalOptions, Output
from lacewing.cli.serving import admin_addr
from lacewing.core.identity import IDENTITY_SERVICE_ACCOUNT, Identity
from lacewing.install import credentials, sidecar
from lacewing.install.render import render_control_plane
from lacewing.install.values import Values, build_values
from lacewing.proxy import config as proxy_config
from lacewing.proxy.identity.sidecar import load_identity_config

Obj = dict[str, Any]


class RecordingEnv(Mapping[str, str]):
    """An environment that remembers which names were looked up."""

    def __init__(self, data: Mapping[str, str]) -> None:
        self.data = dict(data)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return self.data[key]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.read.add(key)
        return key in self.data

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def _proxy_reads(env: Mapping[str, str]) -> None:
    proxy_config.load(env)  # what lacewing.proxy.main.serve parses, in the same order
    load_identity_config(env)


# The program a container runs (its first argument after global flags) -> how it parses env.
READERS: dict[str, tuple[Callable[[Mapping[str, str]], object], ...]] = {
    "proxy": (_proxy_reads,),
    "proxy-init": (),  # flags only
    "controller": (controller_log_level, admin_addr),
}


@cache
def _creds() -> credentials.Credentials:
    return credentials.generate("lacewing", "cluster.local")


def _program(container: Obj) -> str:
    args = list(container.get("args") or [])
    while args and args[0] in ("-L", "--lacewing-namespace"):
        args = args[2:]
    return args[0]


def _resolve(env: list[Obj], pod: Obj, config_maps: dict[str, Obj]) -> dict[str, str]:
    """Environment values as the kubelet computes them (fieldRef, configMapKeyRef)."""
    out: dict[str, str] = {}
    for item in env:
        if "value" in item:
            out[item["name"]] = item["value"]
            continue
        source = item["valueFrom"]
        if "fieldRef" in source:
            path = source["fieldRef"]["fieldPath"]
            field = {
                "metadata.name": pod["metadata"].get("name", "web-0"),
                "metadata.namespace": pod["metadata"].get("namespace", "shop"),
                "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
            }
            out[item["name"]] = field[path]
        else:
            ref = source["configMapKeyRef"]
            out[item["name"]] = config_maps[ref["name"]]["data"][ref["key"]]
    return out


def _pods_of(docs: list[Obj]) -> Iterator[Obj]:
    for doc in docs:
        if doc.get("kind") == "Deployment":
            template = doc["spec"]["template"]
            meta = {**template.get("metadata", {}), "namespace": doc["metadata"]["namespace"]}
            yield {"metadata": meta, "spec": template["spec"]}


def _containers(pod: Obj) -> Iterator[Obj]:
    yield from pod["spec"].get("initContainers") or []
    yield from pod["spec"]["containers"]


def _check(pod: Obj, config_maps: dict[str, Obj]) -> list[str]:
    unread = []
    for container in _containers(pod):
        if str(container.get("image", "")).split(":")[0] != Values().image.name:
            continue  # the workload's own containers are not ours
        env = RecordingEnv(_resolve(container.get("env") or [], pod, config_maps))
        for read in READERS[_program(container)]:
            read(env)  # also proves every rendered value parses
        rendered = {name for name in env.data if name.startswith("LACEWING_")}
        unread += [f"{container['name']}: {name}" for name in sorted(rendered - env.read)]
    return unread


def _install_docs() -> list[Obj]:
    return render_control_plane(Values(), _creds())


def _config_maps(docs: list[Obj]) -> dict[str, Obj]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}


def test_every_variable_install_renders_is_read() -> None:
    docs = _install_docs()
    pods = list(_pods_of(docs))
    assert len(pods) == 4  # identity, destination, policy, proxy-injector
    for pod in pods:
        assert _check(pod, _config_maps(docs)) == []


WORKLOAD = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      serviceAccountName: web
      containers: [{name: web, image: nginx}]
"""


def test_every_variable_inject_renders_is_read(tmp_path: Any) -> None:
    path = tmp_path / "web.yaml"
    path.write_text(WORKLOAD)
    out = io.StringIO()
    anchors = _creds().trust_anchors_pem
    values = build_values(overrides={"identity": {"trustAnchorsPem": anchors}})
    options = InjectOptions((str(path),), manual=True)
    run_inject(options, GlobalOptions(), Output(out=out), values_source=lambda *_: values)
    injected = yaml.safe_load(out.getvalue())
    pods = list(_pods_of([injected]))
    names = [c["name"] for c in _containers(pods[0])]
    assert sidecar.PROXY_CONTAINER_NAME in names and sidecar.INIT_CONTAINER_NAME in names
    assert _check(pods[0], {}) == []


def test_an_unread_variable_is_caught() -> None:
    """The check above can fail: the variable the issue found is reported."""
    docs = _install_docs()
    pod = next(_pods_of(docs))
    proxy = next(c for c in _containers(pod) if c["name"] == sidecar.PROXY_CONTAINER_NAME)
    proxy["env"].append({"name": "LACEWING_DESTINATION_ADDR", "value": "x:8086"})
    assert _check(pod, _config_maps(docs)) == ["lacewing-proxy: LACEWING_DESTINATION_ADDR"]


def _proxy_env(component: str | None) -> dict[str, str]:
    docs = _install_docs()
    pod = {"metadata": {"namespace": "lacewing"}, "spec": {"serviceAccountName": "x"}}
    return _resolve(sidecar.proxy_container(Values(), component)["env"], pod, _config_maps(docs))


@pytest.mark.parametrize(
    ("component", "identity_addr", "destination_addr"),
    [
        ("identity", "localhost:8080", "lacewing-destination.lacewing.svc.cluster.local:8086"),
        ("destination", "lacewing-identity.lacewing.svc.cluster.local:8080", "localhost:8086"),
        (None, "lacewing-identity.lacewing.svc.cluster.local:8080",
         "lacewing-destination.lacewing.svc.cluster.local:8086"),
    ],
)  # fmt: skip
def test_control_plane_pods_reach_their_own_controller_on_localhost(
    component: str | None, identity_addr: str, destination_addr: str
) -> None:
    env = _proxy_env(component)
    identity = load_identity_config(env)
    assert identity is not None
    assert str(identity.service_addr) == identity_addr
    # the name the identity controller's certificate carries: its service account's identity
    assert identity.service_identity == Identity("lacewing", IDENTITY_SERVICE_ACCOUNT)
    assert str(proxy_config.load(env).destination_addr) == destination_addr


def test_control_plane_serving_ports_are_skipped_inbound() -> None:
    docs = _install_docs()
    for pod in _pods_of(docs):
        component = pod["metadata"]["labels"]["lacewing.io/control-plane-component"]
        init = pod["spec"]["initContainers"][0]
        args = init["args"]
        skipped = set(args[args.index("--inbound-ports-to-ignore") + 1].split(","))
        main = pod["spec"]["containers"][0]
        served = {str(p["containerPort"]) for p in main["ports"]}
        assert served <= skipped, (component, served, skipped)
        annotation = pod["metadata"]["annotations"][sidecar.SKIP_INBOUND_ANNOTATION]
        assert set(annotation.split(",")) == served


def test_every_variable_the_local_runtime_gives_a_proxy_is_read(tmp_path: Any) -> None:
    """The local runtime builds its proxies' env itself (pod IPs, local tokens): same rule."""
    from lacewing.local.controlplane import proxy_env, with_control_plane
    from lacewing.local.plan import plan_cluster
    from lacewing.local.spec import parse_cluster

    spec = parse_cluster(
        {"workloads": [{"name": "web", "namespace": "shop", "command": ["web"],
                        "ports": [{"name": "http", "port": 8080}]}]}
    )  # fmt: skip
    plan = plan_cluster("t1", with_control_plane(spec, tmp_path))
    (tmp_path / "identity").mkdir()
    (tmp_path / "identity" / "ca-bundle.crt").write_text(_creds().trust_anchors_pem)
    env = RecordingEnv(proxy_env(plan, plan.pod("web-0"), tmp_path))
    _proxy_reads(env)
    rendered = {name for name in env.data if name.startswith("LACEWING_")}
    assert rendered and rendered <= env.read, sorted(rendered - env.read)


def test_the_controllers_admin_port_is_the_one_viz_scrapes() -> None:
    from lacewing.controller.admin import ADMIN_ADDR_ENV
    from lacewing.install import sidecar
    from lacewing.viz.scrapeconfig import CONTROLLER_ADMIN_PORT_NAME

    assert sidecar.CONTROLLER_ADMIN_ADDR_ENV == ADMIN_ADDR_ENV
    assert sidecar.CONTROLLER_ADMIN_PORT_NAME == CONTROLLER_ADMIN_PORT_NAME
