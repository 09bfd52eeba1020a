"""Error responses: every ``NudgeError`` answers its status with ``error.to_dict()``; so does invalid input.

Body shape, for every error the API returns::

    {"error": "bad_request", "message": "invalid request body",
     "details": [{"path": "batch.3.event", "message": "Field required"}]}

``details`` appears only when there is something to list.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from core.errors import BadRequest, NudgeError, field_errors

# RFC 9110: a 401 must say how to authenticate.
_CHALLENGE = {"WWW-Authenticate": 'Basic realm="nudge"'}


class FieldError(BaseModel):
    path: str
    message: str


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: str
    message: str
    details: list[FieldError] | None = None


def install(app: FastAPI) -> None:
    app.add_exception_handler(NudgeError, _nudge_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]


async def _nudge_error(_request: Request, error: NudgeError) -> JSONResponse:
    headers = _CHALLENGE if error.status_code == 401 else None
    return JSONResponse(error.to_dict(), status_code=error.status_code, headers=headers)


async def _invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 becomes our 400; paths are relative to the body (``query.``/``header.`` stay)."""
    errors: list[dict[str, Any]] = [
        {**item, "loc": tuple(item["loc"])[1:] if item["loc"][:1] == ("body",) else item["loc"]}
        for item in error.errors()
    ]
    return await _nudge_error(request, BadRequest("invalid request", details=field_errors(errors)))


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these error statuses, all with the ``ErrorBody`` shape."""
    return {status: {"model": ErrorBody, "description": _DESCRIPTIONS[status]} for status in statuses}


_DESCRIPTIONS = {
    400: "Malformed JSON or an invalid field; `details` lists every problem with its path.",
    401: "Missing, unknown or revoked write key.",
    413: "Body over the size limit, or a batch with too many events.",
    503: "Not ready: the database does not answer or its schema is not current.",
}
