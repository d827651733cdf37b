"""API errors as the real server reports them: an HTTP code plus a `Status` object.

Store and patch code raise `ApiError`; the HTTP layer renders `status()` as the response body
and the in-process `KubeAPI` methods let it propagate, so a test sees the same code, reason and
message kubectl would print.
"""

from __future__ import annotations

from typing import Any


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
        what = f"{plural}.{group}" if group else plural
        return cls(
            404,
            "NotFound",
            f'{what} "{name}" not found',
            {"name": name, "group": group, "kind": plural},
        )

    @classmethod
    def already_exists(cls, plural: str, name: str, group: str = "") -> ApiError:
        what = f"{plural}.{group}" if group else plural
        return cls(
            409,
            "AlreadyExists",
            f'{what} "{name}" already exists',
            {"name": name, "group": group, "kind": plural},
        )

    @classmethod
    def conflict(cls, plural: str, name: str, group: str = "", why: str = "") -> ApiError:
        what = f"{plural}.{group}" if group else plural
        why = why or "the object has been modified; please apply your changes to the latest "
        why += "version and try again" if why.endswith("latest ") else ""
        return cls(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {what} "{name}": {why}',
            {"name": name, "group": group, "kind": plural},
        )

    @classmethod
    def invalid(
        cls, kind: str, name: str, causes: list[tuple[str, str]], group: str = ""
    ) -> ApiError:
        """422 Invalid; `causes` are (field, message) pairs."""
        text = "; ".join(f"{f}: {m}" for f, m in causes)
        what = f"{kind}.{group}" if group else kind
        return cls(
            422,
            "Invalid",
            f'{what} "{name}" is invalid: {text}',
            {
                "name": name,
                "group": group,
                "kind": kind,
                "causes": [
                    {"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes
                ],
            },
        )
