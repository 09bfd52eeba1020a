"""A fake of OpenAI's chat-completions HTTP API on 127.0.0.1, so tests drive the real ``ChatOpenAI`` client.

respx cannot intercept the OpenAI SDK (it uses ``httpx2``), so the client is pointed at this server by
``base_url``. It answers ``POST /v1/chat/completions`` with the JSON content and usage it was given. It can
be told to fail (429, 500, 400, …) a number of times first: for every model or one, or only for requests
asking for one kind of ``response_format``. It records each request: path, headers (``authorization``
included) and the JSON body (``response_format`` included).

    with FakeOpenAI() as fake:
        fake.answer('{"subject": "Hi"}', prompt_tokens=1000, completion_tokens=500)
        fake.fail(500, times=1)
        ...  # ChatOpenAI(base_url=fake.base_url, api_key="sk-test")
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: dict[str, Any]


@dataclass
class _Failure:
    status: int
    remaining: int
    model: str | None
    response_format: str | None
    message: str

    def applies_to(self, body: dict[str, Any]) -> bool:
        return (
            self.remaining > 0
            and self.model in (None, body.get("model"))
            and self.response_format in (None, _response_format_type(body))
        )


class FakeOpenAI:
    """A loopback OpenAI-compatible server; use it as a context manager."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._content = "{}"
        self._usage = (0, 0)
        self._finish_reason = "stop"
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        # A short poll interval: shutdown() waits for the loop's next poll (0.5 s by default).
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True)

    @property
    def base_url(self) -> str:
        """The URL to give the client, ``http://127.0.0.1:PORT/v1``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def answer(self, content: str, *, prompt_tokens: int, completion_tokens: int, finish_reason: str = "stop") -> None:
        """Answer every successful request with ``content``, this usage and this finish reason."""
        with self._lock:
            self._content = content
            self._usage = (prompt_tokens, completion_tokens)
            self._finish_reason = finish_reason

    def fail(
        self,
        status: int,
        *,
        times: int = 1,
        model: str | None = None,
        response_format: str | None = None,
        message: str = "simulated",
    ) -> None:
        """Answer the next ``times`` matching requests with HTTP ``status`` and ``message``.

        ``model`` limits it to requests for that model; ``response_format`` to requests whose
        ``response_format.type`` is that (``"none"`` for requests without one).
        """
        with self._lock:
            self._failures.append(_Failure(status, times, model, response_format, message))

    def requests_for(self, model: str) -> list[RecordedRequest]:
        """The recorded requests that asked for ``model``."""
        return [request for request in self.requests if request.body.get("model") == model]

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _respond(self, request: RecordedRequest) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append(request)
            failure = self._next_failure(request.body)
            if failure is not None:
                return failure.status, _error_body(failure)
            return 200, self._completion(str(request.body.get("model")))

    def _next_failure(self, body: dict[str, Any]) -> _Failure | None:
        for failure in self._failures:
            if failure.applies_to(body):
                failure.remaining -= 1
                return failure
        return None

    def _completion(self, model: str) -> dict[str, Any]:
        prompt_tokens, completion_tokens = self._usage
        return {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": 1_767_225_600,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": self._content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": self._finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


def _response_format_type(body: dict[str, Any]) -> str:
    response_format = body.get("response_format")
    return str(response_format.get("type")) if isinstance(response_format, dict) else "none"


def _error_body(failure: _Failure) -> dict[str, Any]:
    kind = "rate_limit_error" if failure.status == 429 else "invalid_request_error"
    return {"error": {"message": failure.message, "type": kind, "param": None, "code": None}}


def _handler_for(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            headers = {name.lower(): value for name, value in self.headers.items()}
            request = RecordedRequest("POST", self.path, headers, body)
            if self.path != "/v1/chat/completions":
                self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                return
            self._send(*fake._respond(request))

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status >= 400:
                # The OpenAI SDK honours retry-after-ms, so a retried test waits 1 ms instead of its backoff.
                self.send_header("retry-after-ms", "1")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            return

    return Handler
