"""Stream accumulators: ConverseStream events and InvokeModelWithResponseStream chunks, per family.

Cheap per event; text is kept only when content is captured."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from ..._core import safe_json as _json
from ..._core.record import LLMCall, ToolCall
from ._content import choice_of, cohere_tool_calls
from ._fields import as_int, as_list, as_map, as_str, first_of
from ._guardrails import GuardrailSignals, apply_guardrail
from ._models import (
    ANTHROPIC,
    ANTHROPIC_TEXT,
    COHERE,
    COHERE_CHAT,
    META,
    MISTRAL,
    NOVA,
    OPENAI_CHAT,
    OPENAI_TEXT,
    TITAN,
    resolve_model,
    sniff_chunk,
)
from ._plan import Plan, finish_common
from ._tokens import Tokens, anthropic_tokens, converse_tokens, metrics_tokens


class StreamState:
    """What a stream said so far; cheap per event, text kept only when content is captured."""

    __slots__ = (
        "body_tokens",
        "finish",
        "guard",
        "keep_text",
        "metric_tokens",
        "reasoning",
        "response_id",
        "response_model",
        "role",
        "texts",
        "tools",
    )

    def __init__(self, keep_text: bool) -> None:
        self.keep_text = keep_text
        self.texts: dict[int, list[str]] = {}  # choice index -> text deltas
        self.finish: dict[int, str] = {}
        self.tools: dict[int, list[Any]] = {}  # tool index -> [id, name, [argument fragments]]
        self.reasoning: list[str] = []
        self.role = "assistant"
        self.response_id: str | None = None
        self.response_model: str | None = None
        self.body_tokens = Tokens()  # from the model's own usage fields
        self.metric_tokens = Tokens()  # from Bedrock's invocation metrics / Converse metadata
        self.guard = GuardrailSignals()

    def text(self, delta: Any, index: int = 0) -> None:
        if isinstance(delta, str) and delta:
            parts = self.texts.get(index)
            if parts is None:
                parts = self.texts[index] = []
            if self.keep_text:
                parts.append(delta)

    def stop(self, reason: Any, index: int = 0) -> None:
        if isinstance(reason, str) and reason:
            self.finish[index] = reason

    def tool_start(self, index: int, tool_id: Any, name: Any) -> None:
        entry = self.tools.get(index)
        if entry is None:
            entry = self.tools[index] = [None, None, []]
        entry[0] = as_str(tool_id) or entry[0]
        entry[1] = as_str(name) or entry[1]

    def tool_arguments(self, index: int, fragment: Any) -> None:
        entry = self.tools.get(index)
        if entry is None:
            entry = self.tools[index] = [None, None, []]
        if self.keep_text and isinstance(fragment, str) and fragment:
            entry[2].append(fragment)

    def think(self, delta: Any) -> None:
        if self.keep_text and isinstance(delta, str) and delta:
            self.reasoning.append(delta)

    def fill(self, call: LLMCall, plan: Plan, result: Any) -> None:
        calls = [
            ToolCall(id=e[0], name=e[1], arguments="".join(e[2]) if e[2] else None)
            for _, e in sorted(self.tools.items())
        ]
        indexes = sorted(set(self.texts) | set(self.finish) | ({0} if calls or self.reasoning else set()))
        for index in indexes:
            choice = choice_of(
                self.texts.get(index, []),
                self.finish.get(index),
                calls if index == 0 else None,
                self.reasoning if index == 0 else None,
                index,
            )
            choice.role = self.role
            call.choices.append(choice)
        call.response_id = self.response_id
        call.response_model = self.response_model
        call.usage = self.metric_tokens.merge(self.body_tokens).usage()
        apply_guardrail(call, self.guard)
        finish_common(call, plan, result)

    def converse_event(self, event: Any) -> None:
        """A ConverseStream event (also Nova's InvokeModel stream chunks): messageStart,
        contentBlockStart/Delta/Stop, messageStop, metadata."""
        e = as_map(event)
        delta_event = e.get("contentBlockDelta")
        if delta_event is not None:
            d = as_map(delta_event)
            index = as_int(d.get("contentBlockIndex")) or 0
            delta = as_map(d.get("delta"))
            if "text" in delta:
                self.text(delta["text"])
            elif "toolUse" in delta:
                self.tool_arguments(index, as_map(delta["toolUse"]).get("input"))
            elif "reasoningContent" in delta:
                self.think(as_map(delta["reasoningContent"]).get("text"))
            return
        start = as_map(as_map(e.get("contentBlockStart")).get("start"))
        if start:
            use = as_map(start.get("toolUse"))
            if use:
                index = as_int(as_map(e["contentBlockStart"]).get("contentBlockIndex")) or 0
                self.tool_start(index, use.get("toolUseId"), use.get("name"))
            return
        if "messageStart" in e:
            role = as_map(e["messageStart"]).get("role")
            self.role = role if isinstance(role, str) and role else self.role
        elif "messageStop" in e:
            reason = as_map(e["messageStop"]).get("stopReason")
            self.stop(reason)
            self.guard.stop_reason = as_str(reason)
        elif "metadata" in e:
            metadata = as_map(e["metadata"])
            self.metric_tokens = converse_tokens(as_map(metadata.get("usage")))
            trace = as_map(metadata.get("trace"))
            guard = as_map(trace.get("guardrail"))
            if guard:
                self.guard.trace = guard
            invoked = as_map(trace.get("promptRouter")).get("invokedModelId")
            if isinstance(invoked, str) and invoked:
                self.response_model = resolve_model(invoked).model

    def on_event(self, event: Any) -> None:
        # Most of a stream is text deltas: read those without a helper call per event (per
        # chunk, so every Python call counts); everything else goes through converse_event.
        if type(event) is dict:
            block = event.get("contentBlockDelta")
            if type(block) is dict:
                delta = block.get("delta")
                if type(delta) is dict:
                    text = delta.get("text")
                    if type(text) is str:
                        if text:  # as text(): choice 0, kept when content is
                            parts = self.texts.get(0)
                            if parts is None:
                                parts = self.texts[0] = []
                            if self.keep_text:
                                parts.append(text)
                        return
        self.converse_event(event)


class ConverseStream(StreamState):
    """ConverseStream: botocore already parsed the events."""

    __slots__ = ()


class InvokeStream(StreamState):
    """InvokeModelWithResponseStream: each ``chunk`` event carries one JSON chunk of the model."""

    __slots__ = ("family",)

    def __init__(self, family: str, keep_text: bool) -> None:
        super().__init__(keep_text)
        self.family = family

    def on_event(self, event: Any) -> None:
        raw = as_map(as_map(event).get("chunk")).get("bytes")
        if not isinstance(raw, (bytes, bytearray, str)):
            return
        chunk = as_map(_json.loads(raw))
        if not chunk:
            return
        metrics = chunk.get("amazon-bedrock-invocationMetrics")
        if metrics is not None:
            self.metric_tokens = metrics_tokens(as_map(metrics))
        self.guard.note_action(chunk.get("amazon-bedrock-guardrailAction"))
        trace = as_map(as_map(chunk.get("amazon-bedrock-trace")).get("guardrail"))
        if trace:
            self.guard.trace = trace
        if self.family not in _STREAM_READERS:
            self.family = sniff_chunk(chunk)
        reader = _STREAM_READERS.get(self.family)
        if reader is not None:
            reader(self, chunk)


def _chunk_anthropic(s: StreamState, c: Mapping[str, Any]) -> None:
    kind = c.get("type")
    if kind == "content_block_delta":
        index = as_int(c.get("index")) or 0
        delta = as_map(c.get("delta"))
        dtype = delta.get("type")
        if dtype == "text_delta":
            s.text(delta.get("text"))
        elif dtype == "input_json_delta":
            s.tool_arguments(index, delta.get("partial_json"))
        elif dtype == "thinking_delta":
            s.think(delta.get("thinking"))
    elif kind == "content_block_start":
        block = as_map(c.get("content_block"))
        if block.get("type") == "tool_use":
            s.tool_start(as_int(c.get("index")) or 0, block.get("id"), block.get("name"))
    elif kind == "message_start":
        message = as_map(c.get("message"))
        s.response_id = as_str(message.get("id"))
        s.response_model = as_str(message.get("model"))
        s.body_tokens = anthropic_tokens(as_map(message.get("usage"))).merge(s.body_tokens)
        s.body_tokens.output = None  # message_start reports a placeholder output count
    elif kind == "message_delta":
        s.stop(as_map(c.get("delta")).get("stop_reason"))
        output = as_int(as_map(c.get("usage")).get("output_tokens"))
        if output is not None:
            s.body_tokens.output = output


def _chunk_anthropic_text(s: StreamState, c: Mapping[str, Any]) -> None:
    s.text(c.get("completion"))
    s.stop(c.get("stop_reason"))


def _chunk_titan(s: StreamState, c: Mapping[str, Any]) -> None:
    index = as_int(c.get("index")) or 0
    s.text(c.get("outputText"), index)
    s.stop(c.get("completionReason"), index)
    if c.get("inputTextTokenCount") is not None:
        s.body_tokens.input = as_int(c.get("inputTextTokenCount"))
    if c.get("totalOutputTextTokenCount") is not None:
        s.body_tokens.output = as_int(c.get("totalOutputTextTokenCount"))


def _chunk_nova(s: StreamState, c: Mapping[str, Any]) -> None:
    if "metadata" in c:  # Nova's own usage; Bedrock's invocation metrics are kept apart
        s.body_tokens = converse_tokens(as_map(as_map(c["metadata"]).get("usage")))
        return
    s.converse_event(c)  # otherwise the same events as ConverseStream, as JSON chunks


def _chunk_meta(s: StreamState, c: Mapping[str, Any]) -> None:
    s.text(c.get("generation"))
    s.stop(c.get("stop_reason"))
    if c.get("prompt_token_count") is not None:
        s.body_tokens.input = as_int(c.get("prompt_token_count"))
    if c.get("generation_token_count") is not None:
        s.body_tokens.output = as_int(c.get("generation_token_count"))


def _chunk_cohere(s: StreamState, c: Mapping[str, Any]) -> None:
    if "generations" in c:  # whole generations in one chunk
        for index, item in enumerate(as_list(c.get("generations"))):
            g = as_map(item)
            s.text(g.get("text"), index)
            s.stop(g.get("finish_reason"), index)
        return
    if not c.get("is_finished"):
        s.text(c.get("text"), as_int(c.get("index")) or 0)
        return
    s.stop(c.get("finish_reason"), as_int(c.get("index")) or 0)
    response = as_map(c.get("response"))
    s.response_id = as_str(response.get("id")) or s.response_id


def _chunk_cohere_chat(s: StreamState, c: Mapping[str, Any]) -> None:
    kind = c.get("event_type")
    if kind == "text-generation":
        s.text(c.get("text"))
    elif kind == "tool-calls-generation":
        for position, tc in enumerate(cohere_tool_calls(c.get("tool_calls"))):
            s.tool_start(position, None, tc.name)
            if tc.arguments is not None:
                s.tool_arguments(position, _json.dumps(tc.arguments))
    elif kind == "stream-end" or c.get("is_finished"):
        s.stop(c.get("finish_reason"))
        response = as_map(c.get("response"))
        s.response_id = as_str(first_of(response, "response_id", "generation_id")) or s.response_id
        if not s.tools:
            for position, tc in enumerate(cohere_tool_calls(response.get("tool_calls"))):
                s.tool_start(position, None, tc.name)
                if tc.arguments is not None:
                    s.tool_arguments(position, _json.dumps(tc.arguments))
        billed = as_map(as_map(response.get("meta")).get("billed_units"))
        s.body_tokens = Tokens(as_int(billed.get("input_tokens")), as_int(billed.get("output_tokens")))


def _chunk_mistral(s: StreamState, c: Mapping[str, Any]) -> None:
    for index, item in enumerate(as_list(c.get("outputs"))):
        o = as_map(item)
        s.text(o.get("text"), index)
        s.stop(o.get("stop_reason"), index)


def _chunk_openai(s: StreamState, c: Mapping[str, Any]) -> None:
    s.response_id = s.response_id or as_str(c.get("id"))
    s.response_model = s.response_model or as_str(c.get("model"))
    for position, item in enumerate(as_list(c.get("choices"))):
        ch = as_map(item)
        index = as_int(ch.get("index"))
        index = position if index is None else index
        delta = as_map(ch.get("delta")) or as_map(ch.get("message"))
        s.text(delta.get("content") if delta else ch.get("text"), index)
        if isinstance(delta.get("role"), str) and delta["role"]:
            s.role = delta["role"]
        for fallback, tc in enumerate(as_list(delta.get("tool_calls"))):
            t = as_map(tc)
            slot = as_int(t.get("index"))
            slot = fallback if slot is None else slot
            fn = as_map(t.get("function"))
            s.tool_start(slot, t.get("id"), fn.get("name"))
            s.tool_arguments(slot, fn.get("arguments"))
        s.stop(first_of(ch, "finish_reason", "stop_reason"), index)
    u = as_map(c.get("usage"))
    if u:
        s.body_tokens = Tokens(as_int(u.get("prompt_tokens")), as_int(u.get("completion_tokens")))


_STREAM_READERS: Final[dict[str, Callable[[StreamState, Mapping[str, Any]], None]]] = {
    ANTHROPIC: _chunk_anthropic,
    ANTHROPIC_TEXT: _chunk_anthropic_text,
    TITAN: _chunk_titan,
    NOVA: _chunk_nova,
    META: _chunk_meta,
    COHERE: _chunk_cohere,
    COHERE_CHAT: _chunk_cohere_chat,
    MISTRAL: _chunk_mistral,
    OPENAI_CHAT: _chunk_openai,
    OPENAI_TEXT: _chunk_openai,
}
