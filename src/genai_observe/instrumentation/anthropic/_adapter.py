"""Reads the ``anthropic`` SDK's requests and responses into the neutral :class:`LLMCall`.

Nothing here imports ``anthropic`` or ``httpx``/``httpx2``: objects are read by attribute or key,
so the same code serves anthropic 0.30 to 2.x, request dicts as well as the SDK's pydantic models,
and the Bedrock / Vertex clients (they use the same resource classes and the same message shapes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..._core import semconv as sc
from ..._core.record import Choice, LLMCall, Message, ToolCall, Usage, token_count
from .._kit.endpoints import PerClient, host_port
from .._kit.read import get, safe_content

# Blocks of a response that are tool calls: the client's own tools and the ones Anthropic runs
# itself (web search, code execution, ...), which arrive as ``server_tool_use``.
_TOOL_USE = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})
# Base64 payloads never leave the process (same rule as _content.py for data URLs).
_OMITTED = "<omitted>"


def _number(value: Any) -> Any:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# --- the client: server address and port ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientInfo:
    address: str | None
    port: int | None


def _client_info(client: Any) -> ClientInfo:
    """Host and port of the client's base URL (Anthropic, Bedrock, Vertex, or a proxy in front)."""
    raw = getattr(client, "base_url", None)
    # str() works for httpx.URL and httpx2.URL alike; neither is imported here.
    host, port = host_port(str(raw) if raw is not None else "")
    return ClientInfo(host, port if host else None)


client_info: PerClient[ClientInfo] = PerClient(_client_info)
_client_cache = client_info  # what the long-run test counts


def request_body(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The request as it is sent: the method's arguments with ``extra_body`` merged over them."""
    body = dict(kwargs)
    extra = kwargs.get("extra_body")
    if isinstance(extra, Mapping):
        body.update(extra)
    return body


def _new_call(operation: str, info: ClientInfo, body: Mapping[str, Any], stream: bool) -> LLMCall:
    model = get(body, "model")
    call = LLMCall(
        operation=operation,
        provider=sc.PROVIDER_ANTHROPIC,
        request_model=str(model) if model is not None else None,
        server_address=info.address,
        server_port=info.port,
        stream=stream,
    )
    call.temperature = _number(get(body, "temperature"))
    call.top_p = _number(get(body, "top_p"))
    call.top_k = _number(get(body, "top_k"))
    stop = get(body, "stop_sequences")
    if isinstance(stop, str):
        call.stop_sequences = [stop]
    elif isinstance(stop, (list, tuple)):
        call.stop_sequences = [s for s in stop if isinstance(s, str)]
    return call


# --- content blocks -------------------------------------------------------------------------------


def _as_dict(block: Any) -> dict[str, Any]:
    if isinstance(block, Mapping):
        return dict(block)
    dump = getattr(block, "model_dump", None)
    if callable(dump):
        try:
            dumped = dump(exclude_none=True)
            if isinstance(dumped, dict):
                return dumped
        except Exception:
            pass
    kind = get(block, "type")
    return {"type": str(kind)} if kind is not None else {}


def _media_block(kind: str, block: Any) -> dict[str, Any]:
    """Images and documents in the v1.41.0 part shapes: a URI, or a blob whose bytes are omitted."""
    source = get(block, "source")
    source_type = get(source, "type")
    modality = "image" if kind == "image" else "document"
    if source_type == "url" and isinstance(get(source, "url"), str):
        return {"type": "uri", "modality": modality, "uri": get(source, "url")}
    if source_type == "base64":
        part: dict[str, Any] = {"type": "blob", "modality": modality, "content": _OMITTED}
        if isinstance(get(source, "media_type"), str):
            part["mime_type"] = get(source, "media_type")
        return part
    if source_type == "file" and isinstance(get(source, "file_id"), str):
        return {"type": "file", "modality": modality, "file_id": get(source, "file_id")}
    # Text and content-block documents are text the caller sent: kept, minus the cache marker.
    out = _as_dict(block)
    out.pop("cache_control", None)
    return out


def _input_block(block: Any) -> dict[str, Any]:
    kind = get(block, "type")
    if kind == "text":
        return {"type": "text", "text": get(block, "text", "")}
    if kind in ("image", "document"):
        return _media_block(str(kind), block)
    if kind == "thinking":
        return {"type": "thinking", "thinking": get(block, "thinking", "")}  # never the signature
    if kind == "redacted_thinking":
        return {"type": "redacted_thinking"}  # encrypted: nothing readable to keep
    out = _as_dict(block)
    out.pop("cache_control", None)
    return out


def _plain(blocks: list[dict[str, Any]]) -> Any:
    """One text block is plain text (readable in the flat attributes); anything else stays a list."""
    if len(blocks) == 1 and blocks[0].get("type") == "text" and isinstance(blocks[0].get("text"), str):
        return blocks[0]["text"]
    return blocks


def _tool_result_content(content: Any) -> Any:
    if isinstance(content, (list, tuple)):
        return _plain([_input_block(b) for b in content])
    return safe_content(content)


def input_messages(messages: Any) -> list[Message]:
    """Anthropic messages as neutral messages.

    ``tool_use`` blocks become the assistant message's tool calls; each ``tool_result`` block becomes
    a ``tool`` message (first, as the API requires them to lead the user turn), the rest of the user
    turn follows as one message.
    """
    out: list[Message] = []
    if not isinstance(messages, (list, tuple)):
        # The SDK accepts any iterable; reading a one-shot one (a generator) here would leave the
        # SDK nothing to send, so such messages are not recorded.
        return out
    for m in messages:
        role = str(get(m, "role") or "user")
        content = get(m, "content")
        if not isinstance(content, (list, tuple)):
            out.append(Message(role=role, content=safe_content(content)))
            continue
        blocks: list[dict[str, Any]] = []
        tool_calls: list[ToolCall] = []
        for block in content:
            kind = get(block, "type")
            if kind == "tool_result":
                out.append(
                    Message(
                        role="tool",
                        content=_tool_result_content(get(block, "content")),
                        tool_call_id=get(block, "tool_use_id"),
                    )
                )
            elif kind in _TOOL_USE:
                tool_calls.append(
                    ToolCall(name=get(block, "name"), arguments=get(block, "input"), id=get(block, "id"))
                )
            else:
                blocks.append(_input_block(block))
        if blocks or tool_calls:
            out.append(
                Message(role=role, content=_plain(blocks) if blocks else None, tool_calls=tool_calls or None)
            )
    return out


def system_instructions(system: Any) -> list[Any] | None:
    if isinstance(system, str):
        return [system] if system else None
    if isinstance(system, (list, tuple)):
        items: list[Any] = []
        for block in system:
            if get(block, "type") == "text" and isinstance(get(block, "text"), str):
                items.append(get(block, "text"))
            elif block is not None:
                items.append(_input_block(block))
        return items or None
    return None


def tool_definitions(tools: Any) -> list[Mapping[str, Any]] | None:
    if not isinstance(tools, (list, tuple)):
        return None
    out: list[Mapping[str, Any]] = []
    for tool in tools:
        definition: dict[str, Any] = {}
        kind = get(tool, "type")
        if isinstance(kind, str) and kind != "custom":
            definition["type"] = kind  # a server tool such as web_search_20250305
        for key, target in (("name", "name"), ("description", "description"), ("input_schema", "parameters")):
            value = get(tool, key)
            if value is not None:
                definition[target] = value
        if definition:
            out.append(definition)
    return out or None


def _output_type(body: Mapping[str, Any]) -> str | None:
    fmt = get(body, "output_format")
    if isinstance(fmt, type):  # messages.parse / stream(output_format=SomeModel)
        return "json"
    if get(fmt, "type") == "json_schema":
        return "json"
    if get(get(get(body, "output_config"), "format"), "type") == "json_schema":
        return "json"
    return None


# --- messages ----------------------------------------------------------------------------------


def messages_request(info: ClientInfo, kwargs: Mapping[str, Any], stream: bool | None = None) -> LLMCall:
    body = request_body(kwargs)
    # The SDK's own ``stream`` argument decides what it returns, so it alone decides ours.
    streamed = bool(get(kwargs, "stream", False)) if stream is None else stream
    call = _new_call(sc.OP_CHAT, info, body, streamed)
    call.max_tokens = _int(get(body, "max_tokens"))
    call.output_type = _output_type(body)
    call.system_instructions = system_instructions(get(body, "system"))
    call.input_messages = input_messages(get(body, "messages") or ())
    call.tool_definitions = tool_definitions(get(body, "tools"))
    return call


def usage(u: Any, *, output: bool = True) -> Usage | None:
    """v1.41.0 usage: input tokens include the cache reads and writes Anthropic reports apart."""
    if u is None:
        return None
    # Checked before adding up: a bogus count must not hide inside a plausible sum.
    fresh = token_count(get(u, "input_tokens"))
    read = token_count(get(u, "cache_read_input_tokens"))
    created = token_count(get(u, "cache_creation_input_tokens"))
    total_input: int | None = None
    if fresh is not None:  # without it the sum would be a guess, not the input count
        total_input = fresh + (read or 0) + (created or 0)
    details = get(u, "output_tokens_details")
    return Usage(
        input_tokens=total_input,
        output_tokens=_int(get(u, "output_tokens")) if output else None,
        cache_read_input_tokens=read,
        cache_creation_input_tokens=created,
        reasoning_output_tokens=_int(get(details, "thinking_tokens")) if output else None,
    )


def message_response(call: LLMCall, resp: Any) -> None:
    call.response_id = get(resp, "id")
    call.response_model = get(resp, "model") or None
    texts: list[str] = []
    thinking: list[str] = []
    tool_calls: list[ToolCall] = []
    for block in get(resp, "content") or ():
        kind = get(block, "type")
        if kind == "text":
            text = get(block, "text")
            if isinstance(text, str):
                texts.append(text)
        elif kind == "thinking":
            text = get(block, "thinking")
            if isinstance(text, str) and text:
                thinking.append(text)
        elif kind in _TOOL_USE:
            tool_calls.append(
                ToolCall(name=get(block, "name"), arguments=get(block, "input"), id=get(block, "id"))
            )
    finish = get(resp, "stop_reason")
    if texts or thinking or tool_calls or finish:
        call.choices = [
            Choice(
                role=str(get(resp, "role") or "assistant"),
                content="".join(texts) if texts else None,
                finish_reason=str(finish) if finish else None,
                tool_calls=tool_calls or None,
                reasoning="\n".join(thinking) if thinking else None,
            )
        ]
    u = usage(get(resp, "usage"))
    if u is not None:
        call.usage = u


class _Block:
    __slots__ = ("arguments", "id", "initial", "kind", "name", "parts")

    def __init__(self, kind: str, block: Any) -> None:
        self.kind = kind
        self.parts: list[str] = []
        self.id: str | None = get(block, "id")
        self.name: str | None = get(block, "name")
        self.initial: Any = get(block, "input")
        self.arguments: list[str] = []


class MessageStreamAccumulator:
    """Accumulates Messages stream events: raw ones from ``create(stream=True)`` and the richer ones
    ``messages.stream()`` yields (its extra ``text``/``input_json``/... events are ignored, so no
    text is counted twice). Cheap per event; text is kept only when content is captured.

    Usage: the input side comes from ``message_start``, the output side from ``message_delta``
    (cumulative; a stream cut before it reports no output tokens rather than the placeholder).
    """

    __slots__ = ("_keep_text", "blocks", "delta_usage", "finish", "snapshot", "start", "start_usage")

    def __init__(self, keep_text: bool) -> None:
        self._keep_text = keep_text
        self.start: Any = None
        self.start_usage: Any = None
        self.delta_usage: dict[str, Any] | None = None
        self.finish: str | None = None
        self.blocks: dict[int, _Block] = {}
        # Set for stream helpers: the SDK's own accumulated message, read only if our events never
        # saw the stream (consumed by a helper that bypasses the proxy).
        self.snapshot: Callable[[], Any] | None = None

    def on_chunk(self, event: Any) -> None:
        kind = getattr(event, "type", None)
        if kind == "content_block_delta":
            state = self.blocks.get(getattr(event, "index", 0) or 0)
            if state is None or not self._keep_text:
                return
            delta = event.delta
            delta_type = getattr(delta, "type", None)
            if delta_type == "text_delta":
                state.parts.append(delta.text)
            elif delta_type == "thinking_delta":
                state.parts.append(delta.thinking)
            elif delta_type == "input_json_delta":
                state.arguments.append(delta.partial_json)
        elif kind == "content_block_start":
            block = event.content_block
            block_type = str(getattr(block, "type", None))
            state = _Block(block_type, block)
            if self._keep_text:
                text = getattr(block, "text", None) if block_type == "text" else None
                if block_type == "thinking":
                    text = getattr(block, "thinking", None)
                if text:
                    state.parts.append(text)
            self.blocks[getattr(event, "index", 0) or 0] = state
        elif kind == "message_start":
            self.start = event.message
            self.start_usage = getattr(event.message, "usage", None)
        elif kind == "message_delta":
            delta = getattr(event, "delta", None)
            reason = getattr(delta, "stop_reason", None)
            if reason:
                self.finish = reason
            u = getattr(event, "usage", None)
            if u is not None:
                merged = self.delta_usage if self.delta_usage is not None else {}
                for key in (
                    "output_tokens",
                    "input_tokens",
                    "cache_read_input_tokens",
                    "cache_creation_input_tokens",
                    "output_tokens_details",
                ):
                    value = getattr(u, key, None)
                    if value is not None:
                        merged[key] = value
                self.delta_usage = merged

    def fill(self, call: LLMCall) -> None:
        if self.start is None:
            self._fill_from_snapshot(call)
            return
        call.response_id = get(self.start, "id")
        call.response_model = get(self.start, "model") or None
        texts: list[str] = []
        thinking: list[str] = []
        tool_calls: list[ToolCall] = []
        for index in sorted(self.blocks):
            state = self.blocks[index]
            if state.kind == "text" and state.parts:
                texts.append("".join(state.parts))
            elif state.kind == "thinking" and state.parts:
                thinking.append("".join(state.parts))
            elif state.kind in _TOOL_USE:
                arguments: Any = "".join(state.arguments)
                if not arguments:  # no input_json_delta: the tool takes no input ({} at the start)
                    arguments = state.initial if self._keep_text else None
                tool_calls.append(ToolCall(name=state.name, arguments=arguments, id=state.id))
        if texts or thinking or tool_calls or self.finish:
            call.choices = [
                Choice(
                    role=str(get(self.start, "role") or "assistant"),
                    content="".join(texts) if texts else None,
                    finish_reason=self.finish,
                    tool_calls=tool_calls or None,
                    reasoning="\n".join(thinking) if thinking else None,
                )
            ]
        start_usage = self.start_usage
        if self.delta_usage is None:
            call.usage = usage(start_usage, output=False)
            return
        merged: dict[str, Any] = {
            key: get(start_usage, key)
            for key in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
        }
        merged.update(self.delta_usage)
        call.usage = usage(merged)

    def _fill_from_snapshot(self, call: LLMCall) -> None:
        reader = self.snapshot
        if reader is None:
            return
        try:
            message = reader()
        except Exception:  # the helper has no message yet (its property asserts)
            return
        if message is not None:
            message_response(call, message)


# --- legacy text completions (/v1/complete) ----------------------------------------------------


def completion_request(info: ClientInfo, kwargs: Mapping[str, Any]) -> LLMCall:
    body = request_body(kwargs)
    call = _new_call(sc.OP_TEXT_COMPLETION, info, body, bool(get(kwargs, "stream", False)))
    call.max_tokens = _int(get(body, "max_tokens_to_sample"))
    prompt = get(body, "prompt")
    if isinstance(prompt, str):
        call.input_messages = [Message(role="user", content=prompt)]
    return call


def completion_response(call: LLMCall, resp: Any) -> None:
    call.response_id = get(resp, "id") or get(resp, "log_id")
    call.response_model = get(resp, "model") or None
    text = get(resp, "completion")
    finish = get(resp, "stop_reason")
    if text is not None or finish:
        call.choices = [Choice(content=text, finish_reason=finish)]


class CompletionStreamAccumulator:
    __slots__ = ("_keep_text", "finish", "first", "parts")

    def __init__(self, keep_text: bool) -> None:
        self._keep_text = keep_text
        self.first: Any = None
        self.finish: str | None = None
        self.parts: list[str] = []

    def on_chunk(self, event: Any) -> None:
        if self.first is None:
            self.first = event
        if self._keep_text:
            text = getattr(event, "completion", None)
            if text:
                self.parts.append(text)
        reason = getattr(event, "stop_reason", None)
        if reason:
            self.finish = reason

    def fill(self, call: LLMCall) -> None:
        if self.first is not None:
            call.response_id = get(self.first, "id") or get(self.first, "log_id")
            call.response_model = get(self.first, "model") or None
        if self.parts or self.finish:
            call.choices = [
                Choice(content="".join(self.parts) if self.parts else None, finish_reason=self.finish)
            ]
