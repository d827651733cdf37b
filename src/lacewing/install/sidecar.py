"""THE definition of the sidecar: the proxy container, the init container and their volumes.

Everything here is a pure function of `Values` returning Kubernetes JSON (dicts), so that
`install` (the control plane's own pods), `lacewing inject` and the proxy-injector webhook
produce byte-identical sidecars. Nothing in here knows the workload: what differs per pod
(namespace, service account) reaches the proxy through the downward API (`fieldRef`).

The proxy's environment follows its settings contract: only `LACEWING_PROXY_*` variables the
proxy knows are set (`lacewing.proxy.config`, which refuses unknown ones; destination's
address is `LACEWING_PROXY_DESTINATION_ADDR`), and the `LACEWING_IDENTITY_*` / `LACEWING_POD_*`
variables `lacewing.proxy.identity.sidecar.load_identity_config` reads. A unit test renders
install and inject output and fails on any `LACEWING_*` name no component reads.

The control plane's own pods get the same sidecar with `component=` set, which changes three
things, as Linkerd does for its control plane:
- the identity pod's proxy asks its own controller for a certificate on localhost
  (`LACEWING_IDENTITY_ADDR=localhost:8080`): through the Service it would wait for an endpoint
  that cannot become ready before the proxy holds a certificate;
- the destination and policy pods' proxies reach their own controller on localhost
  (8086, 8090);
- proxy-init skips the component's serving ports inbound (`CONTROL_PLANE_SKIP_INBOUND`: the
  identity, destination and policy controllers terminate their own TLS; the API server calls
  the injector's and the policy validator's webhooks with their caBundle), and the pod
  template says so in the
  `config.lacewing.io/skip-inbound-ports` annotation, which destination reads so that it
  announces no identity for those ports (clients must not wrap them in mesh mTLS).
The proxy runs as uid 2102, which proxy-init exempts from redirection.
"""

from __future__ import annotations

from typing import Any

from lacewing.core.identity import identity_service_name
from lacewing.install.values import ResourceValues, Values

__all__ = [
    "ADMIN_PORT_NAME",
    "CONTROLLER_ADMIN_ADDR_ENV",
    "CONTROLLER_ADMIN_PORT",
    "CONTROLLER_ADMIN_PORT_NAME",
    "CONTROL_PLANE_NS_LABEL",
    "CONTROL_PLANE_PORTS",
    "CONTROL_PLANE_SKIP_INBOUND",
    "IDENTITY_TOKEN_AUDIENCE",
    "IDENTITY_TOKEN_PATH",
    "IDENTITY_TOKEN_VOLUME",
    "INIT_CONTAINER_NAME",
    "PROXY_CONTAINER_NAME",
    "PROXY_PORT_NAME",
    "PROXY_VERSION_LABEL",
    "SKIP_INBOUND_ANNOTATION",
    "TAP_PORT_NAME",
    "TRUST_ROOTS_CONFIG_MAP",
    "TRUST_ROOTS_KEY",
    "control_plane_address",
    "proxy_container",
    "proxy_init_container",
    "proxy_pod_labels",
    "proxy_volumes",
    "resources",
    "restricted_security_context",
    "skip_inbound_ports",
]

PROXY_CONTAINER_NAME = "lacewing-proxy"
INIT_CONTAINER_NAME = "lacewing-init"
PROXY_PORT_NAME = "lacewing-proxy"
ADMIN_PORT_NAME = "lacewing-admin"
TAP_PORT_NAME = "lacewing-tap"
PROXY_VERSION_LABEL = "lacewing.io/proxy-version"
CONTROL_PLANE_NS_LABEL = "lacewing.io/control-plane-ns"
TRUST_ROOTS_CONFIG_MAP = "lacewing-identity-trust-roots"
TRUST_ROOTS_KEY = "ca-bundle.crt"
IDENTITY_TOKEN_VOLUME = "lacewing-identity-token"
IDENTITY_TOKEN_DIR = "/var/run/secrets/tokens"
IDENTITY_TOKEN_PATH = f"{IDENTITY_TOKEN_DIR}/lacewing-identity-token"
IDENTITY_TOKEN_AUDIENCE = "identity.lacewing.io"

SKIP_INBOUND_ANNOTATION = "config.lacewing.io/skip-inbound-ports"

# Control plane components and the port their proxies' clients dial (Linkerd's numbers).
CONTROL_PLANE_PORTS: dict[str, int] = {"identity": 8080, "destination": 8086, "policy": 8090}
# Ports of a control-plane pod that its proxy must never intercept inbound (see above).
# Every controller also serves plaintext /metrics, /ready and /live on its admin port
# (`admin-http`, Linkerd's 9990), scraped by viz's Prometheus whatever the inbound policy says.
CONTROLLER_ADMIN_PORT = 9990
CONTROLLER_ADMIN_PORT_NAME = "admin-http"  # what viz's `lacewing-controller` scrape job keeps
CONTROLLER_ADMIN_ADDR_ENV = "LACEWING_CONTROLLER_ADMIN_ADDR"  # read by lacewing.controller.admin
CONTROL_PLANE_SKIP_INBOUND: dict[str, tuple[int, ...]] = {
    "identity": (8080, CONTROLLER_ADMIN_PORT),
    "destination": (8086, CONTROLLER_ADMIN_PORT),
    "policy": (8090, 9443, CONTROLLER_ADMIN_PORT),
    "proxy-injector": (8443, CONTROLLER_ADMIN_PORT),
}


def resources(spec: ResourceValues) -> dict[str, dict[str, str]]:
    """A container's `resources` from requests/limits; empty values are left out."""
    out: dict[str, dict[str, str]] = {}
    for field_name, section, resource in (
        ("cpu_request", "requests", "cpu"),
        ("memory_request", "requests", "memory"),
        ("cpu_limit", "limits", "cpu"),
        ("memory_limit", "limits", "memory"),
    ):
        quantity = getattr(spec, field_name)
        if quantity:
            out.setdefault(section, {})[resource] = quantity
    return out


def restricted_security_context(uid: int) -> dict[str, Any]:
    """Pod Security "restricted" for a container running as `uid`: no root, no privileges."""
    return {
        "runAsUser": uid,
        "runAsGroup": uid,
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def control_plane_address(values: Values, component: str) -> str:
    """`lacewing-<component>.<ns>.svc.<domain>:<port>`, what proxies dial."""
    host = f"lacewing-{component}.{values.namespace}.svc.{values.cluster_domain}"
    return f"{host}:{CONTROL_PLANE_PORTS[component]}"


def _own_or_service(values: Values, target: str, component: str | None) -> str:
    """The pod of `target` itself reaches its controller on localhost (no Service hop)."""
    if component == target:
        return f"localhost:{CONTROL_PLANE_PORTS[target]}"
    return control_plane_address(values, target)


def _proxy_env(values: Values, component: str | None) -> list[dict[str, Any]]:
    p = values.proxy
    settings = {
        "INBOUND_LISTEN_ADDR": f"0.0.0.0:{p.ports.inbound}",
        "OUTBOUND_LISTEN_ADDR": f"127.0.0.1:{p.ports.outbound}",
        "ADMIN_LISTEN_ADDR": f"0.0.0.0:{p.ports.admin}",
        # tap (mutual TLS; by default only viz's tap component may: lacewing.proxy.tap)
        "TAP_LISTEN_ADDR": f"0.0.0.0:{p.ports.tap}",
        "LOG_LEVEL": p.log_level,
        "OPAQUE_PORTS": p.opaque_ports,
        "INBOUND_FORWARD_HOST": "127.0.0.1",
        "SHUTDOWN_GRACE_PERIOD": p.shutdown_grace_period,
        "DESTINATION_ADDR": _own_or_service(values, "destination", component),
        # inbound authorization: the policy controller, and what applies before it answers
        "POLICY_ADDR": _own_or_service(values, "policy", component),
        "DEFAULT_INBOUND_POLICY": values.default_inbound_policy,
        "CLUSTER_NETWORKS": values.cluster_networks,
    }
    env: list[dict[str, Any]] = [
        {"name": f"LACEWING_PROXY_{key}", "value": value} for key, value in settings.items()
    ]

    def field_ref(path: str) -> dict[str, Any]:
        return {"fieldRef": {"fieldPath": path}}

    trust_roots = {"configMapKeyRef": {"name": TRUST_ROOTS_CONFIG_MAP, "key": TRUST_ROOTS_KEY}}
    identity_svc = identity_service_name(values.namespace, values.identity.trust_domain)
    env += [
        {"name": "LACEWING_PROXY_POD_NAME", "valueFrom": field_ref("metadata.name")},
        {"name": "LACEWING_PROXY_POD_NAMESPACE", "valueFrom": field_ref("metadata.namespace")},
        {"name": "LACEWING_POD_NAMESPACE", "valueFrom": field_ref("metadata.namespace")},
        {"name": "LACEWING_POD_SERVICE_ACCOUNT", "valueFrom": field_ref("spec.serviceAccountName")},
        {"name": "LACEWING_IDENTITY_ADDR", "value": _own_or_service(values, "identity", component)},
        {"name": "LACEWING_IDENTITY_SVC_NAME", "value": identity_svc.name},
        {"name": "LACEWING_IDENTITY_TRUST_DOMAIN", "value": values.identity.trust_domain},
        {"name": "LACEWING_IDENTITY_TOKEN_FILE", "value": IDENTITY_TOKEN_PATH},
        {"name": "LACEWING_IDENTITY_TRUST_ANCHORS", "valueFrom": trust_roots},
    ]
    return env


def _probe(path: str, delay: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": ADMIN_PORT_NAME},
        "initialDelaySeconds": delay,
        "periodSeconds": 10,
        "timeoutSeconds": 1,
        "failureThreshold": 3,
    }


def proxy_container(
    values: Values, component: str | None = None, inbound_ports: str = ""
) -> dict[str, Any]:
    """The `lacewing-proxy` container: `lacewing proxy` as uid 2102, probes on the admin port.

    `component` is set for the control plane's own pods (see the module docstring);
    `inbound_ports` (`8080,9090`, what the injector finds in the pod's containers) lets the
    proxy fetch those ports' policy as it starts (`LACEWING_PROXY_INBOUND_PORTS`)."""
    p = values.proxy
    env = _proxy_env(values, component)
    if inbound_ports:
        env.append({"name": "LACEWING_PROXY_INBOUND_PORTS", "value": inbound_ports})
    container: dict[str, Any] = {
        "name": PROXY_CONTAINER_NAME,
        "image": values.image.ref,
        "imagePullPolicy": values.image.pull_policy,
        "args": ["proxy"],
        "env": env,
        "ports": [
            {"name": PROXY_PORT_NAME, "containerPort": p.ports.inbound, "protocol": "TCP"},
            {"name": ADMIN_PORT_NAME, "containerPort": p.ports.admin, "protocol": "TCP"},
            {"name": TAP_PORT_NAME, "containerPort": p.ports.tap, "protocol": "TCP"},
        ],
        "readinessProbe": _probe("/ready", 2),
        "livenessProbe": _probe("/live", 10),
        "securityContext": restricted_security_context(p.uid),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            {"name": IDENTITY_TOKEN_VOLUME, "mountPath": IDENTITY_TOKEN_DIR, "readOnly": True}
        ],
    }
    spec = resources(p.resources)
    if spec:
        container["resources"] = spec
    return container


def skip_inbound_ports(values: Values, component: str | None = None) -> str:
    """The ports proxy-init leaves alone inbound besides tap and admin (comma-separated)."""
    own = ",".join(str(port) for port in CONTROL_PLANE_SKIP_INBOUND.get(component or "", ()))
    return ",".join(x for x in (own, values.proxy_init.ignore_inbound_ports) if x)


def proxy_init_container(values: Values, component: str | None = None) -> dict[str, Any]:
    """The `lacewing-init` init container: `lacewing proxy-init` with NET_ADMIN and NET_RAW.

    It needs root in the pod's network namespace to write nat rules, and nothing else: no
    privilege escalation, a read-only root filesystem, every other capability dropped.
    """
    p, init = values.proxy, values.proxy_init
    args = [
        "proxy-init",
        "--incoming-proxy-port",
        str(p.ports.inbound),
        "--outgoing-proxy-port",
        str(p.ports.outbound),
        "--proxy-uid",
        str(p.uid),
    ]
    inbound_ignored = ",".join(
        x for x in (f"{p.ports.tap},{p.ports.admin}", skip_inbound_ports(values, component)) if x
    )
    args += ["--inbound-ports-to-ignore", inbound_ignored]
    if init.ignore_outbound_ports:
        args += ["--outbound-ports-to-ignore", init.ignore_outbound_ports]
    if init.skip_subnets:
        args += ["--subnets-to-ignore", init.skip_subnets]
    container: dict[str, Any] = {
        "name": INIT_CONTAINER_NAME,
        "image": values.image.ref,
        "imagePullPolicy": values.image.pull_policy,
        "args": args,
        "securityContext": {
            "runAsUser": 0,
            "runAsGroup": 0,
            "runAsNonRoot": False,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
        # iptables takes a lock file under /run; the root filesystem stays read-only.
        "volumeMounts": [{"name": "lacewing-init-xtables-lock", "mountPath": "/run"}],
    }
    spec = resources(init.resources)
    if spec:
        container["resources"] = spec
    return container


def proxy_volumes(values: Values) -> list[dict[str, Any]]:
    """Pod volumes the two containers mount: the identity token and the init's lock dir."""
    return [
        {
            "name": IDENTITY_TOKEN_VOLUME,
            "projected": {
                "sources": [
                    {
                        "serviceAccountToken": {
                            "audience": IDENTITY_TOKEN_AUDIENCE,
                            "expirationSeconds": 86400,
                            "path": "lacewing-identity-token",
                        }
                    }
                ]
            },
        },
        {"name": "lacewing-init-xtables-lock", "emptyDir": {}},
    ]


def proxy_pod_labels(values: Values) -> dict[str, str]:
    """Labels a meshed pod carries: which control plane, which proxy version."""
    return {
        CONTROL_PLANE_NS_LABEL: values.namespace,
        PROXY_VERSION_LABEL: values.image.tag,
    }
