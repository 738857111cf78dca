"""The real ``anthropic`` SDK over real HTTP against the local Anthropic server (tests/rig)."""

from __future__ import annotations

import gc
import importlib
import inspect
import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import pydantic
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

import genai_observe
from genai_observe import CaptureMode, Profile
from genai_observe._core import semconv as sc
from genai_observe._core.record import LLMCall
from genai_observe.instrumentation.anthropic import AnthropicInstrumentor
from genai_observe.instrumentation.anthropic import _adapter as ad
from tests.conftest import Telemetry, attrs
from tests.rig import fixtures_anthropic
from tests.rig.anthropic_server import DEFAULT_USAGE, AnthropicMockServer, ToolUse, default_text
from tests.rig.otlp_receiver import OTLPReceiver

MODEL = "claude-test"
MESSAGES = [{"role": "user", "content": "Say hi"}]
SYSTEM = "Be brief."
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
SDK_SCOPE = "com.anthropic.sdk.python"  # the instrumentation scope of the SDK's own spans

anthropic_server = fixtures_anthropic.anthropic_server
anthropic_server_session = fixtures_anthropic.anthropic_server_session


def _exists(module: str, path: str = "") -> bool:
    try:
        target: Any = importlib.import_module(module)
    except ImportError:
        return False
    for part in filter(None, path.split(".")):
        target = getattr(target, part, None)
        if target is None:
            return False
    return True


def _accepts(module: str, path: str, name: str) -> bool:
    if not _exists(module, path):
        return False
    target: Any = importlib.import_module(module)
    for part in path.split("."):
        target = getattr(target, part)
    return name in inspect.signature(target).parameters


# What this SDK version has; tests of what it lacks skip (the oldest supported release is 0.30).
HAS_BETA = _exists("anthropic.resources.beta.messages", "Messages.create")
HAS_BETA_STREAM = _exists("anthropic.resources.beta.messages", "Messages.stream")
HAS_PROMPT_CACHING_BETA = _exists("anthropic.resources.beta.prompt_caching.messages", "Messages.create")
HAS_PARSE = _exists("anthropic.resources.messages", "Messages.parse")
HAS_COMPLETIONS = _exists("anthropic.resources.completions", "Completions.create")
HAS_NATIVE_TRACING = _exists("anthropic._base_client", "start_api_call_span")
HAS_THINKING = _accepts("anthropic.resources.messages", "Messages.create", "thinking")
HAS_BOTOCORE = _exists("botocore")
needs_beta = pytest.mark.skipif(
    not HAS_BETA_STREAM, reason="this anthropic has no client.beta.messages.stream"
)
needs_parse = pytest.mark.skipif(not HAS_PARSE, reason="this anthropic has no messages.parse")
needs_completions = pytest.mark.skipif(not HAS_COMPLETIONS, reason="this anthropic has no completions")
needs_native = pytest.mark.skipif(not HAS_NATIVE_TRACING, reason="this anthropic has no native tracing")
needs_botocore = pytest.mark.skipif(not HAS_BOTOCORE, reason="AnthropicBedrock needs botocore")


def params(**values: Any) -> dict[str, Any]:
    """Request fields as ``messages.create`` arguments where this SDK has them, else in ``extra_body``
    (the request on the wire is the same; anthropic 2.x dropped the sampling arguments)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if _accepts("anthropic.resources.messages", "Messages.create", key):
            out[key] = value
        else:
            out.setdefault("extra_body", {})[key] = value
    return out


def thinking_kwargs(budget: int = 1024) -> dict[str, Any]:
    return params(thinking={"type": "enabled", "budget_tokens": budget})


@pytest.fixture
def instrument(telemetry: Telemetry) -> Iterator[Callable[..., AnthropicInstrumentor]]:
    """Instrument with given options; undone after the test."""
    with telemetry.instrumenting(AnthropicInstrumentor()) as apply:
        yield apply


def ours(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [
        s
        for s in spans
        if s.instrumentation_scope is not None and s.instrumentation_scope.name == "genai_observe"
    ]


def all_text(span: ReadableSpan) -> str:
    return json.dumps({k: str(v) for k, v in (span.attributes or {}).items()})


# --- plain calls -----------------------------------------------------------------------------------


def test_create_dynatrace_profile(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = anthropic_server.client()
    result = client.messages.create(
        model=MODEL,
        max_tokens=50,
        system=SYSTEM,
        messages=MESSAGES,
        stop_sequences=["END"],
        **params(temperature=0.3, top_p=0.8, top_k=5),
    )
    assert isinstance(result, anthropic.types.Message)
    span = telemetry.span()
    assert span.name == f"chat {MODEL}" and span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    a = attrs(telemetry)
    expected = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.system": "Anthropic",
        "llm.request.type": "chat",
        "gen_ai.request.model": MODEL,
        "gen_ai.request.max_tokens": 50,
        "gen_ai.request.temperature": 0.3,
        "gen_ai.request.top_p": 0.8,
        "gen_ai.request.top_k": 5,
        "server.address": "127.0.0.1",
        "server.port": anthropic_server.port,
        "gen_ai.response.id": result.id,
        "gen_ai.response.model": result.model,
        "gen_ai.usage.input_tokens": DEFAULT_USAGE["input_tokens"],
        "gen_ai.usage.output_tokens": DEFAULT_USAGE["output_tokens"],
        "gen_ai.usage.prompt_tokens": DEFAULT_USAGE["input_tokens"],
        "gen_ai.usage.completion_tokens": DEFAULT_USAGE["output_tokens"],
        "llm.usage.total_tokens": DEFAULT_USAGE["input_tokens"] + DEFAULT_USAGE["output_tokens"],
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": SYSTEM,
        "gen_ai.prompt.1.role": "user",
        "gen_ai.prompt.1.content": "Say hi",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": result.content[0].text,
        "gen_ai.completion.0.finish_reason": "end_turn",
    }
    for key, value in expected.items():
        assert a.get(key) == value, key
    assert tuple(a["gen_ai.request.stop_sequences"]) == ("END",)
    assert tuple(a["gen_ai.response.finish_reasons"]) == ("end_turn",)
    assert "gen_ai.openai.api_base" not in a and "gen_ai.request.stream" not in a
    metrics = telemetry.metrics()
    tokens = metrics[sc.METRIC_TOKEN_USAGE]
    assert {p.attributes["gen_ai.token.type"]: p.sum for p in tokens} == {
        "input": DEFAULT_USAGE["input_tokens"],
        "output": DEFAULT_USAGE["output_tokens"],
    }
    assert {p.attributes["gen_ai.system"] for p in tokens} == {"Anthropic"}
    assert metrics[sc.METRIC_GENERATION_CHOICES][0].value == 1
    assert metrics[sc.METRIC_OPERATION_DURATION][0].count == 1


def test_create_latest_profile(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    instrument(profile=Profile.LATEST)
    client = anthropic_server.client()
    system = [{"type": "text", "text": "You are terse."}, {"type": "text", "text": "Use metric units."}]
    result = client.messages.create(
        model=MODEL, max_tokens=50, system=system, messages=MESSAGES, tools=[WEATHER]
    )
    a = attrs(telemetry)
    assert "gen_ai.system" not in a and "gen_ai.prompt.0.content" not in a and "llm.request.type" not in a
    assert a["gen_ai.provider.name"] == "anthropic"
    assert json.loads(a["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "You are terse."},
        {"type": "text", "content": "Use metric units."},
    ]
    assert json.loads(a["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Say hi"}]}
    ]
    (output,) = json.loads(a["gen_ai.output.messages"])
    assert output["finish_reason"] == "end_turn"
    assert output["parts"] == [{"type": "text", "content": result.content[0].text}]
    (tool,) = json.loads(a["gen_ai.tool.definitions"])
    assert tool == {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": WEATHER["input_schema"],
    }
    assert "gen_ai.usage.prompt_tokens" not in a and "gen_ai.usage.cache_read_input_tokens" not in a


def test_prompt_caching_usage(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    """v1.41.0: input tokens include cache reads and writes, which also get their own attributes."""
    usage = {
        "input_tokens": 4,
        "cache_read_input_tokens": 1163,
        "cache_creation_input_tokens": 7,
        "output_tokens": 202,
    }
    client = anthropic_server.client()
    anthropic_server.script(usage=usage)
    client.messages.create(model=MODEL, max_tokens=300, messages=MESSAGES)
    anthropic_server.script(usage=usage)
    events = list(client.messages.create(model=MODEL, max_tokens=300, messages=MESSAGES, stream=True))
    assert events[0].type == "message_start" and events[0].message.usage.cache_read_input_tokens == 1163
    spans = telemetry.spans()
    assert len(spans) == 2
    for span in spans:
        a = span.attributes or {}
        assert a["gen_ai.usage.input_tokens"] == 4 + 1163 + 7
        assert a["gen_ai.usage.prompt_tokens"] == 4 + 1163 + 7
        assert a["gen_ai.usage.output_tokens"] == 202
        assert a["gen_ai.usage.cache_read.input_tokens"] == a["gen_ai.usage.cache_read_input_tokens"] == 1163
        assert (
            a["gen_ai.usage.cache_creation.input_tokens"]
            == a["gen_ai.usage.cache_creation_input_tokens"]
            == 7
        )
        assert a["llm.usage.total_tokens"] == 4 + 1163 + 7 + 202
    points = telemetry.metrics()[sc.METRIC_TOKEN_USAGE]
    # Cache points are a part of input, shown on their own (docs/telemetry.md).
    assert sorted((p.attributes["gen_ai.token.type"], p.sum, p.count) for p in points) == [
        ("cache_creation", 2 * 7, 2),
        ("cache_read", 2 * 1163, 2),
        ("input", 2 * (4 + 1163 + 7), 2),
        ("output", 2 * 202, 2),
    ]


def test_stream_usage_from_message_start_and_cumulative_message_delta(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = anthropic_server.client()
    # Newer API versions repeat (and may update) input-side counts in message_delta: they win.
    anthropic_server.script(
        usage={"input_tokens": 3, "cache_read_input_tokens": 2, "output_tokens": 9},
        delta_usage={"output_tokens": 40, "input_tokens": 5, "cache_read_input_tokens": 2},
    )
    list(client.messages.create(model=MODEL, max_tokens=99, messages=MESSAGES, stream=True))
    a = attrs(telemetry)
    assert a["gen_ai.usage.input_tokens"] == 5 + 2 + 0 and a["gen_ai.usage.output_tokens"] == 40
    telemetry.span_exporter.clear()
    # Cut before message_delta: the input side is known, message_start's output placeholder is not used.
    anthropic_server.script_broken_stream(after=3)
    with pytest.raises(Exception):  # noqa: B017 - the transport error type differs between SDK versions
        list(client.messages.create(model=MODEL, max_tokens=99, messages=MESSAGES, stream=True))
    a = attrs(telemetry)
    assert a["gen_ai.usage.input_tokens"] == DEFAULT_USAGE["input_tokens"]
    assert "gen_ai.usage.output_tokens" not in a


def test_stream_create(anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any) -> None:
    client = anthropic_server.client()
    stream = client.messages.create(model=MODEL, max_tokens=50, system=SYSTEM, messages=MESSAGES, stream=True)
    assert isinstance(stream, anthropic.Stream)
    text = "".join(
        e.delta.text for e in stream if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )
    assert text == default_text(MODEL)
    a = attrs(telemetry)
    assert a["gen_ai.completion.0.content"] == text
    assert a["gen_ai.request.stream"] is True and a["llm.is_streaming"] is True
    assert a[sc.STREAM_END_REASON] == "exhausted"
    assert a["gen_ai.response.id"].startswith("msg_mock") and a["gen_ai.response.model"] == MODEL
    assert tuple(a["gen_ai.response.finish_reasons"]) == ("end_turn",)
    assert a["gen_ai.usage.output_tokens"] == DEFAULT_USAGE["output_tokens"]
    metrics = telemetry.metrics()
    assert metrics[sc.METRIC_TIME_TO_FIRST_CHUNK][0].count == 1
    # one gap per event after the first: everything but ping reaches the caller
    events = anthropic_server.last_request.events_sent - 1
    assert metrics[sc.METRIC_TIME_PER_OUTPUT_CHUNK][0].count == events - 1


def test_stream_early_close_and_abandon_end_the_span_once(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = anthropic_server.client()
    stream = client.messages.create(model=MODEL, max_tokens=50, messages=MESSAGES, stream=True)
    next(iter(stream))
    stream.close()
    stream.close()
    assert attrs(telemetry)[sc.STREAM_END_REASON] == "closed"
    telemetry.span_exporter.clear()
    with client.messages.create(model=MODEL, max_tokens=50, messages=MESSAGES, stream=True) as stream:
        for event in stream:
            if event.type == "content_block_delta":
                break
    assert attrs(telemetry)[sc.STREAM_END_REASON] == "closed"
    telemetry.span_exporter.clear()
    stream = client.messages.create(model=MODEL, max_tokens=50, messages=MESSAGES, stream=True)
    next(iter(stream))
    del stream
    gc.collect()
    assert attrs(telemetry)[sc.STREAM_END_REASON] == "abandoned"


# --- the messages.stream() helper ------------------------------------------------------------------


def test_stream_helper_text_stream_and_final_message(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = anthropic_server.client()
    with client.messages.stream(model=MODEL, max_tokens=50, system=SYSTEM, messages=MESSAGES) as stream:
        assert type(stream).__name__ == "MessageStream" or isinstance(stream, anthropic.MessageStream)
        assert stream.text_stream is stream.text_stream
        text = "".join(stream.text_stream)
        # the span ended when the stream did, before the with block
        assert attrs(telemetry)[sc.STREAM_END_REASON] == "exhausted"
        final = stream.get_final_message()
        assert stream.get_final_text() == text == final.content[0].text
        assert stream.current_message_snapshot.id == final.id
    a = attrs(telemetry)
    assert a["gen_ai.completion.0.content"] == text
    assert (
        a["gen_ai.response.id"] == final.id and a["gen_ai.usage.output_tokens"] == final.usage.output_tokens
    )
    assert a["gen_ai.prompt.0.content"] == SYSTEM and a["gen_ai.request.stream"] is True
    assert telemetry.metrics()[sc.METRIC_TIME_TO_FIRST_CHUNK][0].count == 1


def test_stream_helper_final_message_until_done_and_events(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = anthropic_server.client()
    with client.messages.stream(model=MODEL, max_tokens=50, messages=MESSAGES) as stream:
        final = stream.get_final_message()
    a = attrs(telemetry)
    assert a["gen_ai.completion.0.content"] == final.content[0].text
    assert a[sc.STREAM_END_REASON] == "exhausted"
    telemetry.span_exporter.clear()
    with client.messages.stream(model=MODEL, max_tokens=50, messages=MESSAGES) as stream:
        stream.until_done()
        assert attrs(telemetry)[sc.STREAM_END_REASON] == "exhausted"
    telemetry.span_exporter.clear()
    with client.messages.stream(model=MODEL, max_tokens=50, messages=MESSAGES) as stream:
        kinds = [event.type for event in stream]
    assert "text" in kinds and "message_stop" in kinds  # the helper's own events still arrive
    assert attrs(telemetry)["gen_ai.completion.0.content"] == default_text(MODEL)


def test_stream_helper_left_early_or_unread(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = anthropic_server.client()
    with client.messages.stream(model=MODEL, max_tokens=50, messages=MESSAGES) as stream:
        for _ in stream.text_stream:
            break
    a = attrs(telemetry)
    assert a[sc.STREAM_END_REASON] == "closed" and a["gen_ai.response.id"].startswith("msg_mock")
    telemetry.span_exporter.clear()
    with client.messages.stream(model=MODEL, max_tokens=50, messages=MESSAGES):
        pass
    assert attrs(telemetry)[sc.STREAM_END_REASON] == "closed"
    telemetry.span_exporter.clear()
    sent = len(anthropic_server.requests)
    manager = client.messages.stream(model=MODEL, max_tokens=50, messages=MESSAGES)
    assert telemetry.spans() == [] and len(anthropic_server.requests) == sent  # nothing sent yet
    stream = manager.__enter__()
    next(iter(stream))
    del stream, manager
    gc.collect()
    assert attrs(telemetry)[sc.STREAM_END_REASON] == "abandoned"


def test_stream_helper_request_error(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = anthropic_server.client()
    anthropic_server.script_error(400, "messages: bad")
    with (
        pytest.raises(anthropic.BadRequestError),
        client.messages.stream(model=MODEL, max_tokens=5, messages=MESSAGES),
    ):
        pass
    span = telemetry.span()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "BadRequestError"


# --- tools, thinking, content --------------------------------------------------------------------------


def test_tool_use_and_tool_results(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = anthropic_server.client()
    anthropic_server.script_tool_use(
        ToolUse("get_weather", {"city": "Linz"}, id="toolu_1"), text="Let me check."
    )
    first = client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, tools=[WEATHER])
    a = attrs(telemetry)
    assert a["llm.request.functions.0.name"] == "get_weather"
    assert a["llm.request.functions.0.description"] == "Weather for a city"
    assert json.loads(a["llm.request.functions.0.parameters"]) == WEATHER["input_schema"]
    assert a["gen_ai.completion.0.content"] == "Let me check."
    assert a["gen_ai.completion.0.tool_calls.0.id"] == "toolu_1"
    assert a["gen_ai.completion.0.tool_calls.0.name"] == "get_weather"
    assert json.loads(a["gen_ai.completion.0.tool_calls.0.arguments"]) == {"city": "Linz"}
    assert a["gen_ai.completion.0.finish_reason"] == "tool_use"
    telemetry.span_exporter.clear()

    # The next turn sends the SDK's own blocks back plus a tool_result.
    history = [
        *MESSAGES,
        {"role": "assistant", "content": first.content},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "Sunny, 21 C"},
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ]
    client.messages.create(model=MODEL, max_tokens=100, messages=history, tools=[WEATHER])
    a = attrs(telemetry)
    assert [a[f"gen_ai.prompt.{i}.role"] for i in range(4)] == ["user", "assistant", "tool", "user"]
    assert a["gen_ai.prompt.1.content"] == "Let me check."
    assert a["gen_ai.prompt.1.tool_calls.0.id"] == "toolu_1"
    assert json.loads(a["gen_ai.prompt.1.tool_calls.0.arguments"]) == {"city": "Linz"}
    assert a["gen_ai.prompt.2.tool_call_id"] == "toolu_1" and a["gen_ai.prompt.2.content"] == "Sunny, 21 C"
    assert a["gen_ai.prompt.3.content"] == "And tomorrow?"

    telemetry.span_exporter.clear()
    instrument(profile=Profile.LATEST)
    client.messages.create(model=MODEL, max_tokens=100, messages=history, tools=[WEATHER])
    inputs = json.loads(attrs(telemetry)["gen_ai.input.messages"])
    assert inputs[1]["parts"][1] == {
        "type": "tool_call",
        "id": "toolu_1",
        "name": "get_weather",
        "arguments": {"city": "Linz"},
    }
    assert inputs[2] == {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "id": "toolu_1", "response": "Sunny, 21 C"}],
    }


def test_tool_use_streamed(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = anthropic_server.client()
    anthropic_server.script_tool_use(
        ToolUse("get_weather", {"city": "Graz", "days": 3}, id="toolu_a"), ToolUse("get_time", id="toolu_b")
    )
    list(client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, tools=[WEATHER], stream=True))
    a = attrs(telemetry)
    assert "gen_ai.completion.0.content" not in a  # no text block
    assert a["gen_ai.completion.0.tool_calls.0.id"] == "toolu_a"
    assert json.loads(a["gen_ai.completion.0.tool_calls.0.arguments"]) == {"city": "Graz", "days": 3}
    assert a["gen_ai.completion.0.tool_calls.1.name"] == "get_time"
    assert json.loads(a["gen_ai.completion.0.tool_calls.1.arguments"]) == {}
    assert tuple(a["gen_ai.response.finish_reasons"]) == ("tool_use",)


def test_thinking(anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any) -> None:
    client = anthropic_server.client()
    anthropic_server.script(thinking="Count the letters.", text="Three.")
    result = client.messages.create(model=MODEL, max_tokens=2048, messages=MESSAGES, **thinking_kwargs())
    assert [b.type for b in result.content] == ["thinking", "text"]
    a = attrs(telemetry)
    assert a["gen_ai.completion.0.reasoning"] == "Count the letters."
    assert a["gen_ai.completion.0.content"] == "Three."
    telemetry.span_exporter.clear()
    anthropic_server.script(thinking="Step by step, slowly.", text="Three.", chunk_size=3)
    with client.messages.stream(
        model=MODEL, max_tokens=2048, messages=MESSAGES, **thinking_kwargs()
    ) as stream:
        stream.until_done()
    a = attrs(telemetry)
    assert a["gen_ai.completion.0.reasoning"] == "Step by step, slowly."
    assert a["gen_ai.completion.0.content"] == "Three."
    telemetry.span_exporter.clear()

    # Thinking blocks sent back in the history: their text is content, their signature never exported.
    history = [
        *MESSAGES,
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Earlier thought.", "signature": "SIGNATURE-SECRET"},
                {"type": "redacted_thinking", "data": "ENCRYPTED-SECRET"},
                {"type": "text", "text": "Hi!"},
            ],
        },
        {"role": "user", "content": "Again"},
    ]
    anthropic_server.script(thinking="Once more.", text="Hi again.")
    client.messages.create(model=MODEL, max_tokens=2048, messages=history, **thinking_kwargs())
    span = telemetry.span()
    assert "SECRET" not in all_text(span) and "Earlier thought." in all_text(span)
    telemetry.span_exporter.clear()
    instrument(profile=Profile.LATEST)
    anthropic_server.script(thinking="Once more.", text="Hi again.")
    client.messages.create(model=MODEL, max_tokens=2048, messages=history, **thinking_kwargs())
    span = telemetry.span()
    assert "SECRET" not in all_text(span)
    inputs = json.loads((span.attributes or {})["gen_ai.input.messages"])
    assert inputs[1]["parts"][0] == {"type": "reasoning", "content": "Earlier thought."}
    (output,) = json.loads((span.attributes or {})["gen_ai.output.messages"])
    assert output["parts"][0] == {"type": "reasoning", "content": "Once more."}


def test_binary_content_never_exported(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    data = "iVBORw0KGgo" + "A" * 4000
    content = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
        {"type": "text", "text": "What is this?"},
    ]
    client = anthropic_server.client()
    client.messages.create(model=MODEL, max_tokens=50, messages=[{"role": "user", "content": content}])
    span = telemetry.span()
    assert "AAAAAAAA" not in all_text(span) and "iVBORw0KGgo" not in all_text(span)
    assert "https://example.com/cat.png" in (span.attributes or {})["gen_ai.prompt.0.content"]
    telemetry.span_exporter.clear()
    instrument(profile=Profile.LATEST)
    client.messages.create(model=MODEL, max_tokens=50, messages=[{"role": "user", "content": content}])
    span = telemetry.span()
    assert "AAAAAAAA" not in all_text(span)
    parts = json.loads((span.attributes or {})["gen_ai.input.messages"])[0]["parts"]
    assert parts == [
        {"type": "blob", "modality": "image", "content": "<omitted>", "mime_type": "image/png"},
        {"type": "uri", "modality": "image", "uri": "https://example.com/cat.png"},
        {"type": "text", "content": "What is this?"},
    ]


@pytest.mark.parametrize("profile", [Profile.DYNATRACE, Profile.LATEST])
def test_content_off_keeps_text_out(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any, profile: Profile
) -> None:
    instrument(capture=CaptureMode.NO_CONTENT, profile=profile)
    client = anthropic_server.client()
    history = [
        {"role": "user", "content": "Say hi"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Wels"}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "Rainy"}]},
    ]
    anthropic_server.script(thinking="Pondering.", times=2)
    client.messages.create(model=MODEL, max_tokens=50, system=SYSTEM, messages=history, tools=[WEATHER])
    list(client.messages.create(model=MODEL, max_tokens=50, system=SYSTEM, messages=history, stream=True))
    anthropic_server.script_tool_use(ToolUse("get_weather", {"city": "Steyr"}))
    with client.messages.stream(model=MODEL, max_tokens=50, system=SYSTEM, messages=history) as stream:
        stream.until_done()
    spans = telemetry.spans()
    assert len(spans) == 3
    secrets = ("Say hi", "Be brief", "Wels", "Rainy", "Steyr", "Pondering", "mock response", "Weather for")
    for span in spans:
        blob = all_text(span)
        assert not [s for s in secrets if s in blob], blob
        assert "gen_ai.input.messages" not in blob and "gen_ai.prompt.0.content" not in blob
    assert tuple((spans[2].attributes or {})["gen_ai.response.finish_reasons"]) == ("tool_use",)
    assert telemetry.logs() == []


def test_content_as_event_only(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    instrument(capture=CaptureMode.EVENT_ONLY)
    client = anthropic_server.client()
    result = client.messages.create(model=MODEL, max_tokens=50, system=SYSTEM, messages=MESSAGES)
    span = telemetry.span()
    assert "Say hi" not in all_text(span)
    (log,) = telemetry.logs()
    assert log.event_name == sc.EVENT_INFERENCE_DETAILS
    assert log.span_id == span.context.span_id
    event = dict(log.attributes or {})
    assert json.loads(event["gen_ai.system_instructions"]) == [{"type": "text", "content": SYSTEM}]
    assert json.loads(event["gen_ai.input.messages"])[0]["parts"][0]["content"] == "Say hi"
    assert json.loads(event["gen_ai.output.messages"])[0]["parts"][0]["content"] == result.content[0].text
    assert event["gen_ai.usage.input_tokens"] == DEFAULT_USAGE["input_tokens"]


# --- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, "BadRequestError"),
        (401, "AuthenticationError"),
        (429, "RateLimitError"),
        (500, "InternalServerError"),
        (529, None),  # OverloadedError in recent SDKs, InternalServerError in older ones
    ],
)
def test_http_errors_reach_caller_unchanged(
    anthropic_server: AnthropicMockServer,
    telemetry: Telemetry,
    instrument: Any,
    status: int,
    error: str | None,
) -> None:
    client = anthropic_server.client()
    anthropic_server.script_error(status, retry_after=7 if status == 429 else None)
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(model=MODEL, max_tokens=5, messages=MESSAGES)
    exc = info.value
    assert exc.status_code == status
    assert isinstance(exc.body, dict) and exc.body["type"] == "error"
    if error is not None:
        assert type(exc).__name__ == error
    if status == 429:
        assert exc.response.headers["retry-after"] == "7"
    span = telemetry.span()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == type(exc).__name__
    assert any(e.name == "exception" for e in span.events)
    duration = telemetry.metrics()[sc.METRIC_OPERATION_DURATION]
    assert duration[0].attributes["error.type"] == type(exc).__name__


def test_timeout_and_connection_errors(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    # The server never answers this one, so the client's timeout fires whatever the machine's speed.
    anthropic_server.script(hang=True)
    with pytest.raises(anthropic.APITimeoutError):
        # per call: old SDKs give messages.create its own 600 s default that beats the client's
        anthropic_server.client().messages.create(model=MODEL, max_tokens=5, messages=MESSAGES, timeout=0.2)
    anthropic_server.release()
    assert (telemetry.span().attributes or {})["error.type"] == "APITimeoutError"
    telemetry.span_exporter.clear()
    anthropic_server.script(disconnect=True)
    with pytest.raises(anthropic.APIConnectionError):
        anthropic_server.client().messages.create(model=MODEL, max_tokens=5, messages=MESSAGES)
    assert (telemetry.span().attributes or {})["error.type"] == "APIConnectionError"
    telemetry.span_exporter.clear()
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(anthropic.APIConnectionError):
        anthropic.Anthropic(base_url=closed, api_key="k", max_retries=0).messages.create(
            model=MODEL, max_tokens=5, messages=MESSAGES
        )
    span = telemetry.span()
    assert (span.attributes or {})["server.port"] == int(closed.rsplit(":", 1)[1])
    assert span.status.status_code is StatusCode.ERROR


def test_sse_error_event_mid_stream(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = anthropic_server.client()
    anthropic_server.script(stream_error_after=4, error_message="Overloaded right now")
    stream = client.messages.create(model=MODEL, max_tokens=50, messages=MESSAGES, stream=True)
    received: list[Any] = []
    with pytest.raises(anthropic.APIStatusError) as info:
        for event in stream:
            received.append(event)
    assert "Overloaded right now" in str(info.value)
    assert [e.type for e in received][:2] == ["message_start", "content_block_start"]
    span = telemetry.span()
    assert span.status.status_code is StatusCode.ERROR
    a = span.attributes or {}
    assert a["error.type"] == type(info.value).__name__ and a[sc.STREAM_END_REASON] == "error"
    assert a["gen_ai.response.id"].startswith("msg_mock")  # what arrived before the error is kept
    assert "gen_ai.usage.output_tokens" not in a
    telemetry.span_exporter.clear()
    anthropic_server.script(stream_error_after=4)
    with (
        pytest.raises(anthropic.APIStatusError),
        client.messages.stream(model=MODEL, max_tokens=50, messages=MESSAGES) as helper,
    ):
        helper.get_final_text()
    assert (telemetry.span().attributes or {})[sc.STREAM_END_REASON] == "error"


def test_broken_stream(anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any) -> None:
    client = anthropic_server.client()
    anthropic_server.script_broken_stream(after=5)
    stream = client.messages.create(model=MODEL, max_tokens=50, messages=MESSAGES, stream=True)
    # anthropic 2.x raises APIConnectionError, older releases the transport's own error.
    with pytest.raises(Exception) as broken:
        for _ in stream:
            pass
    del stream
    gc.collect()
    span = telemetry.span()
    assert (span.attributes or {})["error.type"] == type(broken.value).__name__
    assert span.status.status_code is StatusCode.ERROR
    telemetry.span_exporter.clear()
    anthropic_server.script_broken_stream(after=5)
    with pytest.raises(Exception), client.messages.stream(model=MODEL, max_tokens=50, messages=MESSAGES) as s:  # noqa: B017
        "".join(s.text_stream)
    assert (telemetry.span().attributes or {})["error.type"] == type(broken.value).__name__


def test_retries_stay_inside_one_span(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = anthropic_server.client(max_retries=2)
    anthropic_server.script_error(529, retry_after=0.001)
    anthropic_server.script_error(429, retry_after=0.001)
    result = client.messages.create(model=MODEL, max_tokens=5, messages=MESSAGES)
    assert len(anthropic_server.requests) == 3
    span = telemetry.span()
    assert span.status.status_code is StatusCode.UNSET
    assert (span.attributes or {})["gen_ai.response.id"] == result.id


# --- async, beta, parse, legacy completions, platforms, raw responses ---------------------------------------


async def test_async_variants(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = anthropic_server.async_client()
    result = await client.messages.create(model=MODEL, max_tokens=50, messages=MESSAGES)
    stream = await client.messages.create(model=MODEL, max_tokens=50, messages=MESSAGES, stream=True)
    assert isinstance(stream, anthropic.AsyncStream)
    streamed = "".join(
        [
            e.delta.text
            async for e in stream
            if e.type == "content_block_delta" and e.delta.type == "text_delta"
        ]
    )
    async with client.messages.stream(model=MODEL, max_tokens=50, messages=MESSAGES) as helper:
        texts = [t async for t in helper.text_stream]
        final = await helper.get_final_message()
        assert await helper.get_final_text() == "".join(texts)
    async with client.messages.stream(model=MODEL, max_tokens=50, messages=MESSAGES) as helper:
        await helper.until_done()
    anthropic_server.script_error(429)
    with pytest.raises(anthropic.RateLimitError):
        await client.messages.create(model=MODEL, max_tokens=50, messages=MESSAGES)
    spans = telemetry.spans()
    assert [s.name for s in spans] == [f"chat {MODEL}"] * 5
    a = [dict(s.attributes or {}) for s in spans]
    assert a[0]["gen_ai.completion.0.content"] == result.content[0].text
    assert a[1]["gen_ai.completion.0.content"] == streamed and a[1][sc.STREAM_END_REASON] == "exhausted"
    assert a[2]["gen_ai.completion.0.content"] == "".join(texts) and a[2]["gen_ai.response.id"] == final.id
    assert a[3][sc.STREAM_END_REASON] == "exhausted"
    assert a[4]["error.type"] == "RateLimitError"


async def test_async_stream_early_exit(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = anthropic_server.async_client()
    async with client.messages.stream(model=MODEL, max_tokens=50, messages=MESSAGES) as helper:
        async for _ in helper.text_stream:
            break
    assert attrs(telemetry)[sc.STREAM_END_REASON] == "closed"
    telemetry.span_exporter.clear()
    stream = await client.messages.create(model=MODEL, max_tokens=50, messages=MESSAGES, stream=True)
    await stream.__anext__()
    await stream.close()
    assert attrs(telemetry)[sc.STREAM_END_REASON] == "closed"


@needs_beta
def test_beta_messages(anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any) -> None:
    client = anthropic_server.client()
    result = client.beta.messages.create(model=MODEL, max_tokens=50, system=SYSTEM, messages=MESSAGES)
    with client.beta.messages.stream(model=MODEL, max_tokens=50, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
    streamed = list(client.beta.messages.create(model=MODEL, max_tokens=50, messages=MESSAGES, stream=True))
    assert len(anthropic_server.requests) == 3
    spans = telemetry.spans()
    assert len(spans) == 3 and {s.name for s in spans} == {f"chat {MODEL}"}
    a = [dict(s.attributes or {}) for s in spans]
    assert (
        a[0]["gen_ai.completion.0.content"] == result.content[0].text
        and a[0]["gen_ai.prompt.0.content"] == SYSTEM
    )
    assert a[1]["gen_ai.completion.0.content"] == text
    assert a[2]["gen_ai.response.id"] == streamed[0].message.id


@needs_beta
async def test_async_beta_stream(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = anthropic_server.async_client()
    async with client.beta.messages.stream(model=MODEL, max_tokens=50, messages=MESSAGES) as stream:
        final = await stream.get_final_message()
    a = attrs(telemetry)
    assert a["gen_ai.completion.0.content"] == final.content[0].text and a["gen_ai.response.id"] == final.id


@pytest.mark.skipif(not HAS_BETA, reason="this anthropic has no client.beta.messages")
def test_beta_messages_create(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = anthropic_server.client()
    result = client.beta.messages.create(model=MODEL, max_tokens=50, messages=MESSAGES, betas=["some-beta"])
    assert anthropic_server.last_request.header("anthropic-beta") == "some-beta"
    assert attrs(telemetry)["gen_ai.completion.0.content"] == result.content[0].text


@pytest.mark.skipif(not HAS_PROMPT_CACHING_BETA, reason="this anthropic has no client.beta.prompt_caching")
def test_prompt_caching_beta(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = anthropic_server.client()
    system = [{"type": "text", "text": "Long context.", "cache_control": {"type": "ephemeral"}}]
    anthropic_server.script(usage={"input_tokens": 3, "cache_creation_input_tokens": 900}, times=2)
    client.beta.prompt_caching.messages.create(model=MODEL, max_tokens=50, system=system, messages=MESSAGES)
    with client.beta.prompt_caching.messages.stream(
        model=MODEL, max_tokens=50, system=system, messages=MESSAGES
    ) as stream:
        text = "".join(stream.text_stream)
    spans = telemetry.spans()
    assert len(spans) == 2
    for span in spans:
        a = span.attributes or {}
        assert a["gen_ai.usage.input_tokens"] == 903 and a["gen_ai.usage.cache_creation.input_tokens"] == 900
        assert a["gen_ai.prompt.0.content"] == "Long context." and "ephemeral" not in all_text(span)
    assert (spans[1].attributes or {})["gen_ai.completion.0.content"] == text


@needs_parse
def test_parse_structured_output(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    class Joke(pydantic.BaseModel):
        joke: str
        rating: int

    client = anthropic_server.client()
    anthropic_server.script(text='{"joke": "A span walks into a bar.", "rating": 7}')
    parsed = client.messages.parse(model=MODEL, max_tokens=100, messages=MESSAGES, output_format=Joke)
    assert parsed.parsed_output == Joke(joke="A span walks into a bar.", rating=7)
    a = attrs(telemetry)
    assert a["gen_ai.output.type"] == "json"
    assert json.loads(a["gen_ai.completion.0.content"])["rating"] == 7


@needs_completions
def test_legacy_completions(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = anthropic_server.client()
    prompt = f"{anthropic.HUMAN_PROMPT} Hello{anthropic.AI_PROMPT}"
    result = client.completions.create(
        model="claude-2.1", prompt=prompt, max_tokens_to_sample=30, temperature=0.5
    )
    a = attrs(telemetry)
    assert a["llm.request.type"] == "completion" and a["gen_ai.operation.name"] == "text_completion"
    assert telemetry.span().name == "text_completion claude-2.1"
    assert a["gen_ai.request.max_tokens"] == 30 and a["gen_ai.request.temperature"] == 0.5
    assert a["gen_ai.prompt.0.content"] == prompt
    assert a["gen_ai.completion.0.content"] == result.completion
    assert a["gen_ai.completion.0.finish_reason"] == result.stop_reason == "stop_sequence"
    assert a["gen_ai.response.id"] == result.id
    telemetry.span_exporter.clear()
    text = "".join(
        c.completion
        for c in client.completions.create(
            model="claude-2.1", prompt=prompt, max_tokens_to_sample=30, stream=True
        )
    )
    a = attrs(telemetry)
    assert a["gen_ai.completion.0.content"] == text == result.completion
    assert (
        a["gen_ai.completion.0.finish_reason"] == "stop_sequence" and a[sc.STREAM_END_REASON] == "exhausted"
    )


@needs_completions
async def test_legacy_completions_async(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = anthropic_server.async_client()
    result = await client.completions.create(
        model="claude-2.1", prompt="\n\nHuman: Hi\n\nAssistant:", max_tokens_to_sample=5
    )
    assert attrs(telemetry)["gen_ai.completion.0.content"] == result.completion


@needs_botocore
def test_bedrock_client(anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any) -> None:
    client = anthropic_server.bedrock_client()
    model = "anthropic.claude-3-haiku-20240307-v1:0"
    result = client.messages.create(model=model, max_tokens=50, messages=MESSAGES)
    events = list(client.messages.create(model=model, max_tokens=50, messages=MESSAGES, stream=True))
    with client.messages.stream(model=model, max_tokens=50, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
    assert [r.platform for r in anthropic_server.requests] == ["bedrock"] * 3
    assert anthropic_server.requests[1].path.endswith("/invoke-with-response-stream")
    spans = telemetry.spans()
    assert len(spans) == 3
    for span in spans:
        a = span.attributes or {}
        assert a["gen_ai.provider.name"] == "anthropic" and a["gen_ai.system"] == "Anthropic"
        assert a["gen_ai.request.model"] == model
        assert (a["server.address"], a["server.port"]) == ("127.0.0.1", anthropic_server.port)
        assert a["gen_ai.usage.output_tokens"] == DEFAULT_USAGE["output_tokens"]
    assert (spans[0].attributes or {})["gen_ai.completion.0.content"] == result.content[0].text
    assert (spans[1].attributes or {})["gen_ai.response.id"] == events[0].message.id
    assert (spans[2].attributes or {})["gen_ai.completion.0.content"] == text


@needs_botocore
async def test_async_bedrock_stream_error(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = anthropic_server.bedrock_client(is_async=True)
    anthropic_server.script(stream_error_after=3, error_type="modelStreamErrorException")
    stream = await client.messages.create(
        model="anthropic.claude-x", max_tokens=5, messages=MESSAGES, stream=True
    )
    # recent SDKs raise an APIStatusError, old ones (0.3x) a ValueError from their decoder
    with pytest.raises(Exception) as info:
        async for _ in stream:
            pass
    assert (telemetry.span().attributes or {})["error.type"] == type(info.value).__name__


def test_vertex_client(anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any) -> None:
    client = anthropic_server.vertex_client()
    result = client.messages.create(model="claude-3-5-sonnet@20240620", max_tokens=50, messages=MESSAGES)
    with client.messages.stream(
        model="claude-3-5-sonnet@20240620", max_tokens=50, messages=MESSAGES
    ) as stream:
        final = stream.get_final_message()
    assert [r.platform for r in anthropic_server.requests] == ["vertex"] * 2
    spans = telemetry.spans()
    assert len(spans) == 2
    a = [dict(s.attributes or {}) for s in spans]
    assert (
        a[0]["gen_ai.provider.name"] == "anthropic"
        and a[0]["gen_ai.request.model"] == "claude-3-5-sonnet@20240620"
    )
    assert a[0]["server.port"] == anthropic_server.port
    assert a[0]["gen_ai.completion.0.content"] == result.content[0].text
    assert a[1]["gen_ai.response.id"] == final.id


def test_raw_and_streaming_response_variants(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = anthropic_server.client()
    raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=50, messages=MESSAGES)
    assert raw.headers["request-id"].startswith("req_mock")
    message = raw.parse()
    assert attrs(telemetry)["gen_ai.completion.0.content"] == message.content[0].text
    telemetry.span_exporter.clear()
    with client.messages.with_streaming_response.create(
        model=MODEL, max_tokens=50, messages=MESSAGES
    ) as response:
        assert response.http_response.status_code == 200
        body = response.parse()
    assert attrs(telemetry)["gen_ai.response.id"] == body.id
    telemetry.span_exporter.clear()
    with client.messages.with_streaming_response.create(model=MODEL, max_tokens=50, messages=MESSAGES):
        pass  # never parsed: the span still ends, once
    assert len(telemetry.spans()) == 1
    telemetry.span_exporter.clear()
    raw_stream = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=50, messages=MESSAGES, stream=True
    )
    events = list(raw_stream.parse())
    a = attrs(telemetry)
    assert a["gen_ai.response.id"] == events[0].message.id and a[sc.STREAM_END_REASON] == "exhausted"


# --- the caller's view ------------------------------------------------------------------------------


def test_caller_sees_identical_results(anthropic_server: AnthropicMockServer, telemetry: Telemetry) -> None:
    client = anthropic_server.client()

    def calls() -> list[Any]:
        out: list[Any] = []
        anthropic_server.script(message_id="msg_fixed", times=None)
        out.append(
            client.messages.create(model=MODEL, max_tokens=50, system=SYSTEM, messages=MESSAGES).model_dump()
        )
        out.append(
            [
                e.model_dump()
                for e in client.messages.create(model=MODEL, max_tokens=50, messages=MESSAGES, stream=True)
            ]
        )
        with client.messages.stream(model=MODEL, max_tokens=50, messages=MESSAGES, tools=[WEATHER]) as stream:
            out.append(list(stream.text_stream))
            out.append(stream.get_final_message().model_dump())
            out.append(stream.get_final_text())
        with client.messages.stream(model=MODEL, max_tokens=50, messages=MESSAGES) as stream:
            out.append([e.model_dump() for e in stream])
        anthropic_server.reset()
        # newer SDKs put the request id in str(exc): give both runs the same one
        anthropic_server.script_error(400, "bad request", headers={"request-id": "req_fixed"})
        try:
            client.messages.create(model=MODEL, max_tokens=50, messages=MESSAGES)
        except anthropic.BadRequestError as exc:
            out.append((type(exc), exc.status_code, exc.body, str(exc)))
        anthropic_server.script(stream_error_after=3)
        try:
            list(client.messages.create(model=MODEL, max_tokens=50, messages=MESSAGES, stream=True))
        except anthropic.APIStatusError as exc:
            out.append((type(exc), exc.body))
        return out

    plain = calls()
    instrumentor = AnthropicInstrumentor()
    instrumentor.instrument(**telemetry.instrument_kwargs())
    try:
        instrumented = calls()
    finally:
        instrumentor.uninstrument()
    assert plain == instrumented
    assert len(telemetry.spans()) == 6


def test_one_shot_iterables_are_left_to_the_sdk(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    """Messages given as a generator are never read by us: the SDK still sends all of them."""
    client = anthropic_server.client()
    client.messages.create(model=MODEL, max_tokens=5, messages=(m for m in MESSAGES), system=SYSTEM)
    assert anthropic_server.last_request.body["messages"] == MESSAGES
    a = attrs(telemetry)
    assert a["gen_ai.prompt.0.content"] == SYSTEM and "gen_ai.prompt.1.content" not in a
    assert a["gen_ai.response.id"].startswith("msg_mock")


def test_clients_created_before_instrumenting_are_covered_and_uninstrument_restores(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry
) -> None:
    client = anthropic_server.client()  # before
    original = anthropic.resources.messages.Messages.create
    instrumentor = AnthropicInstrumentor()
    instrumentor.instrument(**telemetry.instrument_kwargs())
    try:
        assert anthropic.resources.messages.Messages.create is not original
        client.messages.create(model=MODEL, max_tokens=5, messages=MESSAGES)
    finally:
        instrumentor.uninstrument()
    assert anthropic.resources.messages.Messages.create is original
    client.messages.create(model=MODEL, max_tokens=5, messages=MESSAGES)  # after uninstrument: no span
    with client.messages.stream(model=MODEL, max_tokens=5, messages=MESSAGES) as stream:
        stream.until_done()
    assert len(telemetry.spans()) == 1


def test_broken_adapter_never_breaks_the_call(
    anthropic_server: AnthropicMockServer,
    telemetry: Telemetry,
    instrument: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("adapter bug")

    client = anthropic_server.client()
    monkeypatch.setattr(ad.MessageStreamAccumulator, "on_chunk", boom)
    monkeypatch.setattr(ad.MessageStreamAccumulator, "fill", boom)
    monkeypatch.setattr(ad, "message_response", boom)
    instrument()  # the wrappers pick up the broken readers
    result = client.messages.create(model=MODEL, max_tokens=5, messages=MESSAGES)
    with client.messages.stream(model=MODEL, max_tokens=5, messages=MESSAGES) as stream:
        assert stream.get_final_text() == default_text(MODEL)
    assert result.content[0].text == default_text(MODEL)
    assert len(telemetry.spans()) == 2  # ended, just without response attributes
    telemetry.span_exporter.clear()
    monkeypatch.setattr(ad, "messages_request", boom)
    instrument()
    assert client.messages.create(model=MODEL, max_tokens=5, messages=MESSAGES).content[0].text
    assert telemetry.spans() == []  # no record could be built: the call ran uninstrumented


# --- one span per call, whatever the SDK's own tracing does -----------------------------------------------


@needs_native
def test_native_sdk_span_is_replaced_by_ours(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    option = {"tracer_provider": telemetry.tracer_provider}
    client = anthropic_server.client(open_telemetry=option)
    # Without our instrumentation the SDK records its own span (so this test can see a duplicate).
    instrument().uninstrument()
    client.messages.create(model=MODEL, max_tokens=5, messages=MESSAGES)
    (native,) = telemetry.spans()
    assert native.instrumentation_scope is not None and native.instrumentation_scope.name == SDK_SCOPE
    telemetry.span_exporter.clear()

    instrument()
    client.messages.create(model=MODEL, max_tokens=5, messages=MESSAGES)
    list(client.messages.create(model=MODEL, max_tokens=5, messages=MESSAGES, stream=True))
    with client.messages.stream(model=MODEL, max_tokens=5, messages=MESSAGES) as stream:
        stream.until_done()
    client.messages.with_raw_response.create(model=MODEL, max_tokens=5, messages=MESSAGES).parse()
    spans = telemetry.spans()
    assert len(spans) == 4 and ours(spans) == spans
    # The SDK still propagates, now naming our span as the parent of the server's work.
    for span, request in zip(spans, anthropic_server.requests[-4:], strict=True):
        context = span.get_span_context()
        flags = int(context.trace_flags)
        assert (
            request.header("traceparent") == f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags:02x}"
        )
    # Calls we do not instrument keep the SDK's span.
    telemetry.span_exporter.clear()
    client.models.list()
    (models,) = telemetry.spans()
    assert models.instrumentation_scope is not None and models.instrumentation_scope.name == SDK_SCOPE


@needs_native
async def test_native_tracing_async_and_without_propagation(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = anthropic_server.async_client(
        open_telemetry={"tracer_provider": telemetry.tracer_provider, "propagation": False}
    )
    await client.messages.create(model=MODEL, max_tokens=5, messages=MESSAGES)
    async with client.messages.stream(model=MODEL, max_tokens=5, messages=MESSAGES) as stream:
        await stream.until_done()
    spans = telemetry.spans()
    assert len(spans) == 2 and ours(spans) == spans
    assert all(r.header("traceparent") is None for r in anthropic_server.requests)


@pytest.mark.skipif(not hasattr(anthropic, "beta_tool"), reason="this anthropic has no tool runner")
def test_tool_runner_turns_under_the_sdk_runner_span(
    anthropic_server: AnthropicMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    @anthropic.beta_tool
    def get_weather(city: str) -> str:
        """Weather for a city."""
        return f"Sunny in {city}"

    client = anthropic_server.client(open_telemetry={"tracer_provider": telemetry.tracer_provider})
    anthropic_server.script_tool_use(ToolUse("get_weather", {"city": "Linz"}))
    runner = client.beta.messages.tool_runner(
        model=MODEL, max_tokens=100, tools=[get_weather], messages=MESSAGES
    )
    assert [m.stop_reason for m in runner] == ["tool_use", "end_turn"]
    spans = telemetry.spans()
    turns = ours(spans)
    (loop,) = [s for s in spans if s.name == "anthropic.messages.tool_runner"]
    assert [s.name for s in turns] == [f"chat {MODEL}"] * 2  # one span per LLM call, no SDK duplicate
    assert all(s.parent is not None and s.parent.span_id == loop.context.span_id for s in turns)
    # the second turn sends the tool's result (on the Claude API the thread holds the rest)
    second = turns[1].attributes or {}
    assert [second[k] for k in ("gen_ai.prompt.0.role", "gen_ai.prompt.0.content")] == [
        "tool",
        "Sunny in Linz",
    ]


_GLOBAL_PROVIDER_SCRIPT = """
import asyncio, json
import anthropic
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from genai_observe.instrumentation.anthropic import AnthropicInstrumentor

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)  # the application's global SDK provider
M = [{"role": "user", "content": "hi"}]

def calls():
    client = anthropic.Anthropic(base_url=URL, api_key="k", max_retries=0)
    client.messages.create(model="m", max_tokens=5, messages=M)
    list(client.messages.create(model="m", max_tokens=5, messages=M, stream=True))
    with client.messages.stream(model="m", max_tokens=5, messages=M) as stream:
        stream.get_final_message()

    async def main():
        aclient = anthropic.AsyncAnthropic(base_url=URL, api_key="k", max_retries=0)
        await aclient.messages.create(model="m", max_tokens=5, messages=M)
    asyncio.run(main())
    spans = [(s.name, s.instrumentation_scope.name) for s in exporter.get_finished_spans()]
    exporter.clear()
    return spans

before = calls()
AnthropicInstrumentor().instrument()  # our spans go to the global provider too
after = calls()
print(json.dumps({"before": before, "after": after}))
"""


def test_global_tracer_provider_one_span_per_call(anthropic_server: AnthropicMockServer) -> None:
    script = f"URL = {anthropic_server.url!r}\n" + _GLOBAL_PROVIDER_SCRIPT
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OTEL_", "GENAI_OBSERVE_"))}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if HAS_NATIVE_TRACING:
        # The control: on its own the SDK records a span per call with the global provider.
        assert [scope for _, scope in result["before"]] == [SDK_SCOPE] * 4
    else:
        assert result["before"] == []
    assert result["after"] == [["chat m", "genai_observe"]] * 4


# --- through genai_observe.init() -------------------------------------------------------------------


def test_import_after_init_through_otlp(
    anthropic_server: AnthropicMockServer, otlp_receiver: OTLPReceiver
) -> None:
    script = textwrap.dedent(f"""
        import sys
        import genai_observe
        genai_observe.init(endpoint={otlp_receiver.url!r}, service_name="late-import")
        assert "anthropic" not in sys.modules  # init() did not import the SDK
        import anthropic
        client = anthropic.Anthropic(base_url={anthropic_server.url!r}, api_key="k", max_retries=0)
        client.messages.create(model="late", max_tokens=5, messages=[{{"role": "user", "content": "hi"}}])
        genai_observe.shutdown()
    """)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "OTEL_", "GENAI_OBSERVE_", "DT_"))
    }
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    (span,) = otlp_receiver.spans()  # ours only: init() set the global provider the SDK would use too
    assert span.name == "chat late" and span.scope_name == "genai_observe"
    assert span.resource_attributes["service.name"] == "late-import"
    assert span.attributes["gen_ai.system"] == "Anthropic"
    durations = otlp_receiver.metrics(sc.METRIC_OPERATION_DURATION)
    assert durations and durations[0].temporality == 1


def test_init_instruments_anthropic(
    anthropic_server: AnthropicMockServer, otlp_receiver: OTLPReceiver
) -> None:
    handle = genai_observe.init(endpoint=otlp_receiver.url, profile="latest")
    assert "anthropic" in handle.instrumented
    client = anthropic_server.client()
    client.messages.create(model=MODEL, max_tokens=5, system=SYSTEM, messages=MESSAGES)
    with client.messages.stream(model=MODEL, max_tokens=5, messages=MESSAGES) as stream:
        stream.until_done()
    handle.shutdown()
    spans = otlp_receiver.spans()
    assert [s.name for s in spans] == [f"chat {MODEL}"] * 2
    for span in spans:
        assert span.scope_name == "genai_observe" and span.kind == 3
        assert "gen_ai.input.messages" in span.attributes and "gen_ai.system" not in span.attributes
    assert "gen_ai.system_instructions" in spans[0].attributes
    points = otlp_receiver.metrics(sc.METRIC_TOKEN_USAGE)
    assert points


def test_example_against_local_server(
    anthropic_server: AnthropicMockServer, otlp_receiver: OTLPReceiver
) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "anthropic_messages.py"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "OTEL_", "GENAI_OBSERVE_", "DT_"))
    }
    env.update(
        ANTHROPIC_BASE_URL=anthropic_server.url,
        ANTHROPIC_API_KEY="test",
        DT_ENDPOINT=otlp_receiver.url,
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    done = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "message:" in done.stdout and "stream:" in done.stdout and "tool call: [('get_weather'" in done.stdout
    )
    spans = otlp_receiver.spans()
    assert [s.name for s in spans] == ["chat claude-haiku-4-5"] * 4
    assert {s.resource_attributes["service.name"] for s in spans} == {"anthropic-messages-example"}
    assert {s.scope_name for s in spans} == {"genai_observe"}
    assert (spans[2].attributes["gen_ai.response.finish_reasons"]) == ["tool_use"]


# --- adapter details ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "address", "port"),
    [
        ("https://api.anthropic.com", "api.anthropic.com", 443),
        (
            "https://bedrock-runtime.eu-central-1.amazonaws.com",
            "bedrock-runtime.eu-central-1.amazonaws.com",
            443,
        ),
        ("https://us-east5-aiplatform.googleapis.com/v1", "us-east5-aiplatform.googleapis.com", 443),
        ("http://gateway.internal:8080/anthropic/", "gateway.internal", 8080),
        ("", None, None),
    ],
)
def test_client_info(base_url: str, address: str | None, port: int | None) -> None:
    client = type("Client", (), {"base_url": base_url})()
    assert ad.client_info(client) == ad.ClientInfo(address, port)


def test_accumulator_uses_the_helper_snapshot_when_it_saw_no_events() -> None:
    message = anthropic.types.Message(
        id="msg_snap",
        type="message",
        role="assistant",
        model="m",
        content=[{"type": "text", "text": "from the snapshot"}],
        stop_reason="end_turn",
        stop_sequence=None,
        usage={"input_tokens": 1, "output_tokens": 2},
    )
    acc = ad.MessageStreamAccumulator(True)
    acc.snapshot = lambda: message
    call = LLMCall()
    acc.fill(call)
    assert call.response_id == "msg_snap" and call.choices[0].content == "from the snapshot"
    assert call.usage is not None and (call.usage.input_tokens, call.usage.output_tokens) == (1, 2)

    def not_started() -> Any:
        raise AssertionError  # what the SDK's current_message_snapshot does before message_start

    acc.snapshot = not_started
    call = LLMCall()
    acc.fill(call)
    assert call.choices == [] and call.usage is None


def test_stream_accumulator_keeps_no_text_when_content_is_off() -> None:
    from types import SimpleNamespace as NS

    events = [
        NS(type="message_start", message=NS(id="m1", model="x", role="assistant", usage=NS(input_tokens=3))),
        NS(type="content_block_start", index=0, content_block=NS(type="text", text="")),
        NS(type="content_block_delta", index=0, delta=NS(type="text_delta", text="secret words")),
        NS(
            type="content_block_start", index=1, content_block=NS(type="tool_use", id="t", name="f", input={})
        ),
        NS(type="content_block_delta", index=1, delta=NS(type="input_json_delta", partial_json='{"a": 1}')),
        NS(type="message_delta", delta=NS(stop_reason="tool_use"), usage=NS(output_tokens=7)),
    ]
    for keep_text in (False, True):
        acc = ad.MessageStreamAccumulator(keep_text)
        for event in events:
            acc.on_chunk(event)
        assert bool(acc.blocks[0].parts) is keep_text and bool(acc.blocks[1].arguments) is keep_text
        call = LLMCall()
        acc.fill(call)
        (choice,) = call.choices
        assert choice.finish_reason == "tool_use" and choice.tool_calls and choice.tool_calls[0].name == "f"
        assert call.usage is not None and (call.usage.input_tokens, call.usage.output_tokens) == (3, 7)


def test_request_reader_edge_cases() -> None:
    info = ad.ClientInfo("h", 1)
    call = ad.messages_request(
        info,
        {
            "model": "m",
            "max_tokens": 10,
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
            ],
            "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
            "stop_sequences": "STOP",
            "extra_body": {"temperature": 0.1, "stream": True},
            "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 2}],
        },
    )
    assert call.stream is False  # only the SDK's own argument decides what it returns
    assert call.temperature == 0.1 and call.stop_sequences == ["STOP"] and call.system_instructions == ["s"]
    assert call.input_messages[0].content == [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    assert call.tool_definitions == [{"type": "web_search_20250305", "name": "web_search"}]
    call = ad.messages_request(
        info,
        {
            "model": "m",
            "max_tokens": 5,
            "messages": [],
            "output_config": {"format": {"type": "json_schema", "schema": {}}},
        },
    )
    assert call.output_type == "json"
    assert ad.usage({"input_tokens": None}) is not None and ad.usage(None) is None
