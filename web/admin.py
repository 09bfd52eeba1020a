"""Admin pages: users and roles, API tokens, LLM budgets, and the settings in force (secrets masked).

Everything here needs the ``admin`` role, except that anyone signed in may create and revoke API tokens
for themselves (a token acts with its owner's role, never more). Changes to users and budgets are written
to the audit log (no campaign) so the log says who changed what.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import SecretStr
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.errors import Forbidden, ValidationFailed
from core.models import AuditEntry, BudgetScope, Role
from core.settings import Settings
from guardrails.budgets import budget_statuses, set_budget
from web import accounts
from web.auth import Admin, PageUser, Principal
from web.deps import SessionDep, SettingsDep
from web.templating import PageRoute, render, see_other

router = APIRouter(prefix="/admin", route_class=PageRoute, include_in_schema=False)


def _audit(session: Session, principal: Principal, action: str, detail: dict[str, Any]) -> None:
    session.add(AuditEntry(actor=principal.username, action=action, detail=detail, created_at=utcnow()))


@router.get("/users", response_class=HTMLResponse)
def users(request: Request, session: SessionDep, _: Admin) -> HTMLResponse:
    return render(request, "admin/users.html", {"users": accounts.list_users(session), "roles": list(Role)})


@router.post("/users")
def create_user(
    session: SessionDep,
    principal: Admin,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=1000)],
    role: Annotated[Role, Form()],
) -> RedirectResponse:
    accounts.create_user(session, username, password, role, now=utcnow())
    _audit(session, principal, "user_create", {"username": username, "role": role.value})
    return see_other("/admin/users")


@router.post("/users/{username}")
def change_user(
    username: str,
    session: SessionDep,
    principal: Admin,
    role: Annotated[Role, Form()],
    active: Annotated[bool, Form()] = False,
    password: Annotated[str, Form(max_length=1000)] = "",
) -> RedirectResponse:
    user = accounts.get_user(session, username)
    if user.id == principal.user_id and (role is not Role.ADMIN or not active):
        raise ValidationFailed("you cannot remove your own admin role or deactivate yourself")
    accounts.set_role(user, role)
    accounts.set_active(session, user, active)
    if password:
        accounts.set_password(session, user, password)
    detail = {"username": username, "role": role.value, "active": active, "password_reset": bool(password)}
    _audit(session, principal, "user_change", detail)
    return see_other("/admin/users")


@router.get("/tokens", response_class=HTMLResponse)
def tokens(request: Request, session: SessionDep, principal: PageUser) -> HTMLResponse:
    user = None if principal.can(Role.ADMIN) else accounts.get_user(session, principal.username)
    return render(request, "admin/tokens.html", {"tokens": accounts.list_api_tokens(session, user), "secret": None})


@router.post("/tokens", response_class=HTMLResponse)
def create_token(
    request: Request, session: SessionDep, principal: PageUser, name: Annotated[str, Form(max_length=100)]
) -> HTMLResponse:
    user = accounts.get_user(session, principal.username)
    new = accounts.create_api_token(session, user, name, now=utcnow())
    _audit(session, principal, "token_create", {"username": user.username, "name": new.token.name})
    listing = accounts.list_api_tokens(session, None if principal.can(Role.ADMIN) else user)
    return render(request, "admin/tokens.html", {"tokens": listing, "secret": new.secret})


@router.post("/tokens/{token_id}/revoke")
def revoke_token(token_id: int, session: SessionDep, principal: PageUser) -> RedirectResponse:
    owned = {token.id for token, _ in accounts.list_api_tokens(session, accounts.get_user(session, principal.username))}
    if token_id not in owned and not principal.can(Role.ADMIN):
        raise Forbidden("you can revoke only your own tokens")
    accounts.revoke_api_token(session, token_id, now=utcnow())
    _audit(session, principal, "token_revoke", {"token_id": token_id})
    return see_other("/admin/tokens")


@router.get("/budgets", response_class=HTMLResponse)
def budgets(request: Request, session: SessionDep, settings: SettingsDep, _: Admin) -> HTMLResponse:
    statuses = budget_statuses(session, settings, now=utcnow())
    return render(request, "admin/budgets.html", {"budgets": statuses, "scopes": list(BudgetScope)})


@router.post("/budgets")
def change_budget(
    session: SessionDep,
    principal: Admin,
    scope: Annotated[BudgetScope, Form()],
    campaign_key: Annotated[str, Form(max_length=128)] = "",
    max_usd: Annotated[str, Form(max_length=30)] = "",
    max_tokens: Annotated[str, Form(max_length=30)] = "",
) -> RedirectResponse:
    usd, tokens_ = _decimal(max_usd, "max_usd"), _integer(max_tokens, "max_tokens")
    set_budget(session, scope, campaign_key or None, max_tokens=tokens_, max_usd=usd)
    detail = {"scope": scope.value, "campaign_key": campaign_key or None, "max_usd": max_usd, "max_tokens": max_tokens}
    _audit(session, principal, "budget_set", detail)
    return see_other("/admin/budgets")


def _decimal(text: str, name: str) -> Decimal | None:
    try:
        return Decimal(text.strip()) if text.strip() else None
    except InvalidOperation:
        raise ValidationFailed(f"{name}: not a number: {text!r}") from None


def _integer(text: str, name: str) -> int | None:
    if not text.strip():
        return None
    if not text.strip().isdigit():
        raise ValidationFailed(f"{name}: not a whole number: {text!r}")
    return int(text)


@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request, settings: SettingsDep, _: Admin) -> HTMLResponse:
    return render(request, "admin/settings.html", {"settings": shown_settings(settings)})


def shown_settings(settings: Settings) -> list[tuple[str, str]]:
    """Every setting as ``NUDGE_NAME`` and its value; secrets show only whether they are set."""
    shown = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            text = "(set)" if value.get_secret_value() else "(empty)"
        else:
            text = "" if value is None else str(value)
        shown.append((f"NUDGE_{name.upper()}", text))
    return shown
