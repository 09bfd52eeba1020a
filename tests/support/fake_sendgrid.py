"""A fake of SendGrid's v3 Mail Send API on 127.0.0.1, so tests drive the real ``sendgrid`` SDK.

The SDK talks through ``urllib`` (``responses`` cannot intercept it), so the client is pointed at this
server by ``host``. ``POST /v3/mail/send`` checks the ``Authorization: Bearer`` key (401 otherwise), checks
the request the way SendGrid documents it (400 with SendGrid-shaped ``errors`` for the rules below), and
answers 202 with an ``X-Message-Id``, or 200 with none when ``mail_settings.sandbox_mode.enable`` is true.
It can be told to answer the next calls with another status and headers (429 with ``Retry-After``, 500,
400 …) or to stall. Every request is recorded (path, headers, JSON body); ``deliveries()`` expands the
accepted ones into the e-mails SendGrid would deliver, substitutions made.

Checked: 1–1,000 personalizations, each with a ``to``; at most 1,000 recipients, no address twice in a
request; addresses with an ``@``; a ``from`` address; a subject (top level or in every personalization);
content values that are non-empty strings, ``text/plain`` first; at most 10 unique categories of at most
255 characters; string ``custom_args`` and ``substitutions``; no reserved headers; an integer
``asm.group_id``; a boolean ``sandbox_mode.enable``.

    with FakeSendGrid() as fake:
        fake.fail(429, headers={"Retry-After": "7"})
        ...  # SendGridAPIClient(api_key=fake.api_key, host=fake.host)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

MAIL_SEND = "/v3/mail/send"
RESERVED_HEADERS = frozenset(
    name.lower()
    for name in (
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "Content-Type",
        "Content-Transfer-Encoding",
        "To",
        "From",
        "Subject",
        "Reply-To",
        "CC",
        "BCC",
    )
)
UNAUTHORIZED = "The provided authorization grant is invalid, expired, or revoked"
INVALID_ADDRESS = "Does not contain a valid address."
NO_SUBJECT = (
    "The subject is required. You can get around this requirement if you use a template with a subject defined "
    "or if every personalization has a subject defined."
)
PERSONALIZATIONS = (
    "The personalizations field is required and must have at least one personalization, and at most 1000."
)
NO_TO = (
    "The to array is required for all personalization objects, and must have at least one email object with a "
    "valid email address."
)
DUPLICATE = (
    "Each email address in the personalization block should be unique between to, cc, and bcc. We found the "
    "first duplicate instance of [{}] in the personalizations.{}.to field."
)
PLAIN_FIRST = "If present, text/plain content must be first, followed by any other content."
EMPTY_CONTENT = "The content value must be a string at least one character in length."


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: dict[str, Any]
    status: int  # what the fake answered


@dataclass(frozen=True)
class Delivery:
    """One e-mail as SendGrid would deliver it: per recipient, substitutions made."""

    to: str
    to_name: str | None
    from_email: str
    from_name: str | None
    subject: str
    text: str | None
    html: str | None
    headers: dict[str, str]
    custom_args: dict[str, str]
    categories: list[str]
    message_id: str


@dataclass
class _Scripted:
    status: int
    remaining: int
    headers: dict[str, str]
    errors: list[dict[str, Any]]
    stall_seconds: float


class FakeSendGrid:
    """A loopback SendGrid Mail Send server; use it as a context manager."""

    def __init__(self, api_key: str = "SG.test-key") -> None:
        self.api_key = api_key
        self.requests: list[RecordedRequest] = []
        self._accepted: list[tuple[str, dict[str, Any]]] = []
        self._scripted: list[_Scripted] = []
        self._refused: set[str] = set()
        self._count = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        # A short poll interval: shutdown() waits for the loop's next poll (0.5 s by default).
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True)

    @property
    def host(self) -> str:
        """The URL to give the SDK, ``http://127.0.0.1:PORT``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail(
        self,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        """Answer the next ``times`` requests with ``status``, ``headers`` and SendGrid's ``errors`` shape."""
        errors = errors if errors is not None else [{"field": None, "message": f"simulated {status}", "help": None}]
        with self._lock:
            self._scripted.append(_Scripted(status, times, headers or {}, errors, 0.0))

    def refuse(self, *addresses: str) -> None:
        """Find ``addresses`` invalid from now on: a request holding one is a 400 naming its personalization."""
        with self._lock:
            self._refused.update(address.lower() for address in addresses)

    def stall(self, seconds: float, *, times: int = 1) -> None:
        """Wait ``seconds`` before answering the next ``times`` requests (to make a client time out)."""
        with self._lock:
            self._scripted.append(_Scripted(202, times, {}, [], seconds))

    def deliveries(self) -> list[Delivery]:
        """Every e-mail of every accepted (not sandboxed) request, as its recipient would get it."""
        with self._lock:
            accepted = list(self._accepted)
        return [delivery for message_id, body in accepted for delivery in _expand(message_id, body)]

    def __enter__(self) -> FakeSendGrid:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _respond(self, path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], Any]:
        status, answer_headers, answer = self._answer(path, headers, body)
        with self._lock:
            self.requests.append(RecordedRequest("POST", path, headers, body, status))
        return status, answer_headers, answer

    def _answer(self, path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], Any]:
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, {}, {"errors": [{"field": None, "message": UNAUTHORIZED, "help": None}]}
        if path != MAIL_SEND:
            return 404, {}, {"errors": [{"field": None, "message": f"no route {path}", "help": None}]}
        scripted = self._next_scripted()
        if scripted is not None and scripted.stall_seconds:
            time.sleep(scripted.stall_seconds)
        elif scripted is not None:
            return scripted.status, scripted.headers, {"errors": scripted.errors}
        if problems := validate(body, self._refused):
            return 400, {}, {"errors": problems}
        if body.get("mail_settings", {}).get("sandbox_mode", {}).get("enable") is True:
            return 200, {}, None
        with self._lock:
            self._count += 1
            message_id = f"fake-message-{self._count}"
            self._accepted.append((message_id, body))
        return 202, {"X-Message-Id": message_id}, None

    def _next_scripted(self) -> _Scripted | None:
        with self._lock:
            for scripted in self._scripted:
                if scripted.remaining > 0:
                    scripted.remaining -= 1
                    return scripted
        return None


def validate(body: Any, refused: Collection[str] = ()) -> list[dict[str, Any]]:
    """SendGrid's errors for ``body``, empty when it would be accepted (the rules in the module docstring).

    Addresses in ``refused`` (lower case) are invalid, as SendGrid finds some addresses.
    """
    if not isinstance(body, dict):
        return [_error(None, "Bad Request")]
    problems = _personalization_problems(body, refused)
    if "@" not in str(body.get("from", {}).get("email", "")):
        problems.append(_error("from.email", "The from email does not contain a valid address."))
    if not body.get("subject") and not all(p.get("subject") for p in body.get("personalizations", [])):
        problems.append(_error("subject", NO_SUBJECT))
    problems += _content_problems(body.get("content"))
    problems += _setting_problems(body)
    return problems


def _personalization_problems(body: dict[str, Any], refused: Collection[str]) -> list[dict[str, Any]]:
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not 1 <= len(personalizations) <= 1000:
        return [_error("personalizations", PERSONALIZATIONS)]
    problems, seen = [], set()
    for index, personalization in enumerate(personalizations):
        recipients = personalization.get("to") or []
        if not recipients:
            problems.append(_error(f"personalizations.{index}.to", NO_TO))
        for position, recipient in enumerate(recipients):
            address = str(recipient.get("email", ""))
            where = f"personalizations.{index}.to.{position}.email"
            if "@" not in address or " " in address or address.lower() in refused:
                problems.append(_error(where, INVALID_ADDRESS))
            elif address.lower() in seen:
                problems.append(_error(where, DUPLICATE.format(address, index)))
            seen.add(address.lower())
        problems += _strings(personalization, index, "custom_args") + _strings(personalization, index, "substitutions")
        reserved = RESERVED_HEADERS & {name.lower() for name in personalization.get("headers", {})}
        if reserved:
            problems.append(_error(f"personalizations.{index}.headers", f"Reserved headers: {sorted(reserved)}"))
    if len(seen) > 1000:
        problems.append(_error("personalizations", "The total number of recipients must be no more than 1000."))
    return problems


def _strings(personalization: dict[str, Any], index: int, name: str) -> list[dict[str, Any]]:
    values = personalization.get(name, {})
    if all(isinstance(key, str) and isinstance(value, str) for key, value in values.items()):
        return []
    return [_error(f"personalizations.{index}.{name}", f"{name} values must be strings.")]


def _content_problems(content: Any) -> list[dict[str, Any]]:
    if not isinstance(content, list) or not content:
        return [_error("content", "Unless a valid template_id is provided, the content parameter is required.")]
    problems = []
    types = [part.get("type") for part in content]
    if "text/plain" in types and types[0] != "text/plain":
        problems.append(_error("content", PLAIN_FIRST))
    for index, part in enumerate(content):
        if not isinstance(part.get("value"), str) or not part["value"]:
            problems.append(_error(f"content.{index}.value", EMPTY_CONTENT))
    return problems


def _setting_problems(body: dict[str, Any]) -> list[dict[str, Any]]:
    problems = []
    categories = body.get("categories", [])
    if len(categories) > 10 or len(set(categories)) != len(categories) or any(len(c) > 255 for c in categories):
        problems.append(_error("categories", "At most 10 unique categories of at most 255 characters."))
    if "asm" in body and not isinstance(body["asm"].get("group_id"), int):
        problems.append(_error("asm.group_id", "The asm group_id must be an integer."))
    sandbox = body.get("mail_settings", {}).get("sandbox_mode", {})
    if "enable" in sandbox and not isinstance(sandbox["enable"], bool):
        problems.append(_error("mail_settings.sandbox_mode.enable", "The enable field must be a boolean."))
    return problems


def _error(field: str | None, message: str) -> dict[str, Any]:
    return {"field": field, "message": message, "help": None}


def _expand(message_id: str, body: dict[str, Any]) -> list[Delivery]:
    content = {part["type"]: part["value"] for part in body["content"]}
    deliveries = []
    for personalization in body["personalizations"]:
        substitutions = personalization.get("substitutions", {})

        def filled(text: str | None, substitutions: dict[str, str] = substitutions) -> str | None:
            for tag, value in (substitutions or {}).items():
                text = text.replace(tag, value) if text is not None else None
            return text

        for recipient in personalization["to"]:
            deliveries.append(
                Delivery(
                    to=recipient["email"],
                    to_name=recipient.get("name"),
                    from_email=body["from"]["email"],
                    from_name=body["from"].get("name"),
                    subject=filled(personalization.get("subject") or body["subject"]) or "",
                    text=filled(content.get("text/plain")),
                    html=filled(content.get("text/html")),
                    headers={**body.get("headers", {}), **personalization.get("headers", {})},
                    custom_args={**body.get("custom_args", {}), **personalization.get("custom_args", {})},
                    categories=list(body.get("categories", [])),
                    message_id=message_id,
                )
            )
    return deliveries


def _handler_for(fake: FakeSendGrid) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                self._send(400, {}, {"errors": [_error(None, "Bad Request")]})
                return
            headers = {name.lower(): value for name, value in self.headers.items()}
            self._send(*fake._respond(self.path, headers, body))

        def _send(self, status: int, headers: dict[str, str], payload: Any) -> None:
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            try:
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # a client that timed out has gone
                return

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            return

    return Handler
