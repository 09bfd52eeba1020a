"""Who is asking, and may they: browser sessions with CSRF checks for the pages, bearer tokens for the REST API.

Pages (``PageUser``): the ``nudge_session`` cookie (HttpOnly, SameSite=Lax, Secure behind https) names a
server-side session. Without one, a page redirects to ``/login`` (``LoginRequired``). Every request that
is not GET/HEAD/OPTIONS must also carry the session's CSRF token — the ``csrf_token`` form field or the
``X-CSRF-Token`` header (HTMX, scripts) — or it is refused with 403 before the handler runs. Because the
check lives in the same dependency that authenticates, no authenticated form can forget it.

API (``ApiUser``): ``Authorization: Bearer nudge_…`` (``nudge users token create``); no cookie is read,
so there is nothing for another site to forge and no CSRF token is needed. Missing or bad: 401.

Roles are ordered (``core.models.Role``); ``page_role(Role.APPROVER)`` and ``api_role(...)`` refuse the
roles below with 403.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase

from core.clock import utcnow
from core.errors import Forbidden, NudgeError, Unauthorized
from core.models import Role
from core.settings import Settings
from web import accounts
from web.deps import SessionDep

SESSION_COOKIE = "nudge_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginRequired(NudgeError):
    """No valid session: pages answer with a redirect to the login page."""

    status_code = 401
    code = "login_required"


@dataclass(frozen=True, slots=True)
class Principal:
    """The person behind a request."""

    user_id: int
    username: str
    role: Role
    csrf_token: str = ""  # pages only

    def can(self, role: Role | str) -> bool:
        return self.role.at_least(Role(role))


def login_policy(settings: Settings) -> accounts.LoginPolicy:
    return accounts.LoginPolicy(
        max_failures=settings.login_max_failures,
        lockout=timedelta(minutes=settings.login_lockout_minutes),
        session_ttl=timedelta(minutes=settings.session_ttl_minutes),
    )


def signed_in(request: Request, session: SessionDep) -> Principal:
    """The user behind the session cookie; ``LoginRequired`` without a live session.

    Synchronous on purpose: it queries the database, so FastAPI runs it in the thread pool instead of
    blocking the event loop that every other request is waiting on.
    """
    token = request.cookies.get(SESSION_COOKIE)
    found = accounts.session_user(session, token, now=utcnow()) if token else None
    if found is None:
        raise LoginRequired("please sign in")
    user, user_session = found
    return Principal(user.id, user.username, user.role, user_session.csrf_token)


async def page_user(request: Request, principal: Annotated[Principal, Depends(signed_in)]) -> Principal:
    """The signed-in user; ``LoginRequired`` without a live session, 403 for an unsafe request without CSRF token."""
    if request.method not in SAFE_METHODS:
        await check_csrf(request, principal.csrf_token)  # may read the form: no database work here
    request.state.principal = principal
    return principal


async def check_csrf(request: Request, expected: str) -> None:
    """403 unless the request carries ``expected`` in the header or the form (compared in constant time)."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and _is_form(request):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Forbidden("the form's security token is missing or out of date: reload the page and try again")


def _is_form(request: Request) -> bool:
    content_type = request.headers.get("Content-Type", "")
    return content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))


def page_role(role: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the signed-in user, if their role is at least ``role``."""

    async def dependency(principal: Annotated[Principal, Depends(page_user)]) -> Principal:
        return _at_least(principal, role)

    return dependency


class BearerToken(SecurityBase):
    """``Authorization: Bearer <API token>``, described in the OpenAPI schema."""

    def __init__(self) -> None:
        self.model = HTTPBearerModel(description="An API token: `nudge users token create USERNAME NAME`.")
        self.scheme_name = "apiToken"

    async def __call__(self, request: Request) -> str:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise Unauthorized("an API token is required: send it as 'Authorization: Bearer <token>'")
        return credentials.strip()


def api_user(session: SessionDep, token: Annotated[str, Depends(BearerToken())]) -> Principal:
    user = accounts.token_user(session, token, now=utcnow())
    if user is None:
        raise Unauthorized("unknown or revoked API token")
    return Principal(user.id, user.username, user.role)


def api_role(role: Role) -> Callable[..., Principal]:
    """A dependency: the token's user, if their role is at least ``role``."""

    def dependency(principal: Annotated[Principal, Depends(api_user)]) -> Principal:
        return _at_least(principal, role)

    return dependency


def _at_least(principal: Principal, role: Role) -> Principal:
    if not principal.can(role):
        raise Forbidden(f"this needs the {role} role; {principal.username} is a {principal.role}")
    return principal


PageUser = Annotated[Principal, Depends(page_user)]
Marketer = Annotated[Principal, Depends(page_role(Role.MARKETER))]
Approver = Annotated[Principal, Depends(page_role(Role.APPROVER))]
Admin = Annotated[Principal, Depends(page_role(Role.ADMIN))]
ApiUser = Annotated[Principal, Depends(api_user)]
ApiMarketer = Annotated[Principal, Depends(api_role(Role.MARKETER))]
ApiApprover = Annotated[Principal, Depends(api_role(Role.APPROVER))]
ApiAdmin = Annotated[Principal, Depends(api_role(Role.ADMIN))]
