"""API errors as the real server reports them: an HTTP code plus a `Status` object.

Store and patch code raise `ApiError`; the HTTP layer renders `status()` as the response body
and the in-process `KubeAPI` methods let it propagate, so a test sees the same code, reason and
message kubectl would print.
"""

from __future__ import annotations

from typing import Any


def _what(plural: str, group: str) -> str:
    """How the API names a resource in messages: `pods`, `deployments.apps`."""
    return f"{plural}.{group}" if group else plural


def _object(name: str, group: str, kind: str) -> dict[str, Any]:
    """The `details` of a Status about one object."""
    return {"name": name, "group": group, "kind": kind}


class ApiError(Exception):
    """A request the API refuses: `code` (404, 409, 422...), `reason` and a message."""

    def __init__(
        self, code: int, reason: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body

    @classmethod
    def bad_request(cls, message: str, reason: str = "BadRequest") -> ApiError:
        return cls(400, reason, message)

    @classmethod
    def not_found(cls, plural: str, name: str, group: str = "") -> ApiError:
        return cls(
            404,
            "NotFound",
            f'{_what(plural, group)} "{name}" not found',
            _object(name, group, plural),
        )

    @classmethod
    def already_exists(cls, plural: str, name: str, group: str = "") -> ApiError:
        return cls(
            409,
            "AlreadyExists",
            f'{_what(plural, group)} "{name}" already exists',
            _object(name, group, plural),
        )

    @classmethod
    def conflict(cls, plural: str, name: str, group: str = "", why: str = "") -> ApiError:
        why = why or "the object has been modified; please apply your changes to the latest "
        why += "version and try again" if why.endswith("latest ") else ""
        return cls(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {_what(plural, group)} "{name}": {why}',
            _object(name, group, plural),
        )

    @classmethod
    def invalid(
        cls, kind: str, name: str, causes: list[tuple[str, str]], group: str = ""
    ) -> ApiError:
        """422 Invalid; `causes` are (field, message) pairs."""
        text = "; ".join(f"{f}: {m}" for f, m in causes)
        return cls(
            422,
            "Invalid",
            f'{_what(kind, group)} "{name}" is invalid: {text}',
            {
                **_object(name, group, kind),
                "causes": [
                    {"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes
                ],
            },
        )
