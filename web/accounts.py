"""Accounts: users and roles, password login with lockout, browser sessions and REST API tokens.

Passwords are hashed with argon2id (``argon2-cffi``'s defaults, re-hashed when those change). A wrong
password and an unknown username fail the same way and take the same time (an unknown name is checked
against a dummy hash). ``login_max_failures`` wrong passwords in a row lock the account for
``login_lockout_minutes``: while locked, even the right password is refused, so guessing is bounded.

Session and API tokens are 256-bit random strings; only their SHA-256 is stored (a fast hash is enough
for random tokens, and the lookup by a unique index leaks nothing about near misses).

Every function takes a session and never commits.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from core.models import ApiToken, Role, User, UserSession

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,99}$")
MIN_PASSWORD = 10
TOKEN_PREFIX = "nudge_"
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password anyone has")
LOGIN_FAILED = "wrong username or password"


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    max_failures: int
    lockout: timedelta
    session_ttl: timedelta


@dataclass(frozen=True, slots=True)
class OpenedSession:
    """A new login: ``token`` goes in the cookie (shown nowhere else), ``csrf_token`` in every form."""

    token: str
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class NewApiToken:
    token: ApiToken
    secret: str  # shown once, at creation


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(session: Session, username: str, password: str, role: Role, *, now: datetime) -> User:
    """A new active user.

    Raises
    ------
    core.errors.ValidationFailed
        A username that is not 2–100 lowercase letters, digits and ``._@-``, or a password under 10 characters.
    core.errors.Conflict
        The username is taken.
    """
    _check_username(username)
    _check_password(password)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} already exists")
    user = User(username=username, password_hash=_hasher.hash(password), role=role, created_at=now, updated_at=now)
    session.add(user)
    session.flush()
    return user


def _check_username(username: str) -> None:
    if not USERNAME.match(username):
        raise ValidationFailed(f"username {username!r}: 2–100 lowercase letters, digits and . _ @ -")


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(f"the password must have at least {MIN_PASSWORD} characters")


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user {username!r}")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def set_password(session: Session, user: User, password: str) -> None:
    """Change the password, unlock the account and end its sessions (they were opened with the old one)."""
    _check_password(password)
    user.password_hash = _hasher.hash(password)
    user.failed_logins, user.locked_until = 0, None
    end_sessions(session, user)


def set_role(user: User, role: Role) -> None:
    user.role = role


def set_active(session: Session, user: User, active: bool) -> None:
    """Deactivate (refuse its logins, sessions and tokens) or reactivate an account."""
    user.active = active
    if not active:
        end_sessions(session, user)


def authenticate(session: Session, username: str, password: str, policy: LoginPolicy, *, now: datetime) -> User:
    """The active user with this password; ``Unauthorized`` otherwise, saying only that login failed
    or, once locked, until when.

    A failure is counted on the user row: the caller commits even when this raises, or the count is lost.
    """
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None or not user.active:
        _verify(_DUMMY_HASH, password)  # the same work as a real check: the time does not tell names apart
        raise Unauthorized(LOGIN_FAILED)
    if user.locked_until is not None and user.locked_until > now:
        raise Unauthorized(f"too many failed logins: the account is locked until {user.locked_until:%H:%M} UTC")
    if not _verify(user.password_hash, password):
        _count_failure(user, policy, now)
        raise Unauthorized(LOGIN_FAILED)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
    return user


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _count_failure(user: User, policy: LoginPolicy, now: datetime) -> None:
    user.failed_logins += 1
    if user.failed_logins >= policy.max_failures:
        user.locked_until, user.failed_logins = now + policy.lockout, 0


def open_session(session: Session, user: User, policy: LoginPolicy, *, now: datetime) -> OpenedSession:
    """A new browser session for ``user``; expired sessions of anyone are cleared on the way."""
    session.execute(delete(UserSession).where(UserSession.expires_at <= now))
    token, csrf_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires_at = now + policy.session_ttl
    session.add(
        UserSession(token_hash=hash_token(token), user_id=user.id, csrf_token=csrf_token, expires_at=expires_at)
    )
    return OpenedSession(token, csrf_token, expires_at)


def session_user(session: Session, token: str, *, now: datetime) -> tuple[User, UserSession] | None:
    """The active user and session behind a cookie token, if it has not expired."""
    row = session.execute(
        select(User, UserSession)
        .join(UserSession, UserSession.user_id == User.id)
        .where(UserSession.token_hash == hash_token(token), UserSession.expires_at > now, User.active.is_(True))
    ).first()
    return None if row is None else (row[0], row[1])


def close_session(session: Session, token: str) -> None:
    session.execute(delete(UserSession).where(UserSession.token_hash == hash_token(token)))


def end_sessions(session: Session, user: User) -> None:
    session.execute(delete(UserSession).where(UserSession.user_id == user.id))


def create_api_token(session: Session, user: User, name: str, *, now: datetime) -> NewApiToken:
    """A new API token acting as ``user``; its secret is returned here only."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ValidationFailed("a token needs a name of 1–100 characters saying what it is for")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=name,
        prefix=secret[: len(TOKEN_PREFIX) + 4],
        token_hash=hash_token(secret),
        created_at=now,
    )
    session.add(token)
    session.flush()
    return NewApiToken(token, secret)


def list_api_tokens(session: Session, user: User | None = None) -> list[tuple[ApiToken, str]]:
    """Tokens with their user's name, newest first; ``user``'s only when given."""
    query = select(ApiToken, User.username).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id.desc())
    if user is not None:
        query = query.where(ApiToken.user_id == user.id)
    return [(token, username) for token, username in session.execute(query)]


def revoke_api_token(session: Session, token_id: int, *, now: datetime) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"no API token {token_id}")
    token.revoked_at = token.revoked_at or now
    return token


def token_user(session: Session, secret: str, *, now: datetime) -> User | None:
    """The active user behind a live API token (and note its use)."""
    row = session.execute(
        select(User, ApiToken)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == hash_token(secret), ApiToken.revoked_at.is_(None), User.active.is_(True))
    ).first()
    if row is None:
        return None
    row[1].last_used_at = now
    return row[0]
