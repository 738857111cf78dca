"""A fake Anthropic API on 127.0.0.1 for driving the real ``anthropic`` SDK in tests.

It speaks the wire format the SDK expects, for the first-party API and for the Bedrock and Vertex
flavours of it, so ``Anthropic``, ``AsyncAnthropic``, ``AnthropicBedrock`` and ``AnthropicVertex``
work against it unchanged:

* ``POST /v1/messages`` (also ``?beta=true``): a Message as JSON, or the SSE event stream
  ``message_start``, ``content_block_start``, ``ping``, ``content_block_delta`` (``text_delta``,
  ``thinking_delta``, ``signature_delta``, ``input_json_delta``), ``content_block_stop``,
  ``message_delta`` (stop reason and cumulative usage), ``message_stop``; ``error`` on request.
* ``POST /v1/complete``: legacy text completions, JSON and SSE (``completion`` events).
* ``POST /v1/messages/count_tokens`` and ``GET /v1/models``: small fixed answers.
* Bedrock: ``POST /model/{model}/invoke`` (JSON) and ``/model/{model}/invoke-with-response-stream``
  (the same events, framed as AWS event-stream ``chunk`` messages).
* Vertex: ``POST /v1/projects/{p}/locations/{r}/publishers/anthropic/models/{model}:rawPredict``
  and ``:streamRawPredict``.

Answers are deterministic and derived from the request (the model is echoed, the text is
:func:`default_text`, token counts are :data:`DEFAULT_USAGE`; a request that enables ``thinking``
gets a thinking block first). :meth:`AnthropicMockServer.script` changes upcoming answers, and
:attr:`AnthropicMockServer.requests` shows what the SDK sent. Errors use Anthropic's error body
(``{"type": "error", "error": {"type": ..., "message": ...}}``) and its error types per status.

Example::

    with AnthropicMockServer() as server:
        server.script(text="Hi", usage={"cache_read_input_tokens": 5})
        client = server.client()
        client.messages.create(model="claude-x", max_tokens=10, messages=[...])
        assert server.last_request.body["model"] == "claude-x"

Only the standard library is used at import time; the ``*_client()`` helpers import ``anthropic``
lazily.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import re
import struct
import threading
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ._mock_server import MockHandler, MockServerBase, MockWire, parse_json_body

__all__ = [
    "DEFAULT_USAGE",
    "ERRORS",
    "AnthropicMockServer",
    "RecordedRequest",
    "Reply",
    "ToolUse",
    "aws_event_frame",
    "default_text",
]

DEFAULT_USAGE: Mapping[str, int] = {
    "input_tokens": 10,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
    "output_tokens": 20,
}
"""The ``usage`` of every default Message. ``Reply.usage`` overrides keys (``None`` removes one)."""

ERRORS: Mapping[int, tuple[str, str]] = {
    400: ("invalid_request_error", "messages: field required (mock)"),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "model: {model}"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit (mock)."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}
"""Anthropic's error type and a message for each status the API documents."""

SSEEvent = tuple[str, Any]
"""``(event name, payload)``; the payload is JSON-encoded unless it is a ``str`` (sent verbatim)."""

_BEDROCK = re.compile(r"^/model/(?P<model>[^/]+)/(?P<op>invoke|invoke-with-response-stream)$")
_VERTEX = re.compile(
    r"^/v1/projects/[^/]+/locations/[^/]+/publishers/anthropic/models/(?P<model>[^/:]+)"
    r":(?P<op>rawPredict|streamRawPredict)$"
)
_ENDPOINTS = {
    "/v1/messages": "messages",
    "/v1/complete": "complete",
    "/v1/messages/count_tokens": "count_tokens",
    "/v1/models": "models",
}


def default_text(model: str) -> str:
    """The assistant text of a default answer for ``model``."""
    return f"This is a mock response from {model}."


def default_thinking(model: str) -> str:
    """The thinking of a default answer to a request that enables thinking."""
    return f"The user wants a short answer; {model} should keep it brief."


# --------------------------------------------------------------------------- #
# Scripting
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class ToolUse:
    """A tool call the fake model makes (a ``tool_use`` block)."""

    name: str
    input: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass
class Reply:
    """How the server answers the next matching request(s); queue it with ``server.script(...)``.

    Matching: ``endpoint`` (``"messages"``, ``"complete"``, ``"count_tokens"``; ``None`` = any) and
    ``times`` (requests it answers; ``None`` = until ``reset()``).

    Content: ``text`` (the text block; ``""`` = none), ``thinking`` (a thinking block first; the
    default adds one when the request enables thinking), ``tool_uses`` (tool_use blocks after the
    text; by default a ``tool_choice`` of type ``tool`` or ``any`` gets a call with an example input),
    or ``blocks`` (the whole ``content`` list, as the API sends it). ``stop_reason`` defaults
    to ``tool_use`` with tool calls, else ``end_turn`` (legacy completions: ``stop_sequence``).
    ``model``, ``message_id``, ``usage`` (overrides of :data:`DEFAULT_USAGE`), ``delta_usage`` (the
    whole ``usage`` of ``message_delta``; default ``{"output_tokens": ...}``), ``extra`` (merged
    into the Message JSON), ``chunk_size`` (characters per text/thinking delta), ``ping``.

    Transport: ``status`` >= 400 answers with an Anthropic error body (``error_type`` and
    ``error_message`` override the defaults of :data:`ERRORS`); ``retry_after`` (seconds; sent as
    ``retry-after`` and ``retry-after-ms``); ``headers``; ``hang`` (answer nothing until
    ``release()``, ``reset()`` or ``stop()``, then drop the connection); ``disconnect`` (close the
    connection without an answer); ``break_after`` (write that many SSE events, or half the JSON
    body, then drop the connection); ``stream_error_after`` (after that many events send an
    ``error`` event and end the stream); ``chunk_delay`` (seconds between events); ``events`` (a
    custom SSE event list); ``body`` / ``raw_body`` + ``content_type`` (a custom answer).
    """

    endpoint: str | None = None
    times: int | None = 1

    text: str | None = None
    thinking: str | None = None
    tool_uses: Sequence[ToolUse | Mapping[str, Any]] | None = None
    blocks: Sequence[Mapping[str, Any]] | None = None
    stop_reason: str | None = None
    stop_sequence: str | None = None
    model: str | None = None
    message_id: str | None = None
    usage: Mapping[str, int | None] | None = None
    delta_usage: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] | None = None
    chunk_size: int = 8
    ping: bool = True

    status: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    retry_after: float | None = None
    headers: Mapping[str, str] | None = None
    hang: bool = False
    disconnect: bool = False
    break_after: int | None = None
    stream_error_after: int | None = None
    chunk_delay: float = 0.0
    events: Sequence[SSEEvent] | None = None
    body: Any = None
    raw_body: bytes | str | None = None
    content_type: str | None = None

    def matches(self, endpoint: str | None) -> bool:
        return self.endpoint is None or self.endpoint == endpoint


@dataclass
class RecordedRequest:
    """One HTTP request as the server received it."""

    method: str
    path: str
    """Without the query string, e.g. ``/v1/messages`` or ``/model/{model}/invoke``."""
    query: dict[str, str]
    headers: dict[str, str]
    """Lower-cased names."""
    raw_body: bytes
    body: Any
    """The parsed JSON body (``None`` when empty or not JSON)."""
    endpoint: str | None
    """``messages``, ``complete``, ``count_tokens``, ``models`` or ``None`` (unknown path)."""
    platform: str
    """``anthropic``, ``bedrock`` or ``vertex``."""
    model: str | None
    """From the body, or from the path (Bedrock, Vertex)."""
    stream: bool
    client_address: tuple[str, int] = ("", 0)
    reply: Reply | None = None
    aborted: bool = False
    """The connection broke (client left, or a scripted break) before the answer was complete."""
    events_sent: int = 0

    @property
    def beta(self) -> bool:
        return self.query.get("beta") == "true"

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


# --------------------------------------------------------------------------- #
# Answers
# --------------------------------------------------------------------------- #


def _chunks(text: str, size: int) -> list[str]:
    size = max(1, size)
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


@dataclass
class _Answer:
    request: RecordedRequest
    reply: Reply
    seq: int
    model: str

    @property
    def body(self) -> dict[str, Any]:
        return self.request.body if isinstance(self.request.body, dict) else {}

    def blocks(self) -> list[dict[str, Any]]:
        reply = self.reply
        if reply.blocks is not None:
            return [dict(b) for b in reply.blocks]
        blocks: list[dict[str, Any]] = []
        thinking = reply.thinking
        wants_thinking = (self.body.get("thinking") or {}).get("type") in ("enabled", "adaptive")
        if thinking is None and wants_thinking:
            thinking = default_thinking(self.model)
        if thinking:
            blocks.append({"type": "thinking", "thinking": thinking, "signature": f"sig-mock-{self.seq}"})
        tool_uses = list(reply.tool_uses or ()) or self.forced_tool()
        text = reply.text
        if text is None and not tool_uses:
            text = default_text(self.model)
        if text:
            blocks.append({"type": "text", "text": text})
        for position, tool in enumerate(tool_uses):
            t = tool if isinstance(tool, ToolUse) else ToolUse(**dict(tool))
            blocks.append(
                {
                    "type": "tool_use",
                    "id": t.id or f"toolu_mock{self.seq:04d}{position}",
                    "name": t.name,
                    "input": dict(t.input),
                }
            )
        return blocks

    def forced_tool(self) -> list[ToolUse]:
        """The call a ``tool_choice`` of type ``tool`` (or ``any``) forces, with an example input."""
        choice = self.body.get("tool_choice") or {}
        tools = [t for t in self.body.get("tools") or () if isinstance(t, dict) and t.get("name")]
        if choice.get("type") == "tool":
            tools = [t for t in tools if t["name"] == choice.get("name")]
        elif choice.get("type") != "any":
            return []
        if not tools:
            return []
        schema = tools[0].get("input_schema") or {}
        example = {
            name: {"string": "mock", "integer": 1, "number": 1.5, "boolean": True}.get(str(prop.get("type")))
            for name, prop in (schema.get("properties") or {}).items()
            if name in (schema.get("required") or ()) and isinstance(prop, dict)
        }
        return [ToolUse(name=tools[0]["name"], input=example)]

    def usage(self) -> dict[str, int]:
        usage: dict[str, Any] = dict(DEFAULT_USAGE)
        for key, value in (self.reply.usage or {}).items():
            if value is None:
                usage.pop(key, None)
            else:
                usage[key] = value
        return usage

    def message_id(self) -> str:
        return self.reply.message_id or f"msg_mock{self.seq:06d}"

    def stop_reason(self, blocks: list[dict[str, Any]]) -> str:
        if self.reply.stop_reason:
            return self.reply.stop_reason
        return "tool_use" if any(b.get("type") == "tool_use" for b in blocks) else "end_turn"

    def message(self) -> dict[str, Any]:
        blocks = self.blocks()
        message = {
            "id": self.message_id(),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": blocks,
            "stop_reason": self.stop_reason(blocks),
            "stop_sequence": self.reply.stop_sequence,
            "usage": self.usage(),
        }
        message.update(self.reply.extra or {})
        return message

    def message_events(self) -> list[SSEEvent]:
        blocks = self.blocks()
        usage = self.usage()
        start_usage = {k: v for k, v in usage.items() if k != "output_tokens"}
        start_usage["output_tokens"] = 1  # the API's placeholder until message_delta
        events: list[SSEEvent] = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": self.message_id(),
                        "type": "message",
                        "role": "assistant",
                        "model": self.model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": start_usage,
                    },
                },
            )
        ]
        size = self.reply.chunk_size
        for index, block in enumerate(blocks):
            kind = block.get("type")
            if kind == "text":
                start: dict[str, Any] = {"type": "text", "text": ""}
            elif kind == "thinking":
                start = {"type": "thinking", "thinking": "", "signature": ""}
            elif kind == "tool_use":
                start = {**block, "input": {}}
            else:
                start = block
            events.append(
                (
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": start},
                )
            )
            if index == 0 and self.reply.ping:
                events.append(("ping", {"type": "ping"}))
            deltas: list[dict[str, Any]] = []
            if kind == "text":
                deltas = [{"type": "text_delta", "text": c} for c in _chunks(block.get("text", ""), size)]
            elif kind == "thinking":
                deltas = [
                    {"type": "thinking_delta", "thinking": c}
                    for c in _chunks(block.get("thinking", ""), size)
                ]
                deltas.append({"type": "signature_delta", "signature": block.get("signature", "")})
            elif kind == "tool_use":
                arguments = json.dumps(block.get("input") or {}) if block.get("input") else ""
                deltas = [{"type": "input_json_delta", "partial_json": ""}]
                if arguments:
                    deltas += [
                        {"type": "input_json_delta", "partial_json": c} for c in _chunks(arguments, 10)
                    ]
            for delta in deltas:
                events.append(
                    ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
                )
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        delta_usage = dict(self.reply.delta_usage or {"output_tokens": usage.get("output_tokens", 0)})
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": self.stop_reason(blocks),
                        "stop_sequence": self.reply.stop_sequence,
                    },
                    "usage": delta_usage,
                },
            )
        )
        events.append(("message_stop", {"type": "message_stop"}))
        return events

    def completion_text(self) -> str:
        return self.reply.text if self.reply.text is not None else " " + default_text(self.model)

    def completion(self) -> dict[str, Any]:
        cid = self.reply.message_id or f"compl_mock{self.seq:06d}"
        body = {
            "type": "completion",
            "id": cid,
            "completion": self.completion_text(),
            "stop_reason": self.reply.stop_reason or "stop_sequence",
            "model": self.model,
            "stop": self.reply.stop_sequence or "\n\nHuman:",
            "log_id": cid,
        }
        body.update(self.reply.extra or {})
        return body

    def completion_events(self) -> list[SSEEvent]:
        final = self.completion()
        events: list[SSEEvent] = [("ping", {"type": "ping"})] if self.reply.ping else []
        pieces = _chunks(final["completion"], self.reply.chunk_size)
        for position, piece in enumerate(pieces):
            last = position == len(pieces) - 1
            events.append(
                (
                    "completion",
                    {
                        **final,
                        "completion": piece,
                        "stop_reason": final["stop_reason"] if last else None,
                        "stop": final["stop"] if last else None,
                    },
                )
            )
        return events


def aws_event_frame(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One message of the AWS event-stream encoding (string headers only), with both CRCs."""
    encoded = b""
    for name, value in headers.items():
        n, v = name.encode("utf-8"), value.encode("utf-8")
        encoded += struct.pack("!B", len(n)) + n + b"\x07" + struct.pack("!H", len(v)) + v
    prelude = struct.pack("!II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    message = prelude + struct.pack("!I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack("!I", zlib.crc32(message))


def _bedrock_frame(event: SSEEvent) -> bytes:
    name, payload = event
    if name == "error":
        error = payload.get("error", {}) if isinstance(payload, dict) else {}
        return aws_event_frame(
            {
                ":message-type": "exception",
                ":exception-type": str(error.get("type") or "modelStreamErrorException"),
                ":content-type": "application/json",
            },
            json.dumps({"message": error.get("message", "")}).encode("utf-8"),
        )
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    chunk = json.dumps({"bytes": base64.b64encode(data.encode("utf-8")).decode("ascii")}).encode("utf-8")
    return aws_event_frame(
        {":message-type": "event", ":event-type": "chunk", ":content-type": "application/json"}, chunk
    )


def _sse_frame(event: SSEEvent) -> bytes:
    name, payload = event
    data = (
        payload
        if isinstance(payload, str)
        else json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    )
    lines = [f"event: {name}"] + [f"data: {line}" for line in data.split("\n")]
    return ("\n".join(lines) + "\n\n").encode("utf-8")


# --------------------------------------------------------------------------- #
# HTTP plumbing
# --------------------------------------------------------------------------- #


class _Handler(MockHandler):
    server_version = "mock-anthropic/1.0"

    do_GET = MockHandler.do_POST


class _Wire(MockWire):
    def send_json(self, status: int, obj: Any, headers: Mapping[str, str], truncate: bool = False) -> None:
        self.send_bytes(status, json.dumps(obj).encode("utf-8"), "application/json", headers, truncate)

    def send_stream(
        self,
        frames: Iterable[bytes],
        content_type: str,
        headers: Mapping[str, str],
        chunk_delay: float,
        break_after: int | None,
    ) -> None:
        all_headers = {
            "Content-Type": content_type,
            "Transfer-Encoding": "chunked",
            "Cache-Control": "no-cache",
            **headers,
        }
        self.send_chunked(all_headers, frames, None, chunk_delay, break_after)


# --------------------------------------------------------------------------- #
# The server
# --------------------------------------------------------------------------- #


class AnthropicMockServer(MockServerBase[Reply, RecordedRequest]):
    """A scripted fake Anthropic API (first-party, Bedrock and Vertex shapes) on 127.0.0.1."""

    _reply_class = Reply
    _handler_class = _Handler
    _wire_class = _Wire
    _thread_name = "anthropic-mock-server"
    _not_running = "AnthropicMockServer is not running; call start() first"
    _label = "Anthropic"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._released = threading.Event()
        self._seq = itertools.count(1)

    # -- lifecycle ------------------------------------------------------------------ #

    def _on_start(self) -> None:
        self._released.clear()

    def _on_stop(self) -> None:
        self._released.set()

    # -- addresses -------------------------------------------------------------------- #

    @property
    def vertex_base_url(self) -> str:
        """The ``base_url`` of ``AnthropicVertex(...)`` (Vertex paths start with ``/v1/projects``)."""
        return self.url + "/v1"

    # -- SDK clients (anthropic imported lazily) ---------------------------------------------- #

    def client(self, **kwargs: Any) -> Any:
        """``anthropic.Anthropic`` for this server (``api_key="test"``, ``max_retries=0`` unless given)."""
        from anthropic import Anthropic

        kwargs.setdefault("api_key", "test")
        kwargs.setdefault("max_retries", 0)
        return Anthropic(base_url=self.url, **kwargs)

    def async_client(self, **kwargs: Any) -> Any:
        from anthropic import AsyncAnthropic

        kwargs.setdefault("api_key", "test")
        kwargs.setdefault("max_retries", 0)
        return AsyncAnthropic(base_url=self.url, **kwargs)

    def bedrock_client(self, *, is_async: bool = False, **kwargs: Any) -> Any:
        """``AnthropicBedrock`` with static credentials (needs ``botocore`` to sign requests)."""
        from anthropic import AnthropicBedrock, AsyncAnthropicBedrock

        kwargs.setdefault("aws_access_key", "mock-access-key")
        kwargs.setdefault("aws_secret_key", "mock-secret-key")
        kwargs.setdefault("aws_region", "us-east-1")
        kwargs.setdefault("max_retries", 0)
        cls = AsyncAnthropicBedrock if is_async else AnthropicBedrock
        return cls(base_url=self.url, **kwargs)

    def vertex_client(self, *, is_async: bool = False, **kwargs: Any) -> Any:
        """``AnthropicVertex`` with a static access token (no Google credentials needed)."""
        from anthropic import AnthropicVertex, AsyncAnthropicVertex

        kwargs.setdefault("region", "us-east5")
        kwargs.setdefault("project_id", "mock-project")
        kwargs.setdefault("access_token", "mock-token")
        kwargs.setdefault("max_retries", 0)
        cls = AsyncAnthropicVertex if is_async else AnthropicVertex
        return cls(base_url=self.vertex_base_url, **kwargs)

    # -- scripting -------------------------------------------------------------------- #

    def script_error(
        self,
        status: int,
        message: str | None = None,
        *,
        type: str | None = None,
        retry_after: float | None = None,
        **fields: Any,
    ) -> Reply:
        """Queue an Anthropic error answer with ``status``."""
        return self.script(
            status=status, error_message=message, error_type=type, retry_after=retry_after, **fields
        )

    def script_tool_use(self, *tools: ToolUse | Mapping[str, Any], **fields: Any) -> Reply:
        return self.script(tool_uses=list(tools), **fields)

    def script_broken_stream(self, after: int = 3, **fields: Any) -> Reply:
        """Queue an answer that sends ``after`` events (or half its JSON body) and drops the connection."""
        return self.script(break_after=after, **fields)

    def release(self) -> None:
        """Let ``hang`` answers go (they then drop their connection)."""
        self._released.set()

    def reset(self) -> None:
        """Forget scripted replies, recorded requests and rig errors; release hanging answers."""
        self._released.set()
        super().reset()
        self._released = threading.Event()

    # -- internals ---------------------------------------------------------------------- #

    def _record(self, handler: MockHandler) -> RecordedRequest:
        raw = self._read_body(handler)
        split = urlsplit(handler.path)
        body = parse_json_body(raw)
        path = split.path
        data = body if isinstance(body, dict) else {}
        platform, endpoint, model, stream = (
            "anthropic",
            _ENDPOINTS.get(path.rstrip("/")),
            data.get("model"),
            False,
        )
        stream = data.get("stream") is True
        if (match := _BEDROCK.match(path)) is not None:
            platform, model = "bedrock", unquote(match.group("model"))
            endpoint = "complete" if "prompt" in data else "messages"
            stream = match.group("op") == "invoke-with-response-stream"
        elif (match := _VERTEX.match(path)) is not None:
            platform, model = "vertex", unquote(match.group("model"))
            endpoint = "messages"
            stream = match.group("op") == "streamRawPredict" or stream
        return self._remember(
            RecordedRequest(
                method=handler.command,
                path=path,
                query=dict(parse_qsl(split.query, keep_blank_values=True)),
                headers={k.lower(): v for k, v in handler.headers.items()},
                raw_body=raw,
                body=body,
                endpoint=endpoint,
                platform=platform,
                model=str(model) if model is not None else None,
                stream=stream,
                client_address=(str(handler.client_address[0]), int(handler.client_address[1])),
            )
        )

    def _scripted(self, endpoint: str | None) -> bool:
        return endpoint in ("messages", "complete", "count_tokens")

    def _send_rig_error(self, wire: _Wire, exc: BaseException) -> None:
        wire.send_json(
            500, {"type": "error", "error": {"type": "api_error", "message": f"mock: {exc!r}"}}, {}
        )

    def _error_body(self, record: RecordedRequest, reply: Reply, status: int, model: str) -> dict[str, Any]:
        kind, message = ERRORS.get(status, ("api_error", f"Mock error {status}."))
        return {
            "type": "error",
            "error": {
                "type": reply.error_type or kind,
                "message": reply.error_message or message.format(model=model),
            },
        }

    def _answer(self, wire: _Wire, record: RecordedRequest, reply: Reply) -> None:
        seq = next(self._seq)
        model = reply.model or record.model or "claude-mock"
        headers = {"request-id": f"req_mock{seq:06d}", "anthropic-organization-id": "org-mock"}
        if record.platform == "bedrock":
            headers = {"x-amzn-requestid": f"00000000-0000-4000-8000-{seq:012d}"}
        headers.update(reply.headers or {})

        if reply.hang:
            self._released.wait()
            wire.abort()
            return
        if reply.disconnect:
            wire.abort()
            return
        status = reply.status or 200
        if status >= 400 and reply.body is None and reply.raw_body is None:
            if reply.retry_after is not None:
                headers.setdefault("retry-after", str(max(0, math.ceil(reply.retry_after))))
                headers.setdefault("retry-after-ms", str(int(reply.retry_after * 1000)))
            wire.send_json(status, self._error_body(record, reply, status, model), headers)
            return
        if reply.raw_body is not None:
            raw = reply.raw_body.encode("utf-8") if isinstance(reply.raw_body, str) else reply.raw_body
            wire.send_bytes(
                status, raw, reply.content_type or "application/json", headers, reply.break_after is not None
            )
            return
        if reply.body is not None:
            wire.send_json(status, reply.body, headers, reply.break_after is not None)
            return
        if record.endpoint is None:
            wire.send_json(
                404,
                {
                    "type": "error",
                    "error": {"type": "not_found_error", "message": f"Not found: {record.path}"},
                },
                headers,
            )
            return
        if record.endpoint == "models":
            wire.send_json(
                200,
                {
                    "data": [
                        {
                            "type": "model",
                            "id": "claude-mock",
                            "display_name": "Mock",
                            "created_at": "2024-01-01T00:00:00Z",
                        }
                    ],
                    "has_more": False,
                    "first_id": "claude-mock",
                    "last_id": "claude-mock",
                },
                headers,
            )
            return
        answer = _Answer(request=record, reply=reply, seq=seq, model=model)
        if record.endpoint == "count_tokens":
            wire.send_json(200, {"input_tokens": answer.usage().get("input_tokens", 0)}, headers)
            return
        if not record.stream:
            payload = answer.completion() if record.endpoint == "complete" else answer.message()
            wire.send_json(status, payload, headers, reply.break_after is not None)
            return
        if reply.events is not None:
            events = list(reply.events)
        elif record.endpoint == "complete":
            events = answer.completion_events()
        else:
            events = answer.message_events()
        if reply.stream_error_after is not None:
            kind, message = ERRORS[529]
            events = events[: reply.stream_error_after]
            events.append(
                (
                    "error",
                    {
                        "type": "error",
                        "error": {
                            "type": reply.error_type or kind,
                            "message": reply.error_message or message,
                        },
                    },
                )
            )
        if record.platform == "bedrock":
            frames = [_bedrock_frame(e) for e in events]
            content_type = "application/vnd.amazon.eventstream"
        else:
            frames = [_sse_frame(e) for e in events]
            content_type = "text/event-stream; charset=utf-8"
        wire.send_stream(frames, content_type, headers, reply.chunk_delay, reply.break_after)
