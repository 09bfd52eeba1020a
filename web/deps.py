"""Request dependencies: settings and database from the app, the unit of work, write-key auth, bounded bodies."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.openapi.models import HTTPBase
from fastapi.security.base import SecurityBase
from sqlalchemy.orm import Session

from audience.sources import authenticate
from core.db import Database
from core.errors import PayloadTooLarge, Unauthorized
from core.models import Source
from core.settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def db_session(database: Annotated[Database, Depends(get_database)]) -> Iterator[Session]:
    """The request's unit of work: commits when the handler returns, rolls back when anything raises."""
    with database.session() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
# scope="function": commit before the response is sent, so a failed commit is an error response, not a lost 200.
SessionDep = Annotated[Session, Depends(db_session, scope="function")]


class WriteKeyAuth(SecurityBase):
    """Segment's authentication: HTTP Basic with the write key as the username and an empty password.

    Basic only (no Bearer), as Segment's libraries send it; the password is ignored. The key is never
    logged or echoed in an error.
    """

    def __init__(self) -> None:
        self.model = HTTPBase(
            scheme="basic", description="The source's write key as the username, empty password (like Segment)."
        )
        self.scheme_name = "writeKey"

    async def __call__(self, request: Request) -> str:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            raise Unauthorized("a write key is required: send it as the HTTP Basic username")
        try:
            write_key = base64.b64decode(credentials.strip(), validate=True).decode().partition(":")[0]
        except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
            raise Unauthorized("malformed HTTP Basic credentials") from None
        if not write_key:
            raise Unauthorized("a write key is required: send it as the HTTP Basic username")
        return write_key


def authenticated_source(session: SessionDep, write_key: Annotated[str, Depends(WriteKeyAuth())]) -> Source:
    return authenticate(session, write_key)


SourceDep = Annotated[Source, Depends(authenticated_source)]


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit`` bytes: from Content-Length
    before reading anything, or while streaming a chunked body, without reading the rest."""
    declared = request.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(_too_large(limit))
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(_too_large(limit))
    return bytes(body)


def _too_large(limit: int) -> str:
    return f"the request body is larger than the limit of {limit} bytes"


async def event_body(request: Request, settings: SettingsDep) -> bytes:
    return await read_body(request, settings.intake_max_event_bytes)


async def batch_body(request: Request, settings: SettingsDep) -> bytes:
    return await read_body(request, settings.intake_max_batch_bytes)


EventBody = Annotated[bytes, Depends(event_body)]
BatchBody = Annotated[bytes, Depends(batch_body)]
