"""Status-coded errors. Every expected failure is a ``NudgeError`` carrying its HTTP status,
so the web layer maps it without guessing and the CLI prints it without a traceback."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class NudgeError(Exception):
    """Root of every error Nudge raises on purpose."""

    status_code: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


class BadRequest(NudgeError):
    status_code = 400
    code = "bad_request"


class Unauthorized(NudgeError):
    status_code = 401
    code = "unauthorized"


class BudgetExceeded(NudgeError):
    """A spend budget or a hard limit on LLM calls would be exceeded; ``details`` names the budget and amounts.

    402, not 429: a 429 tells a client (and our retry policy) to try again shortly, but a spent budget does
    not come back by waiting (a campaign's never does); a person must raise the budget or the limit.
    """

    status_code = 402
    code = "budget_exceeded"


class Forbidden(NudgeError):
    status_code = 403
    code = "forbidden"


class NotFound(NudgeError):
    status_code = 404
    code = "not_found"


class Conflict(NudgeError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(NudgeError):
    status_code = 413
    code = "payload_too_large"


class ValidationFailed(NudgeError):
    """Input that does not pass validation; ``details`` lists every problem found, not just the first."""

    status_code = 422
    code = "validation_failed"


class TooManyRequests(NudgeError):
    """A hard limit on how often something may run was reached."""

    status_code = 429
    code = "too_many_requests"


class ServiceUnavailable(NudgeError):
    status_code = 503
    code = "service_unavailable"


def field_errors(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Validation errors (pydantic's shape: ``loc`` and ``msg``) as ``{"path": "batch.3.event", "message": …}``.

    The path is the dotted location inside the input, empty for the input as a whole; this is the
    ``details`` of every 400 the API answers for a body that does not validate.
    """
    return [{"path": ".".join(str(part) for part in error["loc"]), "message": str(error["msg"])} for error in errors]
