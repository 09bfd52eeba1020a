"""The HTML side of the app: Jinja2 templates, and ``PageRoute``, the route class every page router uses.

``PageRoute`` makes a page answer like a page: no session redirects to the login form (an HTMX request
gets ``HX-Redirect``), any ``NudgeError`` or invalid form becomes an error page with its status (the
request's unit of work has rolled back by then) — for an HTMX request, the error alone, retargeted to the
page's ``#request-error`` box so that the form the user was typing in stays as it was — and every response
carries the security headers (a route may set its own: the e-mail preview does).

HTMX is progressive enhancement: every form and link works without it. ``is_htmx`` tells a handler that
it may answer with a fragment of the page instead of a redirect or the whole page.

The Content-Security-Policy allows our own scripts and styles only: no inline script, no inline style
(htmx is configured not to add one). The e-mail preview, which needs inline styles, is its own document
(``PREVIEW_HEADERS``): loaded into an ``iframe`` with ``sandbox`` (no ``allow-scripts``: nothing in a draft
runs), under a policy that allows nothing but inline styles and images.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from core.errors import NudgeError
from web.auth import CSRF_FIELD, LoginRequired

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: https:; style-src 'self'; script-src 'self'; "
        "frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
# The e-mail preview: a draft's HTML as a recipient gets it, framed by our own review page only.
PREVIEW_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; img-src data: https:; style-src 'unsafe-inline'; frame-ancestors 'self'; "
        "form-action 'none'; base-uri 'none'; sandbox"
    ),
    "X-Frame-Options": "SAMEORIGIN",
}


def is_htmx(request: Request) -> bool:
    """Whether htmx sent the request (and expects a fragment): not a boosted link, not a history restore."""
    headers = request.headers
    return (
        headers.get("HX-Request") == "true"
        and not headers.get("HX-History-Restore-Request")
        and not headers.get("HX-Boosted")
    )


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200
) -> HTMLResponse:
    """``name`` rendered with the signed-in user (``principal``) and the CSRF field name available."""
    values = {"principal": getattr(request.state, "principal", None), "csrf_field": CSRF_FIELD, **(context or {})}
    return TEMPLATES.TemplateResponse(request, name, values, status_code=status_code)


def see_other(url: str) -> RedirectResponse:
    """The answer to a successful form post (POST/redirect/GET)."""
    return RedirectResponse(url, status_code=303)


class PageRoute(APIRoute):
    """A route that answers errors with pages and adds the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                response = await handle(request)
            except LoginRequired:
                response = _to_login(request)
            except NudgeError as error:
                response = _error_page(request, error.status_code, error.message, error.details)
            except RequestValidationError as error:
                details = [f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in error.errors()]
                response = _error_page(request, 400, "the form is not valid", details)
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return page


def _to_login(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = "/login" if request.method != "GET" else f"/login?next={quote(target, safe='')}"
    if request.headers.get("HX-Request"):
        return Response(status_code=401, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def _error_page(request: Request, status: int, message: str, details: Any) -> HTMLResponse:
    lines = [_detail_line(detail) for detail in details] if isinstance(details, list) else []
    if is_htmx(request):
        response = render(request, "_request_error.html", {"message": message, "details": lines}, status_code=status)
        response.headers.update({"HX-Retarget": "#request-error", "HX-Reswap": "innerHTML"})
        return response
    context = {"status": status, "message": message, "details": lines, "back": _same_site_referer(request)}
    return render(request, "error.html", context, status_code=status)


def _detail_line(detail: Any) -> str:
    """A detail as a line: ``path: message`` for a field error (``core.errors.field_errors``)."""
    if isinstance(detail, dict) and "message" in detail:
        return f"{detail['path']}: {detail['message']}" if detail.get("path") else str(detail["message"])
    return str(detail)


def _same_site_referer(request: Request) -> str | None:
    referer = request.headers.get("Referer", "")
    origin = f"{request.url.scheme}://{request.url.netloc}/"
    return referer if referer.startswith(origin) else None
