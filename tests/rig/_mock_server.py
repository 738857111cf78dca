"""Scaffolding shared by the provider mock servers in this folder (OpenAI, Anthropic, Ollama).

Each mock is a threading HTTP server on 127.0.0.1 with a queue of scripted replies, a list of
recorded requests and a list of rig errors. What is the same in all of them lives here:

* :class:`MockServerBase`: start/stop/reset, the reply queue (``script``, ``pending``, FIFO
  matching by ``Reply.matches`` and ``Reply.times``), recorded requests, rig errors, connection
  tracking, and the request/answer skeleton of ``_serve``.
* :class:`MockHandler` and :class:`MockHTTPServer`: the ``http.server`` classes.
* :class:`MockWire`: writing one answer (plain, or chunked frame by frame) and dropping it.
* :func:`read_request_body`: a request body, with or without chunked transfer encoding.

The wire formats (paths, bodies, headers, error shapes) stay in the provider modules.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Generic, Protocol, TypeVar

__all__ = [
    "ConnectionBroken",
    "MockHTTPServer",
    "MockHandler",
    "MockServerBase",
    "MockWire",
    "parse_json_body",
    "read_request_body",
]


class _ScriptedReply(Protocol):
    times: int | None

    def matches(self, endpoint: str | None) -> bool: ...


class _Recorded(Protocol):
    endpoint: str | None
    reply: Any


ReplyT = TypeVar("ReplyT", bound=_ScriptedReply)
RecordT = TypeVar("RecordT", bound=_Recorded)
ServerT = TypeVar("ServerT", bound="MockServerBase[Any, Any]")

_NO_HEADERS: Mapping[str, str] = {}


class ConnectionBroken(Exception):
    """The socket went away while answering (client left, or a scripted break)."""


def read_request_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body: ``Content-Length`` bytes, or the de-chunked ``Transfer-Encoding: chunked`` body."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        parts: list[bytes] = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def parse_json_body(raw: bytes) -> Any:
    """The parsed JSON of a request body; ``None`` when it is empty or not JSON."""
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


class MockHandler(BaseHTTPRequestHandler):
    """Hands every request to the owning mock's ``_serve``; subclasses set ``server_version`` and
    alias the HTTP methods they accept to :meth:`do_POST`."""

    protocol_version = "HTTP/1.1"  # keep-alive; every answer has Content-Length or is chunked
    sys_version = ""
    disable_nagle_algorithm = True  # many tiny stream writes
    timeout = 60  # idle keep-alive connections are dropped eventually
    server: MockHTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.owner._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        return  # keep test output quiet

    def do_POST(self) -> None:
        self.server.owner._serve(self)


class MockHTTPServer(ThreadingHTTPServer):
    request_queue_size = 128  # the stdlib default (5) refuses bursts of concurrent clients
    daemon_threads = True
    allow_reuse_address = True
    owner: MockServerBase[Any, Any]

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # the client reset or closed a keep-alive connection: normal
            return
        if exc is not None:
            self.owner._record_error(exc)


class MockWire:
    """Writes one answer to the handler's socket.

    ``sent_field`` names the counter of stream frames on the recorded request (``events_sent`` or
    ``lines_sent``); :meth:`send_chunked` keeps it up to date while it writes.
    """

    sent_field: ClassVar[str] = "events_sent"

    def __init__(self, handler: BaseHTTPRequestHandler, record: Any, stop: threading.Event) -> None:
        self.handler = handler
        self.record = record
        self.stop = stop

    def _write(self, data: bytes) -> None:
        try:
            self.handler.wfile.write(data)
            self.handler.wfile.flush()
        except OSError as exc:  # BrokenPipe, ConnectionReset, ...
            raise ConnectionBroken() from exc

    def _headers(self, status: int, headers: Mapping[str, str]) -> None:
        self.handler.send_response(status)
        for name, value in headers.items():
            self.handler.send_header(name, value)
        self.handler.end_headers()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.stop.wait(seconds)

    def abort(self) -> None:
        """Close the connection without finishing the answer."""
        self.record.aborted = True
        self.handler.close_connection = True
        with contextlib.suppress(OSError):
            self.handler.connection.shutdown(socket.SHUT_RDWR)

    def send_bytes(
        self,
        status: int,
        payload: bytes,
        content_type: str,
        headers: Mapping[str, str] = _NO_HEADERS,
        truncate: bool = False,
    ) -> None:
        """A whole body with ``Content-Length`` (none for ``HEAD``); ``truncate`` sends half, then drops."""
        all_headers = {"Content-Type": content_type, "Content-Length": str(len(payload)), **headers}
        try:
            self._headers(status, all_headers)
            if self.handler.command != "HEAD":
                self._write(payload[: len(payload) // 2] if truncate else payload)
        except ConnectionBroken:
            self.abort()
            return
        if truncate:
            self.abort()

    def send_chunked(
        self,
        headers: Mapping[str, str],
        items: Iterable[Any],
        encode: Callable[[Any], bytes] | None = None,
        chunk_delay: float = 0.0,
        break_after: int | None = None,
    ) -> None:
        """A 200 with ``headers``, one HTTP chunk per item (``encode(item)``, or the item's bytes);
        drop the connection once ``break_after`` chunks are out."""
        try:
            self._headers(200, headers)
            for item in items:
                sent = getattr(self.record, self.sent_field)
                if break_after is not None and sent >= break_after:
                    self.abort()
                    return
                if sent and chunk_delay:
                    self.sleep(chunk_delay)
                frame = item if encode is None else encode(item)
                self._write(b"%x\r\n%s\r\n" % (len(frame), frame))
                setattr(self.record, self.sent_field, sent + 1)
            if break_after is not None and getattr(self.record, self.sent_field) >= break_after:
                self.abort()
                return
            self._write(b"0\r\n\r\n")
        except ConnectionBroken:
            self.abort()


class MockServerBase(Generic[ReplyT, RecordT]):
    """Lifecycle, reply queue, recorded requests and rig errors of a scripted mock server.

    Subclasses set the class attributes and implement :meth:`_record` (parse the request into a
    recorded request), :meth:`_answer` (write the answer), :meth:`_send_rig_error`, and, when not
    every endpoint takes scripted replies, :meth:`_scripted`.
    """

    _reply_class: ClassVar[type[Any]]
    _handler_class: ClassVar[type[MockHandler]] = MockHandler
    _wire_class: ClassVar[type[MockWire]] = MockWire
    _thread_name: ClassVar[str] = "mock-server"
    _not_running: ClassVar[str] = "the mock server is not running"
    _label: ClassVar[str] = "mock"  # "the {label} server has not received any request"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._requested_port = port
        self._httpd: MockHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._connections: set[socket.socket] = set()
        self._queue: list[ReplyT] = []
        self._requests: list[RecordT] = []
        self._errors: list[BaseException] = []

    # -- lifecycle ------------------------------------------------------------------------- #

    def _on_start(self) -> None:
        """Called by :meth:`start` before the server binds."""

    def _on_stop(self) -> None:
        """Called by :meth:`stop` before the server shuts down."""

    def start(self: ServerT) -> ServerT:
        if self._httpd is not None:
            return self
        self._stop.clear()
        self._on_start()
        httpd = MockHTTPServer((self._host, self._requested_port), self._handler_class)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=self._thread_name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stop.set()  # wake handlers sleeping in delay/chunk_delay
        self._on_stop()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            live = list(self._connections)
            self._connections.clear()
        for conn in live:  # unblock keep-alive handlers waiting for the next request
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self: ServerT) -> ServerT:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    # -- addresses ------------------------------------------------------------------------- #

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError(self._not_running)
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash)."""
        return f"http://{self._host}:{self.port}"

    # -- scripting ------------------------------------------------------------------------- #

    def script(self, reply: ReplyT | None = None, /, **fields: Any) -> ReplyT:
        """Queue a reply (or one built from ``fields``) for the next matching request(s) and return it.

        ``server.script(content="hi")`` is ``server.script(Reply(content="hi"))``; keyword fields
        also override the fields of a given ``reply``. Replies are consumed in FIFO order by the
        first request they match.
        """
        if reply is None:
            reply = self._reply_class(**fields)
        elif fields:
            reply = replace(reply, **fields)  # type: ignore[type-var]
        with self._lock:
            self._queue.append(reply)
        return reply

    def pending(self) -> list[ReplyT]:
        """Scripted replies not consumed yet."""
        with self._lock:
            return list(self._queue)

    def reset(self) -> None:
        """Forget scripted replies, recorded requests and recorded rig errors."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()
            self._errors.clear()

    # -- inspection ------------------------------------------------------------------------ #

    @property
    def requests(self) -> list[RecordT]:
        """Every request received since the last :meth:`reset`, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> RecordT:
        with self._lock:
            if not self._requests:
                raise AssertionError(f"the mock {self._label} server has not received any request")
            return self._requests[-1]

    def requests_to(self, endpoint: str) -> list[RecordT]:
        """Requests to one endpoint."""
        return [r for r in self.requests if r.endpoint == endpoint]

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised inside the mock while answering (bugs in the rig); should stay empty."""
        with self._lock:
            return list(self._errors)

    # -- internals ------------------------------------------------------------------------- #

    def _record_error(self, exc: BaseException) -> None:
        with self._lock:
            self._errors.append(exc)

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _accepts(self, reply: ReplyT, record: RecordT) -> bool:
        """Whether ``reply`` may answer ``record`` beyond its endpoint (subclasses: request contents)."""
        return True

    def _take_reply(self, endpoint: str | None, record: RecordT | None = None) -> ReplyT | None:
        with self._lock:
            for position, reply in enumerate(self._queue):
                if not reply.matches(endpoint):
                    continue
                if record is not None and not self._accepts(reply, record):
                    continue
                if reply.times is not None:
                    reply.times -= 1
                    if reply.times <= 0:
                        del self._queue[position]
                return reply
        return None

    _read_body = staticmethod(read_request_body)

    def _remember(self, record: RecordT) -> RecordT:
        with self._lock:
            self._requests.append(record)
        return record

    def _scripted(self, endpoint: str | None) -> bool:
        """Whether requests to ``endpoint`` take a scripted reply."""
        return True

    def _serve(self, handler: MockHandler) -> None:
        record = self._record(handler)
        wire = self._wire_class(handler, record, self._stop)
        try:
            reply = self._take_reply(record.endpoint, record) if self._scripted(record.endpoint) else None
            record.reply = reply
            self._answer(wire, record, reply or self._reply_class())
        except Exception as exc:  # a bug in the rig: surface it to the client and to the test
            self._record_error(exc)
            try:
                self._send_rig_error(wire, exc)
            except Exception:
                wire.abort()

    def _record(self, handler: MockHandler) -> RecordT:
        raise NotImplementedError

    def _answer(self, wire: Any, record: RecordT, reply: ReplyT) -> None:
        raise NotImplementedError

    def _send_rig_error(self, wire: Any, exc: BaseException) -> None:
        raise NotImplementedError
