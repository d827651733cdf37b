"""Render the control plane: a pure function of (values, credentials) to a list of objects.

How it works: `COMPONENTS` is the table of control plane components (port, webhook Service,
arguments of `lacewing controller <name>`, extra volumes). `render_control_plane` walks it and
emits, in apply order: the Namespace, RBAC (`install.rbac`), the ConfigMaps (`lacewing-config`
with the full values and version; the identity trust roots), the Secrets (identity issuer,
webhook serving certificates), Services, Deployments (each pod carries the ONE sidecar of
`install.sidecar`, given the component's name: the proxy container, its init container and
volumes), PodDisruptionBudgets with `ha`, and last the webhook configuration (its Service
exists by then). `render_crds` is the `install --crds` half.

Destination and policy serve proxies over mTLS with a certificate they ask identity for
(a CSR and their projected service-account token, as a proxy does); neither ever sees the
issuer's key, which is mounted in the identity pod only. The policy pod also serves the
policy-validator webhook (`lacewing-policy-validator` Service, port 443 -> 9443), which the
ValidatingWebhookConfiguration sends every policy.lacewing.io CREATE and UPDATE to. No
heartbeat CronJob is rendered (it would have run `lacewing version` and done nothing).

Nothing here talks to a cluster or reads a clock: certificates come in through `Credentials`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import yaml

from lacewing import __version__
from lacewing.install import crds, rbac, sidecar
from lacewing.install.credentials import WEBHOOK_SERVICES, Credentials
from lacewing.install.values import Values, values_to_dict

__all__ = [
    "COMPONENTS",
    "COMPONENT_LABEL",
    "CONFIG_MAP",
    "ISSUER_SECRET",
    "Component",
    "cli_version",
    "render_control_plane",
    "render_crds",
]

CONFIG_MAP = "lacewing-config"
ISSUER_SECRET = "lacewing-identity-issuer"
COMPONENT_LABEL = "lacewing.io/control-plane-component"
CONTROLLER_UID = 2103
ISSUER_DIR = "/var/run/lacewing/identity/issuer"
TRUST_ANCHORS_DIR = "/var/run/lacewing/identity/trust-anchors"
WEBHOOK_TLS_DIR = "/var/run/lacewing/tls"
WEBHOOK_CERT_CHECKSUM = "checksum.lacewing.io/webhook-cert"

Doc = dict[str, Any]


def cli_version() -> str:
    return __version__.split("+")[0]


@dataclass(frozen=True)
class Component:
    name: str
    port: int
    args: Callable[[Values], list[str]]
    webhook_service: str | None = None
    webhook_port: int | None = None
    grpc: bool = True  # serves proxies on `port` (a `lacewing-<name>` Service)

    @property
    def deployment(self) -> str:
        return f"lacewing-{self.name}"


def _identity_args(v: Values) -> list[str]:
    return [
        "--trust-domain", v.identity.trust_domain,
        "--identity-issuance-lifetime", v.identity.issuance_lifetime,
        "--clock-skew-allowance", v.identity.clock_skew_allowance,
        "--issuer-dir", ISSUER_DIR,
        "--trust-anchors-file", f"{TRUST_ANCHORS_DIR}/{sidecar.TRUST_ROOTS_KEY}",
        "--listen-addr", "0.0.0.0:8080",
    ]  # fmt: skip


def _destination_args(v: Values) -> list[str]:
    # Serves mTLS with a certificate from identity (CSR + its service-account token), as a
    # proxy gets one; never the issuer's key.
    return [
        "--listen-addr", "0.0.0.0:8086",
        "--cluster-domain", v.cluster_domain,
        "--trust-domain", v.identity.trust_domain,
        "--identity-addr", sidecar.control_plane_address(v, "identity"),
        "--identity-token-file", sidecar.IDENTITY_TOKEN_PATH,
        "--trust-anchors-file", f"{TRUST_ANCHORS_DIR}/{sidecar.TRUST_ROOTS_KEY}",
    ]  # fmt: skip


def _policy_args(v: Values) -> list[str]:
    # The policy API over mTLS (its certificate from identity, as destination's) and the
    # policy-validator webhook with the install-generated serving certificate.
    return [
        "--listen-addr", "0.0.0.0:8090",
        "--admission-addr", "0.0.0.0:9443",
        "--tls-dir", WEBHOOK_TLS_DIR,
        "--default-policy", v.default_inbound_policy,
        "--cluster-networks", v.cluster_networks,
        "--trust-domain", v.identity.trust_domain,
        "--identity-addr", sidecar.control_plane_address(v, "identity"),
        "--identity-token-file", sidecar.IDENTITY_TOKEN_PATH,
        "--trust-anchors-file", f"{TRUST_ANCHORS_DIR}/{sidecar.TRUST_ROOTS_KEY}",
    ]  # fmt: skip


def _injector_args(v: Values) -> list[str]:
    return ["--listen-addr", "0.0.0.0:8443", "--tls-dir", WEBHOOK_TLS_DIR]


# Controllers that serve proxies over mTLS with a certificate they ask identity for.
_IDENTITY_CLIENTS = ("destination", "policy")

COMPONENTS: tuple[Component, ...] = (
    Component("identity", 8080, _identity_args),
    Component("destination", 8086, _destination_args),
    Component("policy", 8090, _policy_args, "lacewing-policy-validator", 9443),
    Component("proxy-injector", 8443, _injector_args, "lacewing-proxy-injector", 8443, grpc=False),
)
assert {c.webhook_service for c in COMPONENTS if c.webhook_service} == set(WEBHOOK_SERVICES)


def _labels(values: Values, component: str | None = None) -> dict[str, str]:
    labels = {
        "app.kubernetes.io/part-of": "lacewing",
        "app.kubernetes.io/version": values.image.tag,
        sidecar.CONTROL_PLANE_NS_LABEL: values.namespace,
    }
    if component:
        labels[COMPONENT_LABEL] = component
        labels["app.kubernetes.io/name"] = component
    return labels


def _meta(values: Values, name: str, component: str | None = None, ns: bool = True) -> Doc:
    meta: Doc = {"name": name}
    if ns:
        meta["namespace"] = values.namespace
    meta["labels"] = _labels(values, component)
    return meta


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _tls_secret(values: Values, name: str, crt: str, key: str, ca: str, comp: str) -> Doc:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": _meta(values, name, comp),
        "data": {"tls.crt": _b64(crt), "tls.key": _b64(key), "ca.crt": _b64(ca)},
    }


def _namespace(values: Values) -> Doc:
    meta = _meta(values, values.namespace, ns=False)
    meta["labels"]["config.lacewing.io/admission-webhooks"] = "disabled"
    meta["annotations"] = {"lacewing.io/inject": "disabled"}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def _config_maps(values: Values, creds: Credentials) -> list[Doc]:
    stored = values_to_dict(values)
    docs: list[Doc] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(values, CONFIG_MAP, "controller"),
            "data": {
                "version": cli_version(),
                "values": yaml.safe_dump(stored, sort_keys=False, width=1 << 16),
            },
        }
    ]
    if creds.trust_anchors_pem:  # with an external issuer, trust-manager may publish it instead
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": _meta(values, sidecar.TRUST_ROOTS_CONFIG_MAP, "identity"),
                "data": {sidecar.TRUST_ROOTS_KEY: creds.trust_anchors_pem},
            }
        )
    return docs


def _secrets(values: Values, creds: Credentials) -> list[Doc]:
    docs = []
    if creds.issuer_cert_pem and creds.issuer_key_pem:
        docs.append(
            _tls_secret(
                values,
                ISSUER_SECRET,
                creds.issuer_cert_pem,
                creds.issuer_key_pem,
                creds.trust_anchors_pem,
                "identity",
            )
        )
    for service, component in WEBHOOK_SERVICES.items():
        crt, key = creds.webhook_certs[service]
        docs.append(
            _tls_secret(values, f"{service}-k8s-tls", crt, key, creds.webhook_ca_pem, component)
        )
    return docs


def _service(values: Values, name: str, comp: str, port: int, target: int, pname: str) -> Doc:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(values, name, comp),
        "spec": {
            "type": "ClusterIP",
            "selector": {COMPONENT_LABEL: comp, sidecar.CONTROL_PLANE_NS_LABEL: values.namespace},
            "ports": [{"name": pname, "port": port, "targetPort": target, "protocol": "TCP"}],
        },
    }


def _services(values: Values) -> list[Doc]:
    docs = []
    for c in COMPONENTS:
        if c.grpc:
            docs.append(_service(values, c.deployment, c.name, c.port, c.port, "grpc"))
        if c.webhook_service and c.webhook_port:
            docs.append(_service(values, c.webhook_service, c.name, 443, c.webhook_port, "webhook"))
    return docs


def _controller_container(values: Values, c: Component) -> Doc:
    main_port = "grpc" if c.grpc else "webhook"
    ports = [{"name": main_port, "containerPort": c.port, "protocol": "TCP"}]
    if c.webhook_port and c.webhook_port != c.port:
        ports.append({"name": "webhook", "containerPort": c.webhook_port, "protocol": "TCP"})
    admin = sidecar.CONTROLLER_ADMIN_PORT
    ports.append(
        {"name": sidecar.CONTROLLER_ADMIN_PORT_NAME, "containerPort": admin, "protocol": "TCP"}
    )
    mounts: list[Doc] = []
    if c.name == "identity":
        mounts.append({"name": "identity-issuer", "mountPath": ISSUER_DIR, "readOnly": True})
    if c.name in _IDENTITY_CLIENTS or c.name == "identity":
        mounts.append({"name": "trust-roots", "mountPath": TRUST_ANCHORS_DIR, "readOnly": True})
    if c.name in _IDENTITY_CLIENTS:  # its token for identity, as the proxy's
        mounts.append(
            {
                "name": sidecar.IDENTITY_TOKEN_VOLUME,
                "mountPath": sidecar.IDENTITY_TOKEN_PATH.rsplit("/", 1)[0],
                "readOnly": True,
            }
        )
    if c.webhook_service:
        mounts.append({"name": "webhook-tls", "mountPath": WEBHOOK_TLS_DIR, "readOnly": True})
    container: Doc = {
        "name": c.name,
        "image": values.image.ref,
        "imagePullPolicy": values.image.pull_policy,
        "args": ["-L", values.namespace, "controller", c.name, *c.args(values)],
        "env": [
            {"name": "LACEWING_LOG_LEVEL", "value": values.controller_log_level},
            {"name": sidecar.CONTROLLER_ADMIN_ADDR_ENV, "value": f"0.0.0.0:{admin}"},
        ],
        "ports": ports,
        "readinessProbe": {"tcpSocket": {"port": main_port}, "periodSeconds": 10},
        "livenessProbe": {
            "tcpSocket": {"port": main_port},
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
        },
        "securityContext": sidecar.restricted_security_context(CONTROLLER_UID),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if mounts:
        container["volumeMounts"] = mounts
    spec = sidecar.resources(values.controller_resources)
    if spec:
        container["resources"] = spec
    return container


def _volumes(values: Values, c: Component) -> list[Doc]:
    volumes: list[Doc] = []
    if c.name == "identity":
        volumes.append({"name": "identity-issuer", "secret": {"secretName": ISSUER_SECRET}})
    if c.name in _IDENTITY_CLIENTS or c.name == "identity":
        volumes.append(
            {"name": "trust-roots", "configMap": {"name": sidecar.TRUST_ROOTS_CONFIG_MAP}}
        )
    if c.webhook_service:
        secret = {"secretName": f"{c.webhook_service}-k8s-tls"}
        volumes.append({"name": "webhook-tls", "secret": secret})
    return volumes + sidecar.proxy_volumes(values)


def _pod_annotations(values: Values, c: Component, creds: Credentials) -> dict[str, str]:
    annotations = {"lacewing.io/created-by": f"lacewing/cli {cli_version()}"}
    if c.webhook_service:
        # `upgrade` renews webhook certificates; a changed checksum rolls the pods so they serve
        # the certificate the new caBundle trusts (a running pod keeps the one it read)
        crt = creds.webhook_certs[c.webhook_service][0]
        annotations[WEBHOOK_CERT_CHECKSUM] = hashlib.sha256(crt.encode()).hexdigest()
    skipped = sidecar.skip_inbound_ports(values, c.name)
    if skipped:  # what proxy-init skips, for destination to read (no identity on them)
        annotations[sidecar.SKIP_INBOUND_ANNOTATION] = skipped
    return annotations


def _deployment(values: Values, c: Component, creds: Credentials) -> Doc:
    selector = {COMPONENT_LABEL: c.name, sidecar.CONTROL_PLANE_NS_LABEL: values.namespace}
    pod_labels = {**_labels(values, c.name), **sidecar.proxy_pod_labels(values)}
    pod_spec: Doc = {
        "serviceAccountName": f"lacewing-{c.name}",
        "automountServiceAccountToken": True,
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "initContainers": [sidecar.proxy_init_container(values, c.name)],
        "containers": [_controller_container(values, c), sidecar.proxy_container(values, c.name)],
        "volumes": _volumes(values, c),
    }
    if values.ha:
        pod_spec["affinity"] = {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "labelSelector": {"matchLabels": selector},
                            "topologyKey": "kubernetes.io/hostname",
                        },
                    }
                ]
            }
        }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(values, c.deployment, c.name),
        "spec": {
            "replicas": values.replicas,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": selector},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "25%"},
            },
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": _pod_annotations(values, c, creds),
                },
                "spec": pod_spec,
            },
        },
    }


def _pdb(values: Values, c: Component) -> Doc:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(values, c.deployment, c.name),
        "spec": {
            "maxUnavailable": 1,
            "selector": {
                "matchLabels": {
                    COMPONENT_LABEL: c.name,
                    sidecar.CONTROL_PLANE_NS_LABEL: values.namespace,
                }
            },
        },
    }


def _webhook_client(values: Values, service: str, creds: Credentials) -> Doc:
    return {
        "service": {"name": service, "namespace": values.namespace, "path": "/", "port": 443},
        "caBundle": _b64(creds.webhook_ca_pem),
    }


def _webhook_namespace_selector(values: Values) -> Doc:
    return {
        "matchExpressions": [
            {
                "key": "config.lacewing.io/admission-webhooks",
                "operator": "NotIn",
                "values": ["disabled"],
            },
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]},
        ]
    }


def _webhooks(values: Values, creds: Credentials) -> list[Doc]:
    common = {
        "failurePolicy": values.webhook.failure_policy,
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": values.webhook.timeout_seconds,
        "namespaceSelector": _webhook_namespace_selector(values),
    }
    name = f"lacewing-{values.namespace}-proxy-injector-webhook-config"
    mutating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": _meta(values, name, "proxy-injector", ns=False),
        "webhooks": [
            {
                "name": "lacewing-proxy-injector.lacewing.io",
                "clientConfig": _webhook_client(values, "lacewing-proxy-injector", creds),
                "rules": [
                    {
                        "operations": ["CREATE"],
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["pods", "services"],
                        "scope": "Namespaced",
                    }
                ],
                "reinvocationPolicy": "IfNeeded",
                **common,
            }
        ],
    }
    validator = f"lacewing-{values.namespace}-policy-validator-webhook-config"
    validating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": _meta(values, validator, "policy", ns=False),
        "webhooks": [
            {
                "name": "lacewing-policy-validator.lacewing.io",
                "clientConfig": _webhook_client(values, "lacewing-policy-validator", creds),
                "rules": [
                    {
                        "operations": ["CREATE", "UPDATE"],
                        "apiGroups": [crds.POLICY_GROUP],
                        "apiVersions": ["*"],
                        "resources": [
                            "servers",
                            "authorizationpolicies",
                            "meshtlsauthentications",
                            "networkauthentications",
                        ],
                        "scope": "Namespaced",
                    }
                ],
                **common,
            }
        ],
    }
    return [mutating, validating]


def render_crds(values: Values) -> list[Doc]:
    """`install --crds`: the CustomResourceDefinitions."""
    return crds.custom_resource_definitions(values.namespace)


def render_control_plane(values: Values, creds: Credentials) -> list[Doc]:
    """`install`: every object of the control plane, in apply order."""
    stored = values
    if creds.trust_anchors_pem and values.identity.trust_anchors_pem != creds.trust_anchors_pem:
        stored = replace(
            values, identity=replace(values.identity, trust_anchors_pem=creds.trust_anchors_pem)
        )
    docs: list[Doc] = [_namespace(stored)]
    docs += rbac.rbac_objects(stored.namespace, _labels(stored))
    docs += _config_maps(stored, creds)
    docs += _secrets(stored, creds)
    docs += _services(stored)
    docs += [_deployment(stored, c, creds) for c in COMPONENTS]
    if stored.ha:
        docs += [_pdb(stored, c) for c in COMPONENTS]
    docs += _webhooks(stored, creds)
    return docs
