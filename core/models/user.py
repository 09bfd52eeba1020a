"""People who use the web UI and the REST API: accounts with a role, their login sessions and API tokens.

- ``User``: a username, an argon2 password hash (never the password), a ``Role``, and the failed-login
  count and lock that throttle password guessing.
- ``UserSession``: one browser login; the cookie holds a random token, the table its SHA-256 only, so a
  leaked database does not log anyone in. Logout deletes the row; expiry is ``expires_at``.
- ``ApiToken``: a bearer token for the REST API, stored as its SHA-256 only, shown once at creation.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.models.base import Base, BigId, TimestampMixin, enum_column


class Role(StrEnum):
    """What a user may do; each role may do everything the roles before it may."""

    VIEWER = "viewer"  # read every page
    MARKETER = "marketer"  # edit drafts, submit them for review
    APPROVER = "approver"  # approve, reject, request changes
    ADMIN = "admin"  # users, budgets, settings

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


class User(TimestampMixin, Base):
    """An account; ``active`` False keeps its history but refuses its logins and tokens."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200), comment="argon2id, with its parameters and salt.")
    role: Mapped[Role] = mapped_column(enum_column(Role))
    active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(default=0, comment="Consecutive failures since the last success.")
    locked_until: Mapped[datetime | None] = mapped_column(comment="Logins refused until then.")
    last_login_at: Mapped[datetime | None]


class UserSession(Base):
    """A browser login: the SHA-256 of the cookie's token, its CSRF token and when it ends."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, comment="SHA-256 hex of the cookie token.")
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64), comment="Sent back with every form and HTMX request.")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]

    __table_args__ = (Index(None, "user_id"), Index(None, "expires_at"))


class ApiToken(Base):
    """A REST API bearer token acting as its user; only its SHA-256 and a short prefix are kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100), comment="What the token is for.")
    prefix: Mapped[str] = mapped_column(String(16), comment="The token's first characters, to recognise it.")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, comment="SHA-256 hex of the token.")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    __table_args__ = (Index(None, "user_id"),)
