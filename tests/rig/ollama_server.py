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

import inspect
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ._mock_server import MockHandler, MockServerBase, MockWire, parse_json_body

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


class _Handler(MockHandler):
    server_version = "mock-ollama/1.0"

    do_GET = MockHandler.do_POST
    do_HEAD = MockHandler.do_POST
    do_DELETE = MockHandler.do_POST


class _Wire(MockWire):
    """Writes one answer to the handler's socket."""

    sent_field = "lines_sent"

    def send_json(self, status: int, obj: Any, truncate: bool = False) -> None:
        payload = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
        self.send_bytes(status, payload, "application/json; charset=utf-8", truncate=truncate)

    def send_ndjson(
        self, lines: Sequence[Mapping[str, Any] | str], chunk_delay: float, break_after: int | None
    ) -> None:
        """Chunked ``application/x-ndjson``, one JSON object per line, like ``ollama serve``."""
        headers = {"Content-Type": "application/x-ndjson", "Transfer-Encoding": "chunked"}
        self.send_chunked(headers, lines, _ndjson_line, chunk_delay, break_after)


def _ndjson_line(line: Mapping[str, Any] | str) -> bytes:
    text = line if isinstance(line, str) else json.dumps(line, separators=(",", ":"))
    return (text + "\n").encode()


class OllamaMockServer(MockServerBase[Reply, RecordedRequest]):
    """A scripted fake Ollama server on 127.0.0.1. Use as a context manager; thread-safe."""

    _reply_class = Reply
    _handler_class = _Handler
    _wire_class = _Wire
    _thread_name = "ollama-mock-server"
    _not_running = "the mock Ollama server is not running"
    _label = "Ollama"

    # -- addresses and clients --------------------------------------------------------------- #

    def client(self, **kwargs: Any) -> Any:
        """An ``ollama.Client`` for this server."""
        import ollama

        return ollama.Client(**_host_argument(ollama.Client, self.url), **kwargs)

    def async_client(self, **kwargs: Any) -> Any:
        """An ``ollama.AsyncClient`` for this server."""
        import ollama

        return ollama.AsyncClient(**_host_argument(ollama.AsyncClient, self.url), **kwargs)

    # -- scripting ------------------------------------------------------------------------- #

    def script_error(self, status: int, message: str | None = None, **fields: Any) -> Reply:
        """Queue an error answer: ``{"error": message}`` with ``status``."""
        return self.script(status=status, error=message, **fields)

    def script_tool_calls(self, *calls: ToolCall | Mapping[str, Any], **fields: Any) -> Reply:
        return self.script(tool_calls=list(calls), **fields)

    def script_broken_stream(self, after: int = 2, **fields: Any) -> Reply:
        """Queue a stream that sends ``after`` lines and then drops the connection."""
        return self.script(break_after=after, **fields)

    # -- internals ------------------------------------------------------------------------- #

    def _record(self, handler: MockHandler) -> RecordedRequest:
        raw = self._read_body(handler)
        path = urlsplit(handler.path).path
        return self._remember(
            RecordedRequest(
                method=handler.command,
                path=path,
                headers={k.lower(): v for k, v in handler.headers.items()},
                raw_body=raw,
                body=parse_json_body(raw),
                endpoint=ENDPOINTS.get(path.rstrip("/") or "/"),
            )
        )

    def _scripted(self, endpoint: str | None) -> bool:
        return endpoint in ("chat", "generate", "embed", "embeddings")

    def _send_rig_error(self, wire: _Wire, exc: BaseException) -> None:
        wire.send_json(500, {"error": f"mock server error: {exc!r}"})

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
