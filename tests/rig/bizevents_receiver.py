"""A local stand-in for Dynatrace's Business Events API, for tests.

``BizEventsReceiver`` listens on ``127.0.0.1`` (ephemeral port) and accepts what
``POST {tenant}/api/v2/bizevents/ingest`` accepts: a JSON object or array
(``application/json``) and CloudEvents (``application/cloudevent+json``, one event;
``application/cloudevent-batch+json``, an array). It answers ``202`` like Dynatrace, ``400`` for
a body it cannot use (bad JSON, a CloudEvent without ``specversion``/``id``/``source``/``type``, an
unknown content type), ``401`` for a wrong token when ``token`` is set, and whatever is scripted:
any status, ``429`` with ``Retry-After``, a hanging or a slow answer.

Typical use::

    with BizEventsReceiver() as receiver:
        genai_observe.init(endpoint=..., bizevents_endpoint=receiver.ingest_url, ...)
        ...
        events = receiver.wait_for_events(1, event_type="gen_ai.auditing")

``events()`` flattens each accepted event to one dict: a CloudEvent's ``data`` plus ``event.type``
(its ``type``), ``event.provider`` (its ``source``) and ``event.id`` (its ``id``), as Dynatrace
stores them. Only the standard library is used.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, TypeVar

__all__ = ["INGEST_PATH", "BizEventsReceiver", "BizRequest", "BizResponse"]

INGEST_PATH = "/api/v2/bizevents/ingest"
CLOUDEVENT = "application/cloudevent+json"
CLOUDEVENT_BATCH = "application/cloudevent-batch+json"
JSON = "application/json"
_REQUIRED_CLOUDEVENT_FIELDS = ("specversion", "id", "source", "type")

Mode = Literal["ok", "status", "429", "hang", "slow"]
_T = TypeVar("_T")


@dataclass
class BizRequest:
    """One request as the receiver saw it, with the events it carried (if it could read them)."""

    method: str
    path: str
    headers: dict[str, str]  # keys lower-cased
    body: bytes
    content_type: str
    received_at: float
    events: list[dict[str, Any]] = field(default_factory=list)  # flattened, see the module docstring
    envelopes: list[dict[str, Any]] = field(default_factory=list)  # CloudEvents as sent
    error: str | None = None  # why the body was refused (400)
    mode: str | None = None
    status: int | None = None  # None while a hanging answer is pending or never given

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class BizResponse:
    """How to answer one request: ``ok`` (202), ``status`` (any code), ``429`` (with an optional
    ``retry_after``), ``hang`` (never, until the receiver stops or ``delay`` passes), ``slow``
    (202 after ``delay``)."""

    mode: Mode = "ok"
    status: int | None = None
    retry_after: int | float | str | None = None
    body: str = ""
    delay: float | None = None


def _flatten(envelope: dict[str, Any]) -> dict[str, Any]:
    data = envelope.get("data")
    flat: dict[str, Any] = dict(data) if isinstance(data, dict) else {}
    flat["event.type"] = envelope.get("type")
    flat["event.provider"] = envelope.get("source")
    flat["event.id"] = envelope.get("id")
    return flat


def parse_body(content_type: str, body: bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(flattened events, CloudEvents envelopes) of a body; ValueError when Dynatrace would refuse it."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in (JSON, CLOUDEVENT, CLOUDEVENT_BATCH):
        raise ValueError(f"unsupported content type {media!r}")
    try:
        parsed = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"invalid JSON: {exc}") from None
    if media == JSON:
        items = parsed if isinstance(parsed, list) else [parsed]
        if not all(isinstance(i, dict) for i in items):
            raise ValueError("JSON events must be objects")
        return [dict(i) for i in items], []
    if media == CLOUDEVENT:
        if not isinstance(parsed, dict):
            raise ValueError("a CloudEvent must be an object")
        envelopes = [parsed]
    else:
        if not isinstance(parsed, list):
            raise ValueError("a CloudEvents batch must be an array")
        envelopes = parsed
    for envelope in envelopes:
        if not isinstance(envelope, dict):
            raise ValueError("a CloudEvent must be an object")
        missing = [k for k in _REQUIRED_CLOUDEVENT_FIELDS if not envelope.get(k)]
        if missing:
            raise ValueError(f"CloudEvent without {missing}")
        if envelope["specversion"] != "1.0":
            raise ValueError("specversion must be 1.0")
    return [_flatten(e) for e in envelopes], envelopes


class _Server(ThreadingHTTPServer):
    request_queue_size = 128
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], receiver: BizEventsReceiver) -> None:
        self.receiver = receiver
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # no getfqdn(): it can stall on DNS
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out and hang up are expected here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def _handle(self) -> None:
        receiver = self.server.receiver
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
        except (ValueError, OSError):
            self.close_connection = True
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = BizRequest(
            method=self.command,
            path=self.path,
            headers=headers,
            body=body,
            content_type=headers.get("content-type", ""),
            received_at=time.monotonic(),
        )
        if self.command != "POST":
            self._answer(request, "405", 405)
            return
        if not self.path.split("?", 1)[0].endswith(INGEST_PATH):
            self._answer(request, "404", 404)
            return
        if receiver.token is not None and headers.get("authorization") != f"Api-Token {receiver.token}":
            self._answer(request, "401", 401)
            return
        try:
            request.events, request.envelopes = parse_body(request.content_type, body)
        except ValueError as exc:
            request.error = str(exc)
            self._answer(request, "400", 400, json.dumps({"error": {"code": 400, "message": str(exc)}}))
            return
        spec = receiver._next_response()
        if spec.mode in ("hang", "slow"):
            request.mode = spec.mode
            receiver._record(request)
            if receiver._stopping.wait(spec.delay) or spec.mode == "hang":
                self.close_connection = True  # never answered
                return
            self._send(request, 202, "")
            return
        if spec.mode == "ok":
            self._answer(request, "ok", 202)
            return
        status = 429 if spec.mode == "429" else int(spec.status or 500)
        extra = {} if spec.retry_after is None else {"Retry-After": str(spec.retry_after)}
        self._answer(request, spec.mode, status, spec.body, extra)

    def _answer(
        self, request: BizRequest, mode: str, status: int, body: str = "", extra: dict[str, str] | None = None
    ) -> None:
        request.mode = mode
        request.status = status
        self.server.receiver._record(request)
        self._send(request, status, body, extra)

    def _send(self, request: BizRequest, status: int, body: str, extra: dict[str, str] | None = None) -> None:
        request.status = status
        data = body.encode()
        try:
            self.send_response(status)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            self.close_connection = True


class BizEventsReceiver:
    """Business Events API on 127.0.0.1 that records, parses and answers requests."""

    def __init__(
        self, host: str = "127.0.0.1", *, token: str | None = None, tls: tuple[str, str] | None = None
    ) -> None:
        self.host = host
        self.tls = tls  # (certificate file, key file): serve https
        self.token = token  # when set, requests must carry "Authorization: Api-Token <token>"
        self._lock = threading.Lock()
        self._requests: list[BizRequest] = []
        self._default = BizResponse()
        self._queue: deque[BizResponse] = deque()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    def start(self) -> BizEventsReceiver:
        self._stopping = threading.Event()
        self._server = _Server((self.host, 0), self)
        self._port = int(self._server.server_address[1])
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"bizevents-receiver-{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop promptly, even with hanging answers pending (their connections are cut)."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        server.drop_connections()
        if thread is not None:
            thread.join(timeout=1.0)
        self._server = None
        self._thread = None

    def __enter__(self) -> BizEventsReceiver:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:40123``."""
        return f"{'https' if self.tls else 'http'}://{self.host}:{self._port}"

    @property
    def ingest_url(self) -> str:
        return self.url + INGEST_PATH

    # -- answers -----------------------------------------------------------

    def set_response(self, mode: Mode = "ok", **kw: Any) -> None:
        with self._lock:
            self._default = BizResponse(mode, **kw)

    def queue_response(self, mode: Mode = "ok", *, times: int = 1, **kw: Any) -> None:
        with self._lock:
            self._queue.extend([BizResponse(mode, **kw)] * times)

    def _next_response(self) -> BizResponse:
        with self._lock:
            return self._queue.popleft() if self._queue else self._default

    # -- what arrived ------------------------------------------------------

    def _record(self, request: BizRequest) -> None:
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[BizRequest]:
        with self._lock:
            return list(self._requests)

    def events(self, event_type: str | None = None, *, accepted_only: bool = True) -> list[dict[str, Any]]:
        """Flattened events of the requests (answered 2xx unless ``accepted_only`` is False)."""
        found = [e for r in self.requests if r.accepted or not accepted_only for e in r.events]
        return found if event_type is None else [e for e in found if e.get("event.type") == event_type]

    def envelopes(self) -> Iterator[dict[str, Any]]:
        for request in self.requests:
            yield from request.envelopes

    def everything(self) -> bytes:
        """Every header and body received, for byte scans (secrets, content)."""
        parts: list[bytes] = []
        for r in self.requests:
            parts.append(json.dumps(r.headers).encode())
            parts.append(r.body)
        return b"\n".join(parts)

    def wait_for(self, predicate: Callable[[BizEventsReceiver], _T | None], timeout: float = 10.0) -> _T:
        deadline = time.monotonic() + timeout
        while True:
            result = predicate(self)
            if result:
                return result
            if time.monotonic() >= deadline:
                summary = [(r.path, r.status, r.mode, len(r.events), r.error) for r in self.requests]
                raise AssertionError(f"timed out after {timeout}s; requests: {summary}")
            time.sleep(0.02)

    def wait_for_events(
        self, n: int, event_type: str | None = None, timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        def enough(r: BizEventsReceiver) -> list[dict[str, Any]] | None:
            found = r.events(event_type)
            return found if len(found) >= n else None

        return self.wait_for(enough, timeout)
