"""A fake of Twilio's Messages API on 127.0.0.1, so tests drive the real ``twilio`` SDK (9.13) offline.

It answers ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` the way Twilio does: a form-encoded
request with HTTP Basic auth (account sid and auth token), a 201 with a JSON message resource (``sid``
``SM…``, ``status`` ``accepted`` through a Messaging Service or ``queued`` from a number, ``to``,
``messaging_service_sid``, ``num_segments`` …), or an error body ``{"code", "message", "more_info",
"status"}``. Wrong credentials get Twilio's 401 (code 20003), a create without ``To``, a body or a sender
its 400 (21604, 21602, 21603). Every request is recorded: path, form fields, the Basic-auth user and
password, headers.

Failures can be scripted per call (the next ``times`` requests, in order) or per destination number (every
request to it, or its next ``times``); per-call scripts are used first. ``stall`` makes the next requests wait
before answering, for timeout tests.

    with FakeTwilio() as fake:
        fake.fail_to("+15555550101", OPTED_OUT)
        fake.fail_next(rate_limited(retry_after="7"))
        ...  # TwilioSender(..., api_base_url=fake.base_url)
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

from core.sms import sms_size

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-test-token-DO-NOT-PRINT-5e1f"
MESSAGING_SERVICE_SID = "MG" + "fedcba9876543210" * 2
_PATH_PREFIX = "/2010-04-01/Accounts/"


@dataclass(frozen=True)
class Failure:
    """An error answer: HTTP ``status``, Twilio's ``code`` (``None``: a body without one) and ``message``.

    ``retry_after`` is sent as the ``Retry-After`` header; ``raw_body`` replaces the JSON body (a proxy's
    HTML page, say).
    """

    status: int
    code: int | None
    message: str
    retry_after: str | None = None
    raw_body: str | None = None

    def body(self) -> str:
        if self.raw_body is not None:
            return self.raw_body
        payload: dict[str, Any] = {"message": self.message, "status": self.status}
        if self.code is not None:
            payload["code"] = self.code
            payload["more_info"] = f"https://www.twilio.com/docs/errors/{self.code}"
        return json.dumps(payload)


OPTED_OUT = Failure(400, 21610, "Attempt to send to unsubscribed recipient")
INVALID_NUMBER = Failure(400, 21211, "Invalid 'To' Phone Number")
NOT_MOBILE = Failure(400, 21614, "'To' number is not a valid mobile number")
UNAVAILABLE = Failure(503, 20503, "Service Unavailable")
UNAUTHENTICATED = Failure(401, 20003, "Authenticate")


def rate_limited(retry_after: str | None = "1") -> Failure:
    """Twilio's answer to too many concurrent requests: 429, error 20429, optionally a ``Retry-After``."""
    return Failure(429, 20429, "Too Many Requests", retry_after=retry_after)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it."""

    method: str
    path: str
    form: dict[str, str]
    username: str | None
    password: str | None
    headers: dict[str, str]  # names lower-cased

    @property
    def account_sid(self) -> str:
        return self.path.removeprefix(_PATH_PREFIX).split("/", 1)[0]


@dataclass
class _Script:
    failure: Failure
    remaining: int | None  # None: every time


@dataclass
class _State:
    account_sid: str
    auth_token: str
    requests: list[RecordedRequest] = field(default_factory=list)
    next_calls: list[_Script] = field(default_factory=list)
    by_destination: dict[str, _Script] = field(default_factory=dict)
    stalls: list[float] = field(default_factory=list)
    created: int = 0


class FakeTwilio:
    """A loopback Twilio Messages API; use it as a context manager."""

    def __init__(self, *, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        self._state = _State(account_sid, auth_token)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        # A short poll interval: shutdown() waits for the loop's next poll (0.5 s by default).
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True)

    @property
    def base_url(self) -> str:
        """The URL to give the SDK (``client.api.base_url``), ``http://127.0.0.1:PORT``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._state.requests)

    def fail_next(self, failure: Failure, *, times: int = 1) -> None:
        """Answer the next ``times`` requests (after those already scripted) with ``failure``."""
        with self._lock:
            self._state.next_calls.append(_Script(failure, times))

    def fail_to(self, phone: str, failure: Failure, *, times: int | None = None) -> None:
        """Answer requests to ``phone`` with ``failure``: every one, or the next ``times``."""
        with self._lock:
            self._state.by_destination[phone] = _Script(failure, times)

    def stall(self, seconds: float, *, times: int = 1) -> None:
        """Make the next ``times`` requests wait ``seconds`` before answering (they answer 201 if still there)."""
        with self._lock:
            self._state.stalls.extend([seconds] * times)

    def __enter__(self) -> FakeTwilio:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._closing.set()  # wakes stalled handlers
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _respond(self, request: RecordedRequest) -> tuple[int, str, dict[str, str]]:
        with self._lock:
            self._state.requests.append(request)
            stall = self._state.stalls.pop(0) if self._state.stalls else 0.0
        if stall:
            self._closing.wait(stall)
        with self._lock:
            return self._answer(request)

    def _answer(self, request: RecordedRequest) -> tuple[int, str, dict[str, str]]:
        state = self._state
        if not request.path.startswith(_PATH_PREFIX) or not request.path.endswith("/Messages.json"):
            return _error(Failure(404, 20404, f"The requested resource {request.path} was not found"))
        credentials = (request.username, request.password)
        if credentials != (state.account_sid, state.auth_token) or request.account_sid != state.account_sid:
            return _error(UNAUTHENTICATED)
        failure = _missing_field(request.form) or self._scripted(request.form.get("To", ""))
        if failure is not None:
            return _error(failure)
        state.created += 1
        return 201, json.dumps(_message_resource(state.account_sid, state.created, request.form)), {}

    def _scripted(self, to: str) -> Failure | None:
        state = self._state
        if state.next_calls:
            script = state.next_calls[0]
            _use(script)
            if script.remaining == 0:
                state.next_calls.pop(0)
            return script.failure
        script_for_to = state.by_destination.get(to)
        if script_for_to is None or script_for_to.remaining == 0:
            return None
        _use(script_for_to)
        return script_for_to.failure


def _missing_field(form: dict[str, str]) -> Failure | None:
    """Twilio's refusals of a create without its required parameters."""
    if not form.get("To"):
        return Failure(400, 21604, "A 'To' phone number is required.")
    if not form.get("Body") and not form.get("MediaUrl") and not form.get("ContentSid"):
        return Failure(400, 21602, "Message body is required.")
    if not form.get("From") and not form.get("MessagingServiceSid"):
        return Failure(400, 21603, "A 'From' phone number is required.")
    return None


def _use(script: _Script) -> None:
    if script.remaining is not None:
        script.remaining -= 1


def _error(failure: Failure) -> tuple[int, str, dict[str, str]]:
    headers = {"Retry-After": failure.retry_after} if failure.retry_after is not None else {}
    return failure.status, failure.body(), headers


def _message_resource(account_sid: str, number: int, form: dict[str, str]) -> dict[str, Any]:
    """A message as Twilio's 201 shows it: queued from a number, accepted through a Messaging Service."""
    sid = f"SM{number:032x}"
    service = form.get("MessagingServiceSid")
    body = form.get("Body", "")
    now = "Mon, 16 Nov 2026 09:30:00 +0000"
    return {
        "account_sid": account_sid,
        "api_version": "2010-04-01",
        "body": body,
        "date_created": now,
        "date_sent": None,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": form.get("From"),  # through a service Twilio picks the number later: null at first
        "messaging_service_sid": service,
        "num_media": "0",
        "num_segments": str(sms_size(body).segments),
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "accepted" if service else "queued",
        "subresource_uris": {"media": f"{_PATH_PREFIX}{account_sid}/Messages/{sid}/Media.json"},
        "to": form.get("To"),
        "uri": f"{_PATH_PREFIX}{account_sid}/Messages/{sid}.json",
    }


def _basic_auth(header: str | None) -> tuple[str | None, str | None]:
    if not header or not header.startswith("Basic "):
        return None, None
    username, _, password = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
    return username, password


def _handler_for(fake: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = dict(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
            headers = {name.lower(): value for name, value in self.headers.items()}
            username, password = _basic_auth(self.headers.get("Authorization"))
            request = RecordedRequest("POST", self.path, form, username, password, headers)
            self._send(*fake._respond(request))

        def _send(self, status: int, body: str, headers: dict[str, str]) -> None:
            data = body.encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client timed out and left: nobody to answer
                return

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            return

    return Handler
