"""The CustomResourceDefinitions lacewing serves, with real structural openAPIV3Schemas.

How it works: `KINDS` is the table of kinds (group, version, plural, short names and the
`spec` schema); `custom_resource_definitions()` turns each row into an
`apiextensions.k8s.io/v1` CRD. Schemas are built from a few helpers (`_str`, `_int`, `_arr`,
`_obj`) so that each one reads like the resource it describes; the API server enforces them,
and tests validate example resources against them with `jsonschema`.

- policy.lacewing.io/v1beta1: Server (a port of a set of pods), AuthorizationPolicy (who may
  reach a target), MeshTLSAuthentication (by mesh identity), NetworkAuthentication (by
  client network), HTTPRoute (routes of a Server or Service, Gateway-API shaped), GRPCRoute
  (gRPC routes of a Service, the same shape).
- lacewing.io/v1alpha2: ServiceProfile (per-route retries, timeouts and failure classes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lacewing.core.policy import DEFAULT_POLICIES

__all__ = [
    "CRD_LABEL",
    "KINDS",
    "CrdKind",
    "crd_names",
    "custom_resource_definitions",
    "schema_of",
]

CRD_LABEL = "lacewing.io/control-plane-ns"
POLICY_GROUP = "policy.lacewing.io"
CORE_GROUP = "lacewing.io"

Schema = dict[str, Any]


def _str(description: str = "", **extra: Any) -> Schema:
    return {"type": "string", **({"description": description} if description else {}), **extra}


def _int(description: str = "", **extra: Any) -> Schema:
    return {"type": "integer", **({"description": description} if description else {}), **extra}


def _arr(items: Schema, description: str = "", **extra: Any) -> Schema:
    out: Schema = {"type": "array", "items": items, **extra}
    if description:
        out["description"] = description
    return out


def _obj(properties: dict[str, Schema], required: tuple[str, ...] = (), **extra: Any) -> Schema:
    out: Schema = {"type": "object", "properties": properties, **extra}
    if required:
        out["required"] = list(required)
    return out


def _open(schema: Schema) -> Schema:
    """Also keep fields the schema does not list (recursive conditions cannot be spelled)."""
    return {**schema, "x-kubernetes-preserve-unknown-fields": True}


def _port(description: str) -> Schema:
    return {"x-kubernetes-int-or-string": True, "description": description}


def _duration(description: str) -> Schema:
    return _str(description, pattern=r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$")


_LABEL_SELECTOR = _obj(
    {
        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "matchExpressions": _arr(
            _obj(
                {
                    "key": _str(),
                    "operator": _str(enum=["In", "NotIn", "Exists", "DoesNotExist"]),
                    "values": _arr(_str()),
                },
                required=("key", "operator"),
            )
        ),
    },
    description="Selects pods by label, as a Deployment's selector does.",
)

_REF = _obj(
    {
        "group": _str("API group of the referent; empty for the core group."),
        "kind": _str("Kind of the referent."),
        "name": _str("Name of the referent."),
        "namespace": _str("Namespace of the referent; the policy's own when empty."),
    },
    required=("kind", "name"),
)

_PROTOCOLS = ["unknown", "HTTP/1", "HTTP/2", "gRPC", "opaque", "TLS"]
_DEFAULT_POLICIES = list(DEFAULT_POLICIES)  # the controller's own list: nothing to drift

_SERVER = _obj(
    {
        "podSelector": _LABEL_SELECTOR,
        "port": _port("Container port number or name the Server describes."),
        "proxyProtocol": _str(
            "Protocol of the port; `unknown` means detect it.", enum=_PROTOCOLS, default="unknown"
        ),
        "accessPolicy": _str(
            "Policy for clients no AuthorizationPolicy names.", enum=_DEFAULT_POLICIES
        ),
    },
    required=("podSelector", "port"),
)

_AUTHORIZATION_POLICY = _obj(
    {
        "targetRef": _REF,
        "requiredAuthenticationRefs": _arr(
            _REF, "All of these authentications must hold for a client to be authorized."
        ),
    },
    required=("targetRef", "requiredAuthenticationRefs"),
)

_MESH_TLS = _obj(
    {
        "identities": _arr(
            _str(), "Mesh identities (or `*`) of clients that authenticate.", minItems=1
        ),
        "identityRefs": _arr(_REF, "ServiceAccounts whose identities authenticate.", minItems=1),
    },
    oneOf=[{"required": ["identities"]}, {"required": ["identityRefs"]}],
)

_NETWORK = _obj(
    {
        "networks": _arr(
            _obj(
                {"cidr": _str("A client network, e.g. 10.0.0.0/8."), "except": _arr(_str())},
                required=("cidr",),
            ),
            minItems=1,
        )
    },
    required=("networks",),
)


def _name_value_matches() -> Schema:
    """Header or query-parameter matches; a new dict per use, so YAML writes it out in full."""
    return _arr(
        _obj(
            {
                "name": _str(),
                "value": _str(),
                "type": _str(enum=["Exact", "RegularExpression"]),
            },
            required=("name", "value"),
        )
    )


_HTTP_MATCH = _obj(
    {
        "path": _obj(
            {
                "type": _str(
                    enum=["Exact", "PathPrefix", "RegularExpression"], default="PathPrefix"
                ),
                "value": _str(default="/"),
            }
        ),
        "headers": _name_value_matches(),
        "queryParams": _name_value_matches(),
        "method": _str(
            enum=["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]
        ),
    }
)


def _gateway_ref(extra: dict[str, Schema]) -> Schema:
    """A Gateway API reference to an object (and port), plus `extra` fields."""
    return _obj(
        {
            "group": _str(),
            "kind": _str(),
            "name": _str(),
            "namespace": _str(),
            "port": _int(minimum=1, maximum=65535),
            **extra,
        },
        required=("name",),
    )


_HTTP_ROUTE = _obj(
    {
        "parentRefs": _arr(
            _gateway_ref({"sectionName": _str()}),
            "The Servers or Services these routes apply to.",
        ),
        "hostnames": _arr(_str()),
        "rules": _arr(
            _obj(
                {
                    "matches": _arr(_HTTP_MATCH),
                    "filters": _arr(
                        _open(_obj({"type": _str()}, required=("type",))),
                        "Gateway API filters, and FaultInjection (see docs/traffic.md).",
                    ),
                    "backendRefs": _arr(
                        _gateway_ref({"weight": _int(minimum=0, maximum=1000000, default=1)})
                    ),
                    "timeouts": _obj(
                        {
                            "request": _duration("Whole request, retries included."),
                            "backendRequest": _duration("Each try."),
                        }
                    ),
                }
            )
        ),
    }
)

_GRPC_MATCH = _obj(
    {
        "method": _obj(
            {
                "type": _str(enum=["Exact", "RegularExpression"], default="Exact"),
                "service": _str(),
                "method": _str(),
            }
        ),
        "headers": _name_value_matches(),
    }
)

_GRPC_ROUTE = _obj(
    {
        "parentRefs": _arr(
            _gateway_ref({"sectionName": _str()}), "The Services these routes apply to."
        ),
        "hostnames": _arr(_str()),
        "rules": _arr(
            _obj(
                {
                    "matches": _arr(_GRPC_MATCH),
                    "filters": _arr(
                        _open(_obj({"type": _str()}, required=("type",))),
                        "Header modifiers, and FaultInjection (see docs/traffic.md).",
                    ),
                    "backendRefs": _arr(
                        _gateway_ref({"weight": _int(minimum=0, maximum=1000000, default=1)})
                    ),
                    "timeouts": _obj(
                        {
                            "request": _duration("Whole call, retries included."),
                            "backendRequest": _duration("Each try."),
                        }
                    ),
                }
            )
        ),
    }
)

_STATUS_RANGE = _obj({"min": _int(minimum=100, maximum=599), "max": _int(minimum=100, maximum=599)})

_SERVICE_PROFILE = _obj(
    {
        "routes": _arr(
            _obj(
                {
                    "name": _str(),
                    "condition": _open(
                        _obj(
                            {"method": _str(), "pathRegex": _str()},
                            description="Request match; `all`, `any` and `not` nest conditions.",
                        )
                    ),
                    "responseClasses": _arr(
                        _obj(
                            {
                                "condition": _open(_obj({"status": _STATUS_RANGE})),
                                "isFailure": {"type": "boolean"},
                            },
                            required=("condition",),
                        )
                    ),
                    "isRetryable": {"type": "boolean"},
                    "timeout": _duration("Give up on the request after this long."),
                },
                required=("name", "condition"),
            )
        ),
        "retryBudget": _obj(
            {
                "retryRatio": {"type": "number", "minimum": 0},
                "minRetriesPerSecond": _int(minimum=0),
                "ttl": _duration("Window the ratio is computed over."),
            },
            required=("retryRatio", "minRetriesPerSecond", "ttl"),
        ),
        "dstOverrides": _arr(
            _obj(
                {"authority": _str(), "weight": _port("Relative weight, e.g. 100 or 500m.")},
                required=("authority", "weight"),
            )
        ),
        "opaquePorts": _arr(_int(minimum=1, maximum=65535)),
    }
)


# Gateway API's RouteStatus: one entry per parentRef a controller reports on.
_ROUTE_STATUS = _obj(
    {
        "parents": _arr(
            _obj(
                {
                    "parentRef": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "controllerName": _str(),
                    "conditions": _arr(
                        {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    ),
                },
                required=("parentRef", "controllerName"),
            )
        )
    }
)


@dataclass(frozen=True)
class CrdKind:
    group: str
    version: str
    kind: str
    plural: str
    short_names: tuple[str, ...]
    spec: Schema
    spec_required: bool = True
    status: bool = False  # a `status` subresource, written by a controller (the routes)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"


_P, _C = POLICY_GROUP, CORE_GROUP
KINDS: tuple[CrdKind, ...] = (
    CrdKind(_P, "v1beta1", "Server", "servers", ("srv",), _SERVER),
    CrdKind(_P, "v1beta1", "AuthorizationPolicy", "authorizationpolicies", ("authzpolicy",),
            _AUTHORIZATION_POLICY),
    CrdKind(_P, "v1beta1", "MeshTLSAuthentication", "meshtlsauthentications", ("meshtlsauthn",),
            _MESH_TLS),
    CrdKind(_P, "v1beta1", "NetworkAuthentication", "networkauthentications", ("netauthn",),
            _NETWORK),
    CrdKind(_P, "v1beta1", "HTTPRoute", "httproutes", (), _HTTP_ROUTE, status=True),
    CrdKind(_P, "v1beta1", "GRPCRoute", "grpcroutes", (), _GRPC_ROUTE, status=True),
    CrdKind(_C, "v1alpha2", "ServiceProfile", "serviceprofiles", ("sp",), _SERVICE_PROFILE),
)  # fmt: skip


def schema_of(kind: CrdKind) -> Schema:
    """The whole-object openAPIV3Schema of a kind (what the API server validates against)."""
    return _obj(
        {
            "apiVersion": _str(),
            "kind": _str(),
            "metadata": {"type": "object"},
            "spec": kind.spec,
            **({"status": _ROUTE_STATUS} if kind.status else {}),
        },
        required=("spec",) if kind.spec_required else (),
    )


def crd_names() -> list[str]:
    """`<plural>.<group>` of every CRD, e.g. `servers.policy.lacewing.io`."""
    return [k.crd_name for k in KINDS]


def custom_resource_definitions(namespace: str = "lacewing") -> list[dict[str, Any]]:
    """One `apiextensions.k8s.io/v1` CRD per row of `KINDS`."""
    return [
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {
                "name": k.crd_name,
                "labels": {CRD_LABEL: namespace, "lacewing.io/control-plane-component": "crds"},
            },
            "spec": {
                "group": k.group,
                "scope": "Namespaced",
                "names": {
                    "kind": k.kind,
                    "listKind": f"{k.kind}List",
                    "plural": k.plural,
                    "singular": k.kind.lower(),
                    **({"shortNames": list(k.short_names)} if k.short_names else {}),
                    "categories": ["lacewing"],
                },
                "versions": [
                    {
                        "name": k.version,
                        "served": True,
                        "storage": True,
                        "schema": {"openAPIV3Schema": schema_of(k)},
                        **({"subresources": {"status": {}}} if k.status else {}),
                    }
                ],
            },
        }
        for k in KINDS
    ]
