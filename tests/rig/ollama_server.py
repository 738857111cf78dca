"""A fake Ollama server (native API) on 127.0.0.1 for driving the real ``ollama`` client in tests.

It speaks the wire format the ``ollama`` package expects:

* ``POST /api/chat``        one JSON object, or an NDJSON stream when ``"stream"`` is true *or
  absent* (streaming is the API's default); chunks carry ``message`` fragments, tool calls arrive
  whole in one chunk, the last line has ``done: true``, ``done_reason``, the token counts and the
  four server timings in nanoseconds.
* ``POST /api/generate``    the same with ``response`` fragments (and ``context`` on the last line).
* ``POST /api/embed``       ``{"model", "embeddings": [[...], ...], "total_duration",
  "load_duration", "prompt_eval_count"}``, one vector per input.
* ``POST /api/embeddings``  the legacy ``{"embedding": [...]}``.
* ``GET /``, ``GET /api/version``, ``GET /api/tags``: enough for a health check.
* Errors are ``{"error": "..."}`` with the HTTP status, like the real server.

Answers are deterministic and derived from the request (the answer echoes the model; counts and
timings are the constants below). :meth:`OllamaMockServer.script` changes upcoming answers;
:attr:`OllamaMockServer.requests` holds what the client sent.

Example::

    with OllamaMockServer() as server:
        server.script(content="Hi there", prompt_eval_count=3)
        ollama.Client(host=server.url).chat(model="llama3.2", messages=[...])
        assert server.last_request.body["model"] == "llama3.2"

Only the standard library is used at import time; :meth:`client` imports ``ollama`` lazily.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import re
import socket
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "CREATED_AT",
    "DEFAULT_CONTEXT",
    "DEFAULT_COUNTS",
    "DEFAULT_DURATIONS",
    "DEFAULT_EMBEDDING_DIMENSIONS",
    "OllamaMockServer",
    "RecordedRequest",
    "Reply",
    "ToolCall",
    "default_content",
    "embedding_vector",
    "fragments",
]

CREATED_AT = "2025-01-01T00:00:00.000000Z"
"""``created_at`` of every answer."""

DEFAULT_COUNTS: Mapping[str, int] = {"prompt_eval_count": 26, "eval_count": 12}
"""Token counts of every chat/generate answer (embed reports ``prompt_eval_count`` only)."""

DEFAULT_DURATIONS: Mapping[str, int] = {
    "total_duration": 1_250_000_000,
    "load_duration": 50_000_000,
    "prompt_eval_duration": 200_000_000,
    "eval_duration": 900_000_000,
}
"""Server timings in nanoseconds, as Ollama reports them (embed: total and load only)."""

DEFAULT_CONTEXT: Sequence[int] = (1, 2, 3)
"""The ``context`` token list of generate answers."""

DEFAULT_EMBEDDING_DIMENSIONS = 8

ENDPOINTS: Mapping[str, str] = {
    "/api/chat": "chat",
    "/api/generate": "generate",
    "/api/embed": "embed",
    "/api/embeddings": "embeddings",
    "/api/version": "version",
    "/api/tags": "tags",
    "/": "root",
}

_DEFAULT_ERRORS: Mapping[int, str] = {
    400: "invalid request (mock)",
    404: 'model "{model}" not found, try pulling it first',
    500: "an internal error occurred (mock)",
    503: "server busy, please try again (mock)",
}


def default_content(model: str) -> str:
    """The assistant text of a default answer for ``model``."""
    return f"This is a mock response from {model}."


def fragments(text: str) -> list[str]:
    """How a text is streamed: word by word, whitespace kept with the word before it."""
    return re.findall(r"\S+\s*|\s+", text) or [text]


def embedding_vector(text: str, dimensions: int) -> list[float]:
    """A deterministic vector for ``text``."""
    seed = sum(ord(c) for c in text) or 1
    return [round(math.sin(seed * (i + 1)), 6) for i in range(dimensions)]


@dataclass(frozen=True)
class ToolCall:
    """A tool call the fake model "decides" to make (arguments are an object, as in Ollama)."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"function": {"name": self.name, "arguments": dict(self.arguments)}}
        if self.id is not None:
            out["id"] = self.id
        return out

    @classmethod
    def coerce(cls, value: ToolCall | Mapping[str, Any]) -> ToolCall:
        if isinstance(value, ToolCall):
            return value
        fn = value.get("function", value)
        return cls(name=fn["name"], arguments=fn.get("arguments") or {}, id=value.get("id"))


@dataclass
class Reply:
    """How the server answers one or more upcoming requests (queue with ``server.script``).

    Matching: ``endpoint`` (``"chat"``, ``"generate"``, ``"embed"``, ``"embeddings"``; ``None``
    matches any) and ``times`` (``None``: every matching request until ``reset()``).

    Content: ``content`` (default :func:`default_content`), ``thinking``, ``tool_calls``
    (:class:`ToolCall` or dicts; no default text then), ``done_reason`` (default ``"stop"``),
    ``model`` (default: the requested one), ``prompt_eval_count`` / ``eval_count`` (override
    :data:`DEFAULT_COUNTS`; ``counts=False`` leaves both out, as Ollama does for a cached prompt),
    ``durations`` (override :data:`DEFAULT_DURATIONS`), ``embedding`` (the vector for every input)
    or ``dimensions``, ``extra`` (merged into the JSON answer / the last stream line).

    Transport: ``status`` + ``error`` (``{"error": error}``; default message per status),
    ``delay`` before answering, ``chunk_delay`` between stream lines, ``break_after`` (write that
    many stream lines, or half a JSON body, then drop the connection), ``stream_error_after``
    (after that many lines send ``{"error": ...}`` and end, as Ollama does when a runner dies),
    ``disconnect`` (close without answering), ``body`` (a custom JSON answer) or ``raw_body`` +
    ``content_type``, ``lines`` (custom stream lines: dicts or raw strings).
    """

    endpoint: str | None = None
    times: int | None = 1

    content: str | None = None
    thinking: str | None = None
    tool_calls: Sequence[ToolCall | Mapping[str, Any]] | None = None
    done_reason: str | None = None
    model: str | None = None
    prompt_eval_count: int | None = None
    eval_count: int | None = None
    counts: bool = True
    durations: Mapping[str, int] | None = None
    embedding: Sequence[float] | None = None
    dimensions: int | None = None
    extra: Mapping[str, Any] | None = None

    status: int | None = None
    error: str | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    break_after: int | None = None
    stream_error_after: int | None = None
    disconnect: bool = False
    body: Any = None
    raw_body: bytes | None = None
    content_type: str | None = None
    lines: Sequence[Mapping[str, Any] | str] | None = None

    def matches(self, endpoint: str | None) -> bool:
        return self.endpoint is None or self.endpoint == endpoint


@dataclass
class RecordedRequest:
    """One HTTP request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    raw_body: bytes
    body: Any  # parsed JSON, None when empty or not JSON
    endpoint: str | None
    reply: Reply | None = None
    aborted: bool = False  # the connection broke before the answer was complete
    lines_sent: int = 0  # stream lines written

    @property
    def stream(self) -> bool:
        """Whether the answer streams: ``"stream"`` true or absent (the API's default)."""
        return isinstance(self.body, dict) and self.body.get("stream", True) is not False

    @property
    def json(self) -> Any:
        return self.body


class _Broken(Exception):
    """The socket went away while answering."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-ollama/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 60
    server: _HTTPServer

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
        return

    def do_POST(self) -> None:
        self.server.owner._serve(self)

    do_GET = do_POST
    do_HEAD = do_POST
    do_DELETE = do_POST


class _HTTPServer(ThreadingHTTPServer):
    request_queue_size = 128  # the stdlib default (5) refuses bursts of concurrent clients
    daemon_threads = True
    allow_reuse_address = True
    owner: OllamaMockServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
        if exc is not None:
            self.owner._record_error(exc)


class _Wire:
    """Writes one answer to the handler's socket."""

    def __init__(self, handler: _Handler, record: RecordedRequest, stop: threading.Event) -> None:
        self.handler = handler
        self.record = record
        self.stop = stop

    def _write(self, data: bytes) -> None:
        try:
            self.handler.wfile.write(data)
            self.handler.wfile.flush()
        except OSError as exc:
            raise _Broken() from exc

    def _headers(self, status: int, headers: Mapping[str, str]) -> None:
        self.handler.send_response(status)
        for name, value in headers.items():
            self.handler.send_header(name, value)
        self.handler.end_headers()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.stop.wait(seconds)

    def abort(self) -> None:
        self.record.aborted = True
        self.handler.close_connection = True
        with contextlib.suppress(OSError):
            self.handler.connection.shutdown(socket.SHUT_RDWR)

    def send_bytes(self, status: int, payload: bytes, content_type: str, truncate: bool = False) -> None:
        headers = {"Content-Type": content_type, "Content-Length": str(len(payload))}
        try:
            self._headers(status, headers)
            if self.handler.command != "HEAD":
                self._write(payload[: len(payload) // 2] if truncate else payload)
        except _Broken:
            self.abort()
            return
        if truncate:
            self.abort()

    def send_json(self, status: int, obj: Any, truncate: bool = False) -> None:
        payload = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
        self.send_bytes(status, payload, "application/json; charset=utf-8", truncate)

    def send_ndjson(
        self, lines: Sequence[Mapping[str, Any] | str], chunk_delay: float, break_after: int | None
    ) -> None:
        """Chunked ``application/x-ndjson``, one JSON object per line, like ``ollama serve``."""
        headers = {"Content-Type": "application/x-ndjson", "Transfer-Encoding": "chunked"}
        try:
            self._headers(200, headers)
            for line in lines:
                if break_after is not None and self.record.lines_sent >= break_after:
                    self.abort()
                    return
                if self.record.lines_sent and chunk_delay:
                    self.sleep(chunk_delay)
                text = line if isinstance(line, str) else json.dumps(line, separators=(",", ":"))
                payload = (text + "\n").encode()
                self._write(b"%x\r\n%s\r\n" % (len(payload), payload))
                self.record.lines_sent += 1
            if break_after is not None and self.record.lines_sent >= break_after:
                self.abort()
                return
            self._write(b"0\r\n\r\n")
        except _Broken:
            self.abort()


class OllamaMockServer:
    """A scripted fake Ollama server on 127.0.0.1. Use as a context manager; thread-safe."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._requested_port = port
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._connections: set[socket.socket] = set()
        self._queue: list[Reply] = []
        self._requests: list[RecordedRequest] = []
        self._errors: list[BaseException] = []

    # -- lifecycle ------------------------------------------------------------------------- #

    def start(self) -> OllamaMockServer:
        if self._httpd is not None:
            return self
        self._stop.clear()
        httpd = _HTTPServer((self._host, self._requested_port), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="ollama-mock-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stop.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            live = list(self._connections)
            self._connections.clear()
        for conn in live:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> OllamaMockServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses and clients --------------------------------------------------------------- #

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the mock Ollama server is not running")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: what OLLAMA_HOST or ``Client(host=...)`` takes."""
        return f"http://{self._host}:{self.port}"

    def client(self, **kwargs: Any) -> Any:
        """An ``ollama.Client`` for this server."""
        import ollama

        return ollama.Client(**_host_argument(ollama.Client, self.url), **kwargs)

    def async_client(self, **kwargs: Any) -> Any:
        """An ``ollama.AsyncClient`` for this server."""
        import ollama

        return ollama.AsyncClient(**_host_argument(ollama.AsyncClient, self.url), **kwargs)

    # -- scripting ------------------------------------------------------------------------- #

    def script(self, reply: Reply | None = None, /, **fields: Any) -> Reply:
        """Queue a :class:`Reply` for the next matching request(s); FIFO among matches."""
        if reply is None:
            reply = Reply(**fields)
        elif fields:
            reply = replace(reply, **fields)
        with self._lock:
            self._queue.append(reply)
        return reply

    def script_error(self, status: int, message: str | None = None, **fields: Any) -> Reply:
        """Queue an error answer: ``{"error": message}`` with ``status``."""
        return self.script(status=status, error=message, **fields)

    def script_tool_calls(self, *calls: ToolCall | Mapping[str, Any], **fields: Any) -> Reply:
        return self.script(tool_calls=list(calls), **fields)

    def script_broken_stream(self, after: int = 2, **fields: Any) -> Reply:
        """Queue a stream that sends ``after`` lines and then drops the connection."""
        return self.script(break_after=after, **fields)

    def reset(self) -> None:
        """Forget scripted replies, recorded requests and recorded rig errors."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()
            self._errors.clear()

    def pending(self) -> list[Reply]:
        with self._lock:
            return list(self._queue)

    # -- inspection ------------------------------------------------------------------------ #

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self._requests:
                raise AssertionError("the mock Ollama server has not received any request")
            return self._requests[-1]

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.endpoint == endpoint]

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions inside the rig itself (its bugs); should stay empty."""
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

    def _take_reply(self, endpoint: str | None) -> Reply | None:
        with self._lock:
            for position, reply in enumerate(self._queue):
                if not reply.matches(endpoint):
                    continue
                if reply.times is not None:
                    reply.times -= 1
                    if reply.times <= 0:
                        del self._queue[position]
                return reply
        return None

    @staticmethod
    def _read_body(handler: _Handler) -> bytes:
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

    def _record(self, handler: _Handler) -> RecordedRequest:
        raw = self._read_body(handler)
        path = urlsplit(handler.path).path
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = RecordedRequest(
            method=handler.command,
            path=path,
            headers={k.lower(): v for k, v in handler.headers.items()},
            raw_body=raw,
            body=body,
            endpoint=ENDPOINTS.get(path.rstrip("/") or "/"),
        )
        with self._lock:
            self._requests.append(record)
        return record

    def _serve(self, handler: _Handler) -> None:
        record = self._record(handler)
        wire = _Wire(handler, record, self._stop)
        try:
            scripted = record.endpoint in ("chat", "generate", "embed", "embeddings")
            reply = self._take_reply(record.endpoint) if scripted else None
            record.reply = reply
            self._answer(wire, record, reply or Reply())
        except Exception as exc:  # a bug in the rig: surface it to the client and to the test
            self._record_error(exc)
            try:
                wire.send_json(500, {"error": f"mock server error: {exc!r}"})
            except Exception:
                wire.abort()

    def _answer(self, wire: _Wire, record: RecordedRequest, reply: Reply) -> None:
        body = record.body if isinstance(record.body, dict) else {}
        model = reply.model or str(body.get("model") or "")
        wire.sleep(reply.delay)
        if reply.disconnect:
            wire.abort()
            return
        endpoint = record.endpoint
        if endpoint == "root":
            wire.send_bytes(200, b"Ollama is running", "text/plain; charset=utf-8")
            return
        if endpoint == "version":
            wire.send_json(200, {"version": "0.0.0-mock"})
            return
        if endpoint == "tags":
            wire.send_json(200, {"models": []})
            return
        if endpoint is None or record.method != "POST":
            wire.send_json(404, {"error": "404 page not found"})
            return
        if reply.status is not None and reply.status >= 400:
            message = reply.error or _DEFAULT_ERRORS.get(reply.status, f"mock error {reply.status}")
            wire.send_json(reply.status, {"error": message.format(model=model)})
            return
        if not model and reply.body is None and reply.raw_body is None:
            wire.send_json(400, {"error": "model is required"})
            return
        if reply.raw_body is not None:
            wire.send_bytes(reply.status or 200, reply.raw_body, reply.content_type or "application/json")
            return
        if reply.body is not None:
            wire.send_json(reply.status or 200, reply.body)
            return
        if endpoint == "embed":
            wire.send_json(200, self._embed(body, reply, model), truncate=reply.break_after is not None)
            return
        if endpoint == "embeddings":
            vector = self._vector(str(body.get("prompt") or ""), body, reply)
            wire.send_json(200, {"embedding": vector}, truncate=reply.break_after is not None)
            return
        if record.stream:
            lines = (
                list(reply.lines) if reply.lines is not None else self._stream_lines(endpoint, reply, model)
            )
            if reply.stream_error_after is not None:
                lines = [
                    *lines[: reply.stream_error_after],
                    {"error": reply.error or "an error was encountered while running the model"},
                ]
            wire.send_ndjson(lines, reply.chunk_delay, reply.break_after)
            return
        wire.send_json(200, self._whole(endpoint, reply, model), truncate=reply.break_after is not None)

    # -- answer builders ------------------------------------------------------------------- #

    @staticmethod
    def _final_fields(reply: Reply) -> dict[str, Any]:
        out: dict[str, Any] = {"done": True, "done_reason": reply.done_reason or "stop"}
        durations = {**DEFAULT_DURATIONS, **(reply.durations or {})}
        out["total_duration"] = durations["total_duration"]
        out["load_duration"] = durations["load_duration"]
        if reply.counts:
            out["prompt_eval_count"] = (
                reply.prompt_eval_count
                if reply.prompt_eval_count is not None
                else DEFAULT_COUNTS["prompt_eval_count"]
            )
        out["prompt_eval_duration"] = durations["prompt_eval_duration"]
        if reply.counts:
            out["eval_count"] = (
                reply.eval_count if reply.eval_count is not None else DEFAULT_COUNTS["eval_count"]
            )
        out["eval_duration"] = durations["eval_duration"]
        out.update(reply.extra or {})
        return out

    @staticmethod
    def _text(reply: Reply, model: str) -> str:
        if reply.content is not None:
            return reply.content
        return "" if reply.tool_calls else default_content(model)

    def _whole(self, endpoint: str, reply: Reply, model: str) -> dict[str, Any]:
        text = self._text(reply, model)
        out: dict[str, Any] = {"model": model, "created_at": CREATED_AT}
        if endpoint == "chat":
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if reply.thinking is not None:
                message["thinking"] = reply.thinking
            if reply.tool_calls:
                message["tool_calls"] = [ToolCall.coerce(t).wire() for t in reply.tool_calls]
            out["message"] = message
        else:
            out["response"] = text
            if reply.thinking is not None:
                out["thinking"] = reply.thinking
        final = self._final_fields(reply)
        if endpoint == "generate":
            final = {**final, "context": list(DEFAULT_CONTEXT)}
        out.update(final)
        return out

    def _stream_lines(self, endpoint: str, reply: Reply, model: str) -> list[Mapping[str, Any] | str]:
        head = {"model": model, "created_at": CREATED_AT}
        lines: list[Mapping[str, Any] | str] = []

        def piece(content: str = "", thinking: str | None = None, tools: Any = None) -> dict[str, Any]:
            if endpoint == "chat":
                message: dict[str, Any] = {"role": "assistant", "content": content}
                if thinking is not None:
                    message["thinking"] = thinking
                if tools:
                    message["tool_calls"] = tools
                return {**head, "message": message, "done": False}
            out: dict[str, Any] = {**head, "response": content, "done": False}
            if thinking is not None:
                out["thinking"] = thinking
            return out

        if reply.thinking:
            lines.extend(piece(thinking=t) for t in fragments(reply.thinking))
        text = self._text(reply, model)
        if text:
            lines.extend(piece(content=t) for t in fragments(text))
        if reply.tool_calls and endpoint == "chat":
            lines.append(piece(tools=[ToolCall.coerce(t).wire() for t in reply.tool_calls]))
        last = piece()
        last.update(self._final_fields(reply))
        if endpoint == "generate":
            last["context"] = list(DEFAULT_CONTEXT)
        lines.append(last)
        return lines

    @staticmethod
    def _vector(text: str, body: Mapping[str, Any], reply: Reply) -> list[float]:
        if reply.embedding is not None:
            return list(reply.embedding)
        dims = reply.dimensions or body.get("dimensions") or DEFAULT_EMBEDDING_DIMENSIONS
        return embedding_vector(text, int(dims))

    def _embed(self, body: Mapping[str, Any], reply: Reply, model: str) -> dict[str, Any]:
        raw = body.get("input")
        inputs = [raw] if isinstance(raw, str) else [str(i) for i in raw] if isinstance(raw, list) else []
        durations = {**DEFAULT_DURATIONS, **(reply.durations or {})}
        out: dict[str, Any] = {
            "model": model,
            "embeddings": [self._vector(text, body, reply) for text in inputs],
            "total_duration": durations["total_duration"],
            "load_duration": durations["load_duration"],
        }
        if reply.counts:
            out["prompt_eval_count"] = (
                reply.prompt_eval_count if reply.prompt_eval_count is not None else len(inputs) * 4
            )
        out.update(reply.extra or {})
        return out


def _host_argument(cls: Any, url: str) -> dict[str, str]:
    """``host=`` (ollama >= 0.1.1) or ``base_url=`` (0.1.0)."""
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return {"host": url}
    return {"base_url": url} if "host" not in parameters and "base_url" in parameters else {"host": url}
