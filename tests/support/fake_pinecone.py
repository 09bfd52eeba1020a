"""A fake of Pinecone's HTTP API on 127.0.0.1, so the real SDK (pinecone 7.3.0) and ``PineconeVectorStore`` run
offline against something that stores, filters and ranks like the service.

Data plane: ``POST /vectors/upsert``, ``POST /query`` (brute-force cosine; ``$eq``/``$in``/``$ne``/``$nin``
filters, a bare value meaning ``$eq``, a list-valued field matching when any element does), ``GET
/vectors/fetch``, ``POST /vectors/delete`` (by ids or everything), ``POST /describe_index_stats``, all per
namespace. Control plane: ``GET /indexes/{name}`` answers the index's host (this server), for the SDK's
look-up by name. Every request needs the ``Api-Key`` header the fake was made with (401 otherwise), and
every request is recorded for assertions.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    body: dict[str, Any]
    api_key: str | None


@dataclass
class FakePineconeState:
    api_key: str
    index_name: str
    host: str = ""
    dimension: int | None = None
    namespaces: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def vectors(self, namespace: str) -> dict[str, dict[str, Any]]:
        return self.namespaces.setdefault(namespace, {})


def matches(metadata: dict[str, Any], where: dict[str, Any] | None) -> bool:
    """Pinecone's metadata filter semantics for the operators Nudge uses (top-level fields are ANDed)."""
    if not where:
        return True
    for name, condition in where.items():
        if name == "$and":
            if not all(matches(metadata, part) for part in condition):
                return False
            continue
        operators = condition if isinstance(condition, dict) else {"$eq": condition}
        values = metadata.get(name)
        present = values if isinstance(values, list) else ([] if values is None else [values])
        for operator, expected in operators.items():
            if not _holds(operator, present, expected):
                return False
    return True


def _holds(operator: str, present: list[Any], expected: Any) -> bool:
    if operator == "$eq":
        return expected in present
    if operator == "$ne":
        return expected not in present
    if operator == "$in":
        return any(value in expected for value in present)
    if operator == "$nin":
        return not any(value in expected for value in present)
    raise ValueError(f"operator {operator} is not supported by the fake")


def cosine(left: list[float], right: list[float]) -> float:
    dot = sum(a * b for a, b in zip(left, right, strict=True))
    norms = math.sqrt(sum(a * a for a in left)) * math.sqrt(sum(b * b for b in right))
    return dot / norms if norms else 0.0


class _Handler(BaseHTTPRequestHandler):
    state: FakePineconeState  # set on the subclass each server makes

    def log_message(self, format: str, *args: Any) -> None:  # the test output stays quiet
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        if method == "GET":
            body = dict(parse_qs(url.query))
        api_key = self.headers.get("Api-Key")
        with self.state.lock:
            self.state.requests.append(Recorded(method, url.path, body, api_key))
        if api_key != self.state.api_key:
            self._answer(401, {"error": {"code": "UNAUTHENTICATED", "message": "Invalid API Key"}, "status": 401})
            return
        route = _ROUTES.get((method, url.path)) or (_describe_index if url.path.startswith("/indexes/") else None)
        if route is None:
            self._answer(404, {"error": {"code": "NOT_FOUND", "message": f"no route {url.path}"}, "status": 404})
            return
        with self.state.lock:
            status, answer = route(self.state, url.path, body)
        self._answer(status, answer)

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


Answer = tuple[int, dict[str, Any]]


def _upsert(state: FakePineconeState, _path: str, body: dict[str, Any]) -> Answer:
    vectors = state.vectors(body.get("namespace", ""))
    for vector in body["vectors"]:
        if state.dimension is not None and len(vector["values"]) != state.dimension:
            message = f"Vector dimension {len(vector['values'])} does not match the index's {state.dimension}"
            return 400, {"code": 3, "message": message, "details": []}
        vectors[vector["id"]] = {"id": vector["id"], "values": vector["values"], "metadata": vector.get("metadata", {})}
    return 200, {"upsertedCount": len(body["vectors"])}


def _query(state: FakePineconeState, _path: str, body: dict[str, Any]) -> Answer:
    namespace = body.get("namespace", "")
    vectors = state.vectors(namespace)
    query = body["vector"] if "vector" in body else vectors[body["id"]]["values"]
    candidates = [vector for vector in vectors.values() if matches(vector["metadata"], body.get("filter"))]
    scored = sorted(((cosine(query, vector["values"]), vector) for vector in candidates), key=lambda pair: -pair[0])
    matches_ = [_scored(score, vector, body) for score, vector in scored[: body["topK"]]]
    return 200, {"results": [], "matches": matches_, "namespace": namespace, "usage": {"readUnits": 1}}


def _scored(score: float, vector: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    match: dict[str, Any] = {"id": vector["id"], "score": score, "values": []}
    if body.get("includeValues"):
        match["values"] = vector["values"]
    if body.get("includeMetadata"):
        match["metadata"] = dict(vector["metadata"])
    return match


def _fetch(state: FakePineconeState, _path: str, body: dict[str, Any]) -> Answer:
    namespace = body.get("namespace", [""])[0]
    vectors = state.vectors(namespace)
    found = {id_: vectors[id_] for id_ in body.get("ids", []) if id_ in vectors}
    return 200, {"vectors": found, "namespace": namespace, "usage": {"readUnits": 1}}


def _delete(state: FakePineconeState, _path: str, body: dict[str, Any]) -> Answer:
    vectors = state.vectors(body.get("namespace", ""))
    if body.get("deleteAll"):
        vectors.clear()
    for id_ in body.get("ids", []):
        vectors.pop(id_, None)
    return 200, {}


def _stats(state: FakePineconeState, _path: str, _body: dict[str, Any]) -> Answer:
    namespaces = {name: {"vectorCount": len(vectors)} for name, vectors in state.namespaces.items() if vectors}
    total = sum(summary["vectorCount"] for summary in namespaces.values())
    dimension = state.dimension or 0
    return 200, {
        "namespaces": namespaces,
        "dimension": dimension,
        "indexFullness": 0.0,
        "totalVectorCount": total,
        "metric": "cosine",
        "vectorType": "dense",
    }


def _describe_index(state: FakePineconeState, path: str, _body: dict[str, Any]) -> Answer:
    name = path.removeprefix("/indexes/")
    if name != state.index_name:
        return 404, {"error": {"code": "NOT_FOUND", "message": f"Resource {name} not found"}, "status": 404}
    return 200, {
        "name": name,
        "metric": "cosine",
        "host": state.host,
        "dimension": state.dimension or 384,
        "vector_type": "dense",
        "deletion_protection": "disabled",
        "spec": {"serverless": {"cloud": "aws", "region": "us-east-1"}},
        "status": {"ready": True, "state": "Ready"},
        "tags": None,
    }


_ROUTES = {
    ("POST", "/vectors/upsert"): _upsert,
    ("POST", "/query"): _query,
    ("GET", "/vectors/fetch"): _fetch,
    ("POST", "/vectors/delete"): _delete,
    ("POST", "/describe_index_stats"): _stats,
}


@contextmanager
def fake_pinecone(
    api_key: str = "pc-test-key", index_name: str = "nudge-creative", dimension: int | None = None
) -> Iterator[FakePineconeState]:
    """A running fake on a free port; ``state.host`` is its URL (``http://127.0.0.1:PORT``)."""
    state = FakePineconeState(api_key=api_key, index_name=index_name, dimension=dimension)
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    state.host = f"http://127.0.0.1:{server.server_address[1]}"
    # A short poll interval: shutdown() waits for the next poll, 0.5 s by default.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
