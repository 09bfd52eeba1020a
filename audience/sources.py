"""Event sources and their write keys.

A write key is shown once, when its source is created; only its SHA-256 hex is stored. Checking a key
hashes it and looks the hash up by a unique index, so the time taken says nothing about how close a wrong
key came (no byte-by-byte comparison of secrets). Keys are 256-bit random, so an unsalted fast hash is
enough: there is no dictionary to attack.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.errors import BadRequest, Conflict, NotFound, Unauthorized
from core.models import Source

NAME_MAX_LENGTH = 100  # sources.name


@dataclass(frozen=True)
class NewSource:
    source: Source
    write_key: str = field(repr=False)
    """The key itself: give it to the sender now, it cannot be shown again."""


def hash_write_key(write_key: str) -> str:
    return hashlib.sha256(write_key.encode()).hexdigest()


def create_source(session: Session, name: str) -> NewSource:
    """A new source with a fresh random write key. ``Conflict`` if the name is taken."""
    name = name.strip()
    if not name or len(name) > NAME_MAX_LENGTH:
        raise BadRequest(f"a source name is 1 to {NAME_MAX_LENGTH} characters")
    if session.scalar(select(Source.id).where(Source.name == name)) is not None:
        raise Conflict(f"a source named {name!r} already exists")
    write_key = secrets.token_urlsafe(32)
    source = Source(name=name, write_key_hash=hash_write_key(write_key))
    session.add(source)
    session.flush()
    return NewSource(source=source, write_key=write_key)


def list_sources(session: Session) -> list[Source]:
    return list(session.scalars(select(Source).order_by(Source.name)))


def revoke_source(session: Session, name: str) -> Source:
    """Revoke a source's write key from now on; revoking twice keeps the first time. ``NotFound`` if unknown."""
    source = session.scalar(select(Source).where(Source.name == name))
    if source is None:
        raise NotFound(f"no source named {name!r}")
    if source.revoked_at is None:
        source.revoked_at = utcnow()
        session.flush()
    return source


def authenticate(session: Session, write_key: str) -> Source:
    """The active source this write key belongs to; ``Unauthorized`` if it is unknown or revoked."""
    source = session.scalar(
        select(Source).where(Source.write_key_hash == hash_write_key(write_key), Source.revoked_at.is_(None))
    )
    if source is None:
        raise Unauthorized("invalid or revoked write key")
    return source
