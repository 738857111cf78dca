"""Reads the ``ollama`` client's requests and responses into the neutral :class:`LLMCall`.

Nothing here imports ``ollama`` or ``httpx``: objects are read by key or attribute, so the same code
serves the plain dicts of ollama < 0.4 and the pydantic models (``ChatResponse``, ...) of later
releases. Caller arguments are only read, never iterated unless they are lists or tuples, so a
generator passed by the caller is left for the SDK to consume.
"""

from __future__ import annotations

import inspect
import os
import sys
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from ..._core import semconv as sc
from ..._core.record import Choice, LLMCall, Message, ToolCall, Usage
from .._kit.read import get

# Ollama's own server timings, reported in nanoseconds and recorded in seconds (double).
OLLAMA_RESPONSE_TOTAL_DURATION: Final = sc.OLLAMA_RESPONSE_TOTAL_DURATION
OLLAMA_RESPONSE_LOAD_DURATION: Final = sc.OLLAMA_RESPONSE_LOAD_DURATION
OLLAMA_RESPONSE_PROMPT_EVAL_DURATION: Final = sc.OLLAMA_RESPONSE_PROMPT_EVAL_DURATION
OLLAMA_RESPONSE_EVAL_DURATION: Final = sc.OLLAMA_RESPONSE_EVAL_DURATION

# response field (ns) -> span attribute (s)
TIMINGS: Final[tuple[tuple[str, str], ...]] = (
    ("total_duration", OLLAMA_RESPONSE_TOTAL_DURATION),
    ("load_duration", OLLAMA_RESPONSE_LOAD_DURATION),
    ("prompt_eval_duration", OLLAMA_RESPONSE_PROMPT_EVAL_DURATION),
    ("eval_duration", OLLAMA_RESPONSE_EVAL_DURATION),
)

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 11434
IMAGE_PLACEHOLDER: Final = "<omitted>"
# Tool calls kept per streamed response; a model does not legitimately emit more.
MAX_STREAM_TOOL_CALLS: Final = 128

_SEQUENCES = (list, tuple)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# --- arguments -------------------------------------------------------------------------------------


def positional_names(function: Callable[..., Any]) -> tuple[str, ...]:
    """Names of the parameters a caller may pass by position, without ``self``."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return ()
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = [p.name for p in parameters if p.kind in kinds]
    return tuple(names[1:]) if names and names[0] == "self" else tuple(names)


def arguments(names: tuple[str, ...], args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The call's arguments by name (old clients take ``model``, ``messages``, ... by position)."""
    bound = dict(zip(names, args, strict=False))  # extra positionals: the SDK raises its TypeError
    bound.update(kwargs)
    return bound


# --- the server --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Server:
    address: str | None
    port: int | None


_servers: weakref.WeakKeyDictionary[Any, tuple[Any, Server]] = weakref.WeakKeyDictionary()


def server_of(client: Any) -> Server:
    """Host and port of an ``ollama.Client``/``AsyncClient`` (its httpx client's ``base_url``)."""
    http = getattr(client, "_client", None)
    raw = getattr(http, "base_url", None) if http is not None else None
    if raw is None:
        return parse_host(os.environ.get("OLLAMA_HOST"))
    try:
        cached = _servers.get(http)
    except TypeError:
        cached = None
    if cached is not None and cached[0] is raw:  # base_url can be reassigned on an httpx client
        return cached[1]
    server = parse_host(str(raw))
    try:
        _servers[http] = (raw, server)  # weak: gone with the client, so never unbounded
    except TypeError:
        pass
    return server


def parse_host(host: str | None) -> Server:
    """Address and port the way the ollama client reads OLLAMA_HOST (default 127.0.0.1:11434)."""
    host = (host or "").strip()
    if not host:
        return Server(DEFAULT_HOST, DEFAULT_PORT)
    scheme, found, rest = host.partition("://")
    if not found:
        scheme, rest = "http", host
    default_port = {"http": 80, "https": 443}.get(scheme.lower(), DEFAULT_PORT) if found else DEFAULT_PORT
    parts = urlsplit(f"{scheme}://{rest}")
    try:
        port = parts.port or default_port
    except ValueError:
        port = default_port
    return Server((parts.hostname or DEFAULT_HOST).lower(), port)


# --- requests --------------------------------------------------------------------------------------


def _new_call(operation: str, server: Server, a: Mapping[str, Any], *, streams: bool) -> LLMCall:
    return LLMCall(
        operation=operation,
        provider=sc.PROVIDER_OLLAMA,
        request_model=_text(a.get("model")),
        server_address=server.address,
        server_port=server.port if server.address is not None else None,
        stream=streams and bool(a.get("stream")),
    )


def _options(call: LLMCall, options: Any) -> None:
    """``options={...}`` (a dict, or ``ollama.Options``) -> the record's request parameters."""
    if options is None:
        return
    call.temperature = _float(get(options, "temperature"))
    call.top_p = _float(get(options, "top_p"))
    call.top_k = _float(get(options, "top_k"))
    call.frequency_penalty = _float(get(options, "frequency_penalty"))
    call.presence_penalty = _float(get(options, "presence_penalty"))
    call.seed = _int(get(options, "seed"))
    limit = _int(get(options, "num_predict"))
    # -1 (no limit) and -2 (fill the context) are modes, not a token budget.
    call.max_tokens = limit if limit is not None and limit >= 0 else None
    stop = get(options, "stop")
    if isinstance(stop, str):
        call.stop_sequences = [stop]
    elif isinstance(stop, _SEQUENCES):
        call.stop_sequences = [s for s in stop if isinstance(s, str)]


def _output_type(fmt: Any) -> str | None:
    """``format="json"`` or a JSON schema asks for JSON; ``""``/None for free text."""
    if fmt == "json" or isinstance(fmt, Mapping):
        return "json"
    return None


def _content(text: Any, images: Any, thinking: Any = None) -> Any:
    """Text alone, or parts when images or thinking come with it. Images become placeholders:
    they are base64 strings, bytes or file paths, none of which may leave the process."""
    count = len(images) if isinstance(images, _SEQUENCES) else 0
    if not count and not _text(thinking):
        return _text(text)
    parts: list[dict[str, Any]] = []
    if _text(thinking):
        parts.append({"type": "thinking", "thinking": thinking})
    if _text(text):
        parts.append({"type": "text", "text": text})
    parts.extend({"type": "image", "content": IMAGE_PLACEHOLDER} for _ in range(count))
    return parts


def _tool_calls(items: Any, keep_arguments: bool = True) -> list[ToolCall] | None:
    if not isinstance(items, _SEQUENCES) or not items:
        return None
    out = []
    for tc in items:
        fn = get(tc, "function")
        out.append(
            ToolCall(
                name=_text(get(fn, "name")),
                arguments=get(fn, "arguments") if keep_arguments else None,
                id=_text(get(tc, "id")),
            )
        )
    return out


def _message(m: Any) -> Message:
    return Message(
        role=str(get(m, "role") or "user"),
        content=_content(get(m, "content"), get(m, "images"), get(m, "thinking")),
        tool_calls=_tool_calls(get(m, "tool_calls")),
        tool_call_id=_text(get(m, "tool_call_id")),
        name=_text(get(m, "tool_name")),
    )


_converted: weakref.WeakKeyDictionary[Any, Mapping[str, Any]] = weakref.WeakKeyDictionary()


def _function_tool(function: Callable[..., Any]) -> Mapping[str, Any]:
    """A Python function given as a tool (ollama >= 0.4), described the way the SDK sends it."""
    try:
        cached = _converted.get(function)
    except TypeError:
        cached = None
    if cached is not None:
        return cached
    entry: dict[str, Any] = {"name": getattr(function, "__name__", None)}
    utils = sys.modules.get("ollama._utils")
    convert = getattr(utils, "convert_function_to_tool", None)
    if callable(convert):
        try:
            converted = get(convert(function), "function")
            entry = {k: get(converted, k) for k in ("name", "description", "parameters")}
        except Exception:  # the SDK will raise its own error for this tool; we only describe it
            pass
    if entry.get("description") is None:
        doc = inspect.getdoc(function)
        if doc:
            entry["description"] = doc.split("\n\n", 1)[0].strip()
    result = {k: v for k, v in entry.items() if v is not None}
    try:
        _converted[function] = result
    except TypeError:
        pass
    return result


def _tools(tools: Any) -> list[Mapping[str, Any]] | None:
    if not isinstance(tools, _SEQUENCES) or not tools:
        return None
    out: list[Mapping[str, Any]] = []
    for tool in tools:
        if callable(tool) and not isinstance(tool, Mapping) and get(tool, "function") is None:
            out.append(_function_tool(tool))
            continue
        fn = get(tool, "function") or tool
        out.append({k: get(fn, k) for k in ("name", "description", "parameters") if get(fn, k) is not None})
    return out


def chat_request(server: Server, a: Mapping[str, Any]) -> LLMCall:
    call = _new_call(sc.OP_CHAT, server, a, streams=True)
    _options(call, a.get("options"))
    call.output_type = _output_type(a.get("format"))
    messages = a.get("messages")
    if isinstance(messages, _SEQUENCES):
        call.input_messages = [_message(m) for m in messages]
    call.tool_definitions = _tools(a.get("tools"))
    return call


def generate_request(server: Server, a: Mapping[str, Any]) -> LLMCall:
    call = _new_call(sc.OP_TEXT_COMPLETION, server, a, streams=True)
    _options(call, a.get("options"))
    call.output_type = _output_type(a.get("format"))
    system = _text(a.get("system"))
    if system is not None:
        call.system_instructions = [system]
    content = _content(a.get("prompt"), a.get("images"))
    if content is not None:
        call.input_messages = [Message(role="user", content=content)]
    return call


def embed_request(server: Server, a: Mapping[str, Any]) -> LLMCall:
    call = _new_call(sc.OP_EMBEDDINGS, server, a, streams=False)
    _options(call, a.get("options"))
    text = a.get("input")
    items = [text] if isinstance(text, str) else list(text) if isinstance(text, _SEQUENCES) else []
    call.input_messages = [Message(role="user", content=i if isinstance(i, str) else str(i)) for i in items]
    return call


def embeddings_request(server: Server, a: Mapping[str, Any]) -> LLMCall:
    call = _new_call(sc.OP_EMBEDDINGS, server, a, streams=False)
    _options(call, a.get("options"))
    prompt = a.get("prompt")
    if isinstance(prompt, str):
        call.input_messages = [Message(role="user", content=prompt)]
    return call


# --- responses -------------------------------------------------------------------------------------


def _usage_and_timings(call: LLMCall, resp: Any) -> None:
    prompt = _int(get(resp, "prompt_eval_count"))  # absent when the whole prompt came from cache
    output = _int(get(resp, "eval_count"))
    if prompt is not None or output is not None:
        call.usage = Usage(input_tokens=prompt, output_tokens=output)
    for field, attribute in TIMINGS:
        nanos = _int(get(resp, field))
        if nanos is not None:
            call.response_attributes[attribute] = nanos / 1e9


def _response_model(call: LLMCall, resp: Any) -> None:
    call.response_model = _text(get(resp, "model"))


def chat_response(call: LLMCall, resp: Any) -> None:
    _response_model(call, resp)
    _usage_and_timings(call, resp)
    msg = get(resp, "message")
    reason = _text(get(resp, "done_reason"))
    if msg is None and reason is None:
        return
    call.choices = [
        Choice(
            role=str(get(msg, "role") or "assistant"),
            content=_text(get(msg, "content")),
            finish_reason=reason,
            tool_calls=_tool_calls(get(msg, "tool_calls")),
            reasoning=_text(get(msg, "thinking")),
        )
    ]


def generate_response(call: LLMCall, resp: Any) -> None:
    _response_model(call, resp)
    _usage_and_timings(call, resp)
    text = _text(get(resp, "response"))
    thinking = _text(get(resp, "thinking"))
    reason = _text(get(resp, "done_reason"))
    if text is not None or thinking is not None or reason is not None:
        call.choices = [Choice(content=text, finish_reason=reason, reasoning=thinking)]


def embed_response(call: LLMCall, resp: Any) -> None:
    _response_model(call, resp)
    _usage_and_timings(call, resp)
    vectors = get(resp, "embeddings")
    if isinstance(vectors, _SEQUENCES):
        call.embedding_count = len(vectors)
        if vectors and hasattr(vectors[0], "__len__"):
            call.embedding_vector_size = len(vectors[0])


def embeddings_response(call: LLMCall, resp: Any) -> None:
    vector = get(resp, "embedding")
    if isinstance(vector, _SEQUENCES):
        call.embedding_count = 1
        call.embedding_vector_size = len(vector)


class _Text:
    """Text fragments of one stream, kept up to ``limit`` characters."""

    __slots__ = ("limit", "parts", "size")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0

    def add(self, fragment: Any) -> None:
        if isinstance(fragment, str) and fragment and self.size < self.limit:
            self.parts.append(fragment)
            self.size += len(fragment)

    def value(self) -> str | None:
        return "".join(self.parts) if self.parts else None


class Stream:
    """Accumulates the chunks of a ``chat`` or ``generate`` stream; cheap per chunk.

    Text and tool arguments are kept only when content is captured, and then at most ``limit``
    characters each (the content policy cuts at its max length anyway; the margin keeps redaction
    and credential masking working on whole words at the cut).
    """

    __slots__ = ("final", "model", "reasoning", "role", "text", "tool_calls", "with_text")

    def __init__(self, keep_text: bool, limit: int) -> None:
        self.with_text = keep_text
        self.model: str | None = None
        self.role: str | None = None
        self.text = _Text(limit)
        self.reasoning = _Text(limit)
        self.tool_calls: list[ToolCall] = []
        self.final: Any = None

    def on_chunk(self, chunk: Any) -> None:
        if type(chunk) is dict:  # the oldest SDKs hand out plain dicts
            self._on_mapping(chunk)
            return
        # The SDK's pydantic models (0.4 on), read attribute by attribute: per chunk, so no
        # helper calls, and each field once (a read costs ~450 instructions on these models).
        if self.model is None:
            self.model = _text(getattr(chunk, "model", None))
        msg = getattr(chunk, "message", None)
        source = chunk if msg is None else msg  # generate: top-level fields; chat: the message
        if msg is not None and self.role is None:
            self.role = _text(getattr(msg, "role", None))
        if self.with_text:
            text = getattr(source, "response" if msg is None else "content", None)
            if text:
                self.text.add(text)
            thinking = getattr(source, "thinking", None)
            if thinking:
                self.reasoning.add(thinking)
        if msg is not None:
            calls = getattr(msg, "tool_calls", None)
            if calls:
                self._add_tool_calls(calls)
        if getattr(chunk, "done", None) is True:
            self.final = chunk

    def _on_mapping(self, chunk: Any) -> None:
        if self.model is None:
            self.model = _text(get(chunk, "model"))
        msg = get(chunk, "message")
        source = chunk if msg is None else msg
        if msg is not None and self.role is None:
            self.role = _text(get(msg, "role"))
        if self.with_text:
            self.text.add(get(source, "response" if msg is None else "content"))
            self.reasoning.add(get(source, "thinking"))
        if msg is not None:
            self._add_tool_calls(get(msg, "tool_calls"))
        if get(chunk, "done") is True:
            self.final = chunk

    def _add_tool_calls(self, items: Any) -> None:
        calls = _tool_calls(items, self.with_text)
        if calls and len(self.tool_calls) < MAX_STREAM_TOOL_CALLS:
            self.tool_calls.extend(calls[: MAX_STREAM_TOOL_CALLS - len(self.tool_calls)])

    def fill(self, call: LLMCall) -> None:
        call.response_model = self.model
        reason = None
        if self.final is not None:
            _usage_and_timings(call, self.final)
            reason = _text(get(self.final, "done_reason"))
        text, reasoning = self.text.value(), self.reasoning.value()
        if text is None and reasoning is None and not self.tool_calls and self.final is None:
            return  # nothing arrived (e.g. the stream failed before its first chunk)
        call.choices = [
            Choice(
                role=self.role or "assistant",
                content=text,
                finish_reason=reason,
                tool_calls=list(self.tool_calls) or None,
                reasoning=reasoning,
            )
        ]
