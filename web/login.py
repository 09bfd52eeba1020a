"""Signing in and out.

The login form is protected from cross-site posting (login CSRF) by a double-submit token: ``GET /login``
sets a random ``nudge_login_csrf`` cookie and puts the same value in the form; ``POST /login`` refuses a
form whose value does not match the cookie (another site can make a browser post, but cannot read or set
our cookie). A failed login is committed (the failure count is the lockout) and answers 401 with the form.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from core.clock import utcnow
from core.errors import Forbidden, Unauthorized
from core.settings import Settings
from web import accounts
from web.auth import SESSION_COOKIE, PageUser, login_policy
from web.deps import DatabaseDep, SessionDep, SettingsDep
from web.templating import PageRoute, render, see_other

router = APIRouter(route_class=PageRoute, include_in_schema=False)
LOGIN_CSRF_COOKIE = "nudge_login_csrf"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, settings: SettingsDep, next: Annotated[str, Query(max_length=500)] = "/") -> Response:
    return _form(request, settings, _local(next))


def _form(request: Request, settings: Settings, target: str, *, error: str = "", status_code: int = 200) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(
        request, "login.html", {"login_csrf": token, "next": target, "error": error}, status_code=status_code
    )
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(settings))
    return response


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    settings: SettingsDep,
    database: DatabaseDep,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=1000)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), csrf_token.encode()):
        raise Forbidden("the login form is out of date: reload the page and sign in again")
    now, policy = utcnow(), login_policy(settings)
    with database.session() as session:  # committed whatever happens: a failure counts toward the lockout
        try:
            user = accounts.authenticate(session, username, password, policy, now=now)
        except Unauthorized as error:
            failure = error.message
        else:
            failure, opened = "", accounts.open_session(session, user, policy, now=now)
    if failure:
        return _form(request, settings, _local(next), error=failure, status_code=401)
    response = see_other(_local(next))
    response.set_cookie(
        SESSION_COOKIE,
        opened.token,
        max_age=settings.session_ttl_minutes * 60,
        httponly=True,
        samesite="lax",
        secure=_secure(settings),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep, _: PageUser) -> RedirectResponse:
    accounts.close_session(session, request.cookies.get(SESSION_COOKIE, ""))
    response = see_other("/login")
    response.delete_cookie(SESSION_COOKIE)
    return response


def _local(target: str) -> str:
    """Only a path on this site: never another origin (``//evil``, ``https://…``), so login cannot redirect away."""
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/"


def _secure(settings: Settings) -> bool:
    return settings.public_base_url.startswith("https://")
