"""The real ``ollama`` client over real HTTP against the local fake Ollama server (native API)."""

from __future__ import annotations

import asyncio
import base64
import gc
import inspect
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import types
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ollama
import pytest
from opentelemetry.trace import StatusCode

import genai_observe
from genai_observe import CaptureMode, Profile
from genai_observe._core import semconv as sc
from genai_observe._core.content import ContentPolicy
from genai_observe._core.record import LLMCall
from genai_observe.instrumentation.ollama import OllamaInstrumentor
from genai_observe.instrumentation.ollama import _adapter as ad
from tests.conftest import Telemetry, attrs
from tests.rig import fixtures_ollama
from tests.rig.ollama_server import (
    DEFAULT_COUNTS,
    DEFAULT_DURATIONS,
    DEFAULT_EMBEDDING_DIMENSIONS,
    OllamaMockServer,
    ToolCall,
    default_content,
)
from tests.rig.otlp_receiver import OTLPReceiver

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT.parent / "shared" / "spec" / "dynatrace-genai-attributes.md"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi"}]
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city"}},
            "required": ["city"],
        },
    },
}
# A tiny valid PNG, as a caller would pass it (bytes) or as base64 text.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
PNG_B64 = base64.b64encode(PNG).decode()

# What this client version can do; tests of missing features skip (the oldest supported is tested
# in its own environment, see docs/ollama.md).
CHAT_PARAMS = inspect.signature(ollama.Client.chat).parameters
HAS_EMBED = hasattr(ollama.Client, "embed")
HAS_TOOLS = "tools" in CHAT_PARAMS
HAS_THINK = "think" in CHAT_PARAMS
# pydantic responses (>= 0.4) instead of dicts (before, ChatResponse is a TypedDict)
HAS_MODELS = hasattr(getattr(ollama, "ChatResponse", None), "model_fields")
HAS_SCHEMA_FORMAT = "dict" in str(CHAT_PARAMS["format"].annotation).lower()  # JSON schemas: >= 0.4.3
HAS_EMBED_DIMENSIONS = HAS_EMBED and "dimensions" in inspect.signature(ollama.Client.embed).parameters
needs_embed = pytest.mark.skipif(not HAS_EMBED, reason="this ollama has no embed()")
needs_tools = pytest.mark.skipif(not HAS_TOOLS, reason="this ollama has no tools")
needs_think = pytest.mark.skipif(not HAS_THINK, reason="this ollama has no think")
needs_models = pytest.mark.skipif(not HAS_MODELS, reason="this ollama returns dicts")

# The rig's fixtures, bound here so that pytest finds them for this module.
ollama_server = fixtures_ollama.ollama_server
ollama_server_session = fixtures_ollama.ollama_server_session

TIMING_ATTRIBUTES = {
    ad.OLLAMA_RESPONSE_TOTAL_DURATION: DEFAULT_DURATIONS["total_duration"] / 1e9,
    ad.OLLAMA_RESPONSE_LOAD_DURATION: DEFAULT_DURATIONS["load_duration"] / 1e9,
    ad.OLLAMA_RESPONSE_PROMPT_EVAL_DURATION: DEFAULT_DURATIONS["prompt_eval_duration"] / 1e9,
    ad.OLLAMA_RESPONSE_EVAL_DURATION: DEFAULT_DURATIONS["eval_duration"] / 1e9,
}


@pytest.fixture
def instrument(telemetry: Telemetry) -> Iterator[Callable[..., OllamaInstrumentor]]:
    """Instrument with given options (re-applied on each call); undone after the test."""
    with telemetry.instrumenting(OllamaInstrumentor()) as apply:
        yield apply


@pytest.fixture
def default_client_on(ollama_server: OllamaMockServer, monkeypatch: pytest.MonkeyPatch) -> OllamaMockServer:
    """Points the module-level functions' default client (created at import) at the fake server."""
    monkeypatch.setattr(ollama._client._client, "base_url", ollama_server.url)
    return ollama_server


def field(obj: Any, key: str) -> Any:
    """A response field from a pydantic model (>= 0.4) or a dict (older clients)."""
    return obj[key]


def dump(obj: Any) -> Any:
    return obj.model_dump() if hasattr(obj, "model_dump") else obj


def blob(span: Any) -> str:
    return json.dumps({k: str(v) for k, v in (span.attributes or {}).items()})


# --- chat ------------------------------------------------------------------------------------------


def test_chat_dynatrace_profile(
    ollama_server: OllamaMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = ollama_server.client()
    options = {"temperature": 0.3, "top_p": 0.8, "top_k": 40, "num_predict": 50, "seed": 7, "stop": ["END"]}
    result = client.chat(model="llama3.2", messages=MESSAGES, options=options)
    sent = ollama_server.last_request.body
    assert sent["options"] == options and sent["messages"] == MESSAGES  # request untouched
    span = telemetry.span()
    a = attrs(telemetry)
    assert span.name == "chat llama3.2"
    expected = {
        "gen_ai.system": "Ollama",
        "llm.request.type": "chat",
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "ollama",
        "gen_ai.request.model": "llama3.2",
        "gen_ai.response.model": "llama3.2",
        "gen_ai.request.temperature": 0.3,
        "gen_ai.request.top_p": 0.8,
        "gen_ai.request.top_k": 40.0,
        "gen_ai.request.max_tokens": 50,
        "gen_ai.request.seed": 7,
        "server.address": "127.0.0.1",
        "server.port": ollama_server.port,
        "gen_ai.usage.prompt_tokens": DEFAULT_COUNTS["prompt_eval_count"],
        "gen_ai.usage.completion_tokens": DEFAULT_COUNTS["eval_count"],
        "gen_ai.usage.input_tokens": DEFAULT_COUNTS["prompt_eval_count"],
        "gen_ai.usage.output_tokens": DEFAULT_COUNTS["eval_count"],
        "llm.usage.total_tokens": DEFAULT_COUNTS["prompt_eval_count"] + DEFAULT_COUNTS["eval_count"],
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": "Be brief.",
        "gen_ai.prompt.1.role": "user",
        "gen_ai.prompt.1.content": "Say hi",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": field(field(result, "message"), "content"),
        "gen_ai.completion.0.finish_reason": "stop",
        **TIMING_ATTRIBUTES,
    }
    for key, value in expected.items():
        assert a.get(key) == value, key
    assert tuple(a["gen_ai.request.stop_sequences"]) == ("END",)
    assert tuple(a["gen_ai.response.finish_reasons"]) == ("stop",)
    assert "gen_ai.request.stream" not in a and "llm.is_streaming" not in a
    assert "gen_ai.openai.api_base" not in a and "openai.api.type" not in a
    assert span.status.status_code is StatusCode.UNSET
    metrics = telemetry.metrics()
    tokens = metrics[sc.METRIC_TOKEN_USAGE]
    assert {p.attributes["gen_ai.token.type"]: p.sum for p in tokens} == {
        "input": DEFAULT_COUNTS["prompt_eval_count"],
        "output": DEFAULT_COUNTS["eval_count"],
    }
    (duration,) = metrics[sc.METRIC_OPERATION_DURATION]
    assert duration.count == 1
    assert duration.attributes["gen_ai.provider.name"] == "ollama"
    assert duration.attributes["gen_ai.system"] == "Ollama"
    assert duration.attributes["server.port"] == ollama_server.port
    assert metrics[sc.METRIC_GENERATION_CHOICES][0].value == 1
    assert sc.METRIC_TIME_TO_FIRST_CHUNK not in metrics  # not a stream


def test_chat_latest_profile(ollama_server: OllamaMockServer, telemetry: Telemetry, instrument: Any) -> None:
    instrument(profile=Profile.LATEST)
    result = ollama_server.client().chat(model="llama3.2", messages=MESSAGES)
    a = attrs(telemetry)
    assert "gen_ai.system" not in a and "llm.request.type" not in a
    assert not [k for k in a if k.startswith(("gen_ai.prompt.", "gen_ai.completion."))]
    assert a["gen_ai.provider.name"] == "ollama"
    inputs = json.loads(a["gen_ai.input.messages"])
    assert inputs == [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Say hi"}]},
    ]
    outputs = json.loads(a["gen_ai.output.messages"])
    assert outputs == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": field(field(result, "message"), "content")}],
            "finish_reason": "stop",
        }
    ]
    for key, value in TIMING_ATTRIBUTES.items():
        assert a[key] == value
    assert a["gen_ai.usage.input_tokens"] == DEFAULT_COUNTS["prompt_eval_count"]
    assert "gen_ai.usage.prompt_tokens" not in a


def _spec_ollama_attributes() -> list[str]:
    names = []
    for line in SPEC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 8 and cells[0].startswith("`") and cells[6] == "x":
            names.append(cells[0].strip("`"))
    return names


# What the spec lists for Ollama (the test below checks this list against the spec file itself).
OLLAMA_SPEC_ATTRIBUTES = [
    "gen_ai.system",
    "llm.request.type",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.usage.prompt_tokens",
    "gen_ai.usage.completion_tokens",
    "gen_ai.prompt.N.role",
    "gen_ai.prompt.N.content",
    "gen_ai.completion.N.role",
    "gen_ai.completion.N.content",
]


@pytest.mark.parametrize("operation", ["chat", "generate", "chat-stream", "generate-stream"])
def test_every_spec_attribute_for_ollama(
    ollama_server: OllamaMockServer, telemetry: Telemetry, instrument: Any, operation: str
) -> None:
    if SPEC.is_file():
        assert _spec_ollama_attributes() == OLLAMA_SPEC_ATTRIBUTES
    client = ollama_server.client()
    stream = operation.endswith("-stream")
    if operation.startswith("chat"):
        result = client.chat(model="llama3.2", messages=MESSAGES, stream=stream)
    else:
        result = client.generate(model="llama3.2", prompt="Say hi", stream=stream)
    if stream:
        for _ in result:
            pass
    a = attrs(telemetry)
    for name in OLLAMA_SPEC_ATTRIBUTES:
        assert name.replace(".N.", ".0.") in a, name
    assert a["gen_ai.system"] == "Ollama"
    assert a["llm.request.type"] == ("chat" if operation.startswith("chat") else "completion")


# --- streams ---------------------------------------------------------------------------------------


def test_chat_stream(ollama_server: OllamaMockServer, telemetry: Telemetry, instrument: Any) -> None:
    stream = ollama_server.client().chat(model="llama3.2", messages=MESSAGES, stream=True)
    chunks = list(stream)
    assert len(chunks) > 2
    if HAS_MODELS:
        assert all(isinstance(c, ollama.ChatResponse) for c in chunks)
    text = "".join(field(field(c, "message"), "content") for c in chunks)
    assert text == default_content("llama3.2")
    assert ollama_server.last_request.body["stream"] is True
    a = attrs(telemetry)
    assert a["gen_ai.completion.0.content"] == text
    assert a["gen_ai.request.stream"] is True and a["llm.is_streaming"] is True
    assert a[sc.STREAM_END_REASON] == "exhausted"
    assert a["gen_ai.usage.input_tokens"] == DEFAULT_COUNTS["prompt_eval_count"]
    assert a["gen_ai.usage.output_tokens"] == DEFAULT_COUNTS["eval_count"]
    assert tuple(a["gen_ai.response.finish_reasons"]) == ("stop",)
    for key, value in TIMING_ATTRIBUTES.items():
        assert a[key] == value
    metrics = telemetry.metrics()
    assert metrics[sc.METRIC_TIME_TO_FIRST_CHUNK][0].count == 1
    assert metrics[sc.METRIC_TIME_PER_OUTPUT_CHUNK][0].count == len(chunks) - 1


def test_generate_and_its_stream(
    ollama_server: OllamaMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = ollama_server.client()
    result = client.generate(model="llama3.2", prompt="Why is the sky blue?", system="Be a poet.")
    a = attrs(telemetry)
    assert telemetry.span().name == "text_completion llama3.2"
    assert a["gen_ai.operation.name"] == "text_completion" and a["llm.request.type"] == "completion"
    assert a["gen_ai.prompt.0.role"] == "system" and a["gen_ai.prompt.0.content"] == "Be a poet."
    assert a["gen_ai.prompt.1.role"] == "user" and a["gen_ai.prompt.1.content"] == "Why is the sky blue?"
    assert a["gen_ai.completion.0.content"] == field(result, "response")
    assert a["gen_ai.completion.0.finish_reason"] == "stop"
    assert a["gen_ai.usage.completion_tokens"] == DEFAULT_COUNTS["eval_count"]
    telemetry.span_exporter.clear()
    ollama_server.script(content="Rayleigh scattering, mostly.", done_reason="length", eval_count=5)
    chunks = list(client.generate(model="llama3.2", prompt="Why?", stream=True))
    a = attrs(telemetry)
    assert a["gen_ai.completion.0.content"] == "".join(field(c, "response") for c in chunks)
    assert a["gen_ai.completion.0.content"] == "Rayleigh scattering, mostly."
    assert tuple(a["gen_ai.response.finish_reasons"]) == ("length",)
    assert a["gen_ai.usage.output_tokens"] == 5
    assert "context" not in json.dumps({k: str(v) for k, v in a.items()})  # token ids are not kept


def test_positional_arguments_are_read(
    ollama_server: OllamaMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = ollama_server.client()
    client.chat("llama3.2", MESSAGES)
    client.generate("phi3", "Once upon")
    chat, generate = telemetry.spans()
    assert chat.attributes["gen_ai.request.model"] == "llama3.2"
    assert chat.attributes["gen_ai.prompt.1.content"] == "Say hi"
    assert generate.attributes["gen_ai.request.model"] == "phi3"
    assert generate.attributes["gen_ai.prompt.0.content"] == "Once upon"


def test_stream_closed_early_or_abandoned_ends_once(
    ollama_server: OllamaMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = ollama_server.client()
    stream = client.chat(model="m", messages=MESSAGES, stream=True)
    first = next(stream)
    assert field(field(first, "message"), "content") == "This "
    stream.close()
    stream.close()
    (span,) = telemetry.spans()
    assert span.attributes[sc.STREAM_END_REASON] == "closed"
    assert span.attributes["gen_ai.completion.0.content"] == "This "
    telemetry.span_exporter.clear()
    stream = client.generate(model="m", prompt="p", stream=True)
    next(stream)
    del stream
    gc.collect()
    (span,) = telemetry.spans()
    assert span.attributes[sc.STREAM_END_REASON] == "abandoned"
    telemetry.span_exporter.clear()
    for _ in client.chat(model="m", messages=MESSAGES, stream=True):
        break  # leaving the loop: the generator is collected right away
    gc.collect()
    (span,) = telemetry.spans()
    assert span.attributes[sc.STREAM_END_REASON] == "abandoned"

    async def leave_early() -> None:
        stream = await ollama_server.async_client().chat(model="m", messages=MESSAGES, stream=True)
        async for _ in stream:
            break
        await stream.aclose()

    telemetry.span_exporter.clear()
    asyncio.run(leave_early())
    (span,) = telemetry.spans()
    assert span.attributes[sc.STREAM_END_REASON] == "closed"


def test_streamed_text_is_bounded() -> None:
    acc = ad.Stream(keep_text=True, limit=10)
    for i in range(1000):
        acc.on_chunk({"model": "m", "message": {"role": "assistant", "content": f"word{i} "}, "done": False})
    acc.on_chunk(
        {"model": "m", "message": {"role": "assistant", "content": ""}, "done": True, "eval_count": 3}
    )
    call = LLMCall()
    acc.fill(call)
    assert call.choices[0].content is not None and len(call.choices[0].content) < 20
    assert call.usage is not None and call.usage.output_tokens == 3
    for i in range(500):
        acc.on_chunk({"message": {"tool_calls": [{"function": {"name": f"t{i}", "arguments": {}}}]}})
    assert len(acc.tool_calls) == ad.MAX_STREAM_TOOL_CALLS


def test_long_streamed_text_is_truncated_on_export(
    ollama_server: OllamaMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    instrument(content=ContentPolicy(max_length=40))
    ollama_server.script(content="word " * 5000)
    text = "".join(
        field(field(c, "message"), "content") for c in ollama_server.client().chat("m", MESSAGES, stream=True)
    )
    assert len(text) == 25000  # the caller gets everything
    exported = attrs(telemetry)["gen_ai.completion.0.content"]
    assert exported == ("word " * 8) + "…[truncated]"


# --- thinking, tools, images, format -----------------------------------------------------------------


@needs_think
def test_thinking(ollama_server: OllamaMockServer, telemetry: Telemetry, instrument: Any) -> None:
    client = ollama_server.client()
    ollama_server.script(thinking="The user wants a greeting.", content="Hi!", times=2)
    result = client.chat(model="qwen3", messages=MESSAGES, think=True)
    assert result.message.thinking == "The user wants a greeting."
    a = attrs(telemetry)
    assert a["gen_ai.completion.0.reasoning"] == "The user wants a greeting."
    assert a["gen_ai.completion.0.content"] == "Hi!"
    telemetry.span_exporter.clear()
    chunks = list(client.chat(model="qwen3", messages=MESSAGES, think=True, stream=True))
    assert "".join(c.message.thinking or "" for c in chunks) == "The user wants a greeting."
    a = attrs(telemetry)
    assert a["gen_ai.completion.0.reasoning"] == "The user wants a greeting."
    assert a["gen_ai.completion.0.content"] == "Hi!"
    telemetry.span_exporter.clear()
    instrument(profile=Profile.LATEST)
    ollama_server.script(thinking="Plan.", content="Done.")
    client.generate(model="qwen3", prompt="p", think=True)
    (message,) = json.loads(attrs(telemetry)["gen_ai.output.messages"])
    assert message["parts"] == [
        {"type": "reasoning", "content": "Plan."},
        {"type": "text", "content": "Done."},
    ]


def get_weather(city: str) -> str:
    """Current weather in a city.

    Args:
      city: The city
    """
    return f"Sunny in {city}"


@needs_tools
def test_tool_calls_and_tool_definitions(
    ollama_server: OllamaMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = ollama_server.client()
    ollama_server.script_tool_calls(ToolCall("get_weather", {"city": "Linz"}))
    result = client.chat(model="llama3.1", messages=MESSAGES, tools=[WEATHER_TOOL])
    calls = field(field(result, "message"), "tool_calls")
    assert field(field(calls[0], "function"), "name") == "get_weather"
    a = attrs(telemetry)
    assert a["llm.request.functions.0.name"] == "get_weather"
    assert a["llm.request.functions.0.description"] == "Current weather in a city"
    assert json.loads(a["llm.request.functions.0.parameters"])["required"] == ["city"]
    assert a["gen_ai.completion.0.tool_calls.0.name"] == "get_weather"
    assert json.loads(a["gen_ai.completion.0.tool_calls.0.arguments"]) == {"city": "Linz"}
    assert "gen_ai.completion.0.content" not in a  # Ollama sends "" with tool calls
    telemetry.span_exporter.clear()
    # The conversation goes on: the assistant's tool call and the tool's answer are input now.
    history = [
        *MESSAGES,
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Linz"}}}],
        },
        {"role": "tool", "content": "Sunny, 24 degrees", "tool_name": "get_weather"},
    ]
    ollama_server.script_tool_calls(ToolCall("get_weather", {"city": "Graz"}, id="call_7"))
    chunks = list(client.chat(model="llama3.1", messages=history, tools=[WEATHER_TOOL], stream=True))
    assert any(field(field(c, "message"), "tool_calls") for c in chunks)
    a = attrs(telemetry)
    assert a["gen_ai.prompt.2.role"] == "assistant"
    assert a["gen_ai.prompt.2.tool_calls.0.name"] == "get_weather"
    assert json.loads(a["gen_ai.prompt.2.tool_calls.0.arguments"]) == {"city": "Linz"}
    assert a["gen_ai.prompt.3.role"] == "tool" and a["gen_ai.prompt.3.content"] == "Sunny, 24 degrees"
    assert a["gen_ai.completion.0.tool_calls.0.name"] == "get_weather"
    assert json.loads(a["gen_ai.completion.0.tool_calls.0.arguments"]) == {"city": "Graz"}
    if HAS_MODELS:  # the id is only kept by clients that model it
        assert a.get("gen_ai.completion.0.tool_calls.0.id") in (None, "call_7")
    telemetry.span_exporter.clear()
    instrument(profile=Profile.LATEST)
    ollama_server.script_tool_calls(ToolCall("get_weather", {"city": "Wels"}))
    client.chat(model="llama3.1", messages=history, tools=[WEATHER_TOOL])
    a = attrs(telemetry)
    (definition,) = json.loads(a["gen_ai.tool.definitions"])
    assert definition["name"] == "get_weather" and definition["type"] == "function"
    inputs = json.loads(a["gen_ai.input.messages"])
    assert inputs[3]["role"] == "tool" and inputs[3]["parts"][0]["type"] == "tool_call_response"
    assert inputs[3]["parts"][0]["response"] == "Sunny, 24 degrees"
    (output,) = json.loads(a["gen_ai.output.messages"])
    assert output["parts"] == [
        {"type": "tool_call", "id": None, "name": "get_weather", "arguments": {"city": "Wels"}}
    ]


@needs_models
def test_python_function_as_tool(
    ollama_server: OllamaMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    ollama_server.client().chat(model="llama3.1", messages=MESSAGES, tools=[get_weather])
    sent = ollama_server.last_request.body["tools"][0]["function"]
    a = attrs(telemetry)
    assert a["llm.request.functions.0.name"] == "get_weather" == sent["name"]
    assert a["llm.request.functions.0.description"] == sent["description"]
    assert json.loads(a["llm.request.functions.0.parameters"])["properties"]["city"]["type"] == "string"


def _image_inputs(tmp_path: Path) -> tuple[list[Any], str]:
    path = tmp_path / "secret-holiday-photo.png"
    path.write_bytes(PNG)
    images: list[Any] = [PNG_B64, str(path)]
    if HAS_MODELS:
        images.append(PNG)  # raw bytes: ollama >= 0.4
    return images, str(path)


@pytest.mark.parametrize("profile", [Profile.DYNATRACE, Profile.LATEST])
def test_images_are_never_exported(
    ollama_server: OllamaMockServer,
    telemetry: Telemetry,
    instrument: Any,
    tmp_path: Path,
    profile: Profile,
) -> None:
    instrument(profile=profile, capture=CaptureMode.SPAN_AND_EVENT)
    images, path = _image_inputs(tmp_path)
    client = ollama_server.client()
    client.chat(model="llava", messages=[{"role": "user", "content": "What is this?", "images": images}])
    sent = ollama_server.last_request.body["messages"][0]["images"]
    assert sent and all(image == PNG_B64 for image in sent)  # the client still sends every image
    client.generate(model="llava", prompt="Describe it", images=images)
    assert ollama_server.last_request.body["images"]
    chat, generate = telemetry.spans()
    for span in (chat, generate):
        text = blob(span)
        assert PNG_B64[:24] not in text and "secret-holiday-photo" not in text and path not in text
    for record in telemetry.logs():
        text = json.dumps({k: str(v) for k, v in (record.attributes or {}).items()})
        assert PNG_B64[:24] not in text and "secret-holiday-photo" not in text
    if profile is Profile.DYNATRACE:
        parts = json.loads(chat.attributes["gen_ai.prompt.0.content"])
        assert parts[0] == {"type": "text", "text": "What is this?"}
        assert parts[1:] == [{"type": "image", "content": "<omitted>"}] * len(images)
        assert json.loads(generate.attributes["gen_ai.prompt.0.content"])[0]["text"] == "Describe it"
    else:
        (message,) = json.loads(chat.attributes["gen_ai.input.messages"])
        assert message["parts"][0] == {"type": "text", "content": "What is this?"}
        assert message["parts"][1:] == [{"type": "blob", "modality": "image", "content": "<omitted>"}] * len(
            images
        )


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [("json", "json"), ({"type": "object", "properties": {"a": {"type": "string"}}}, "json"), ("", None)],
)
def test_format_sets_output_type(
    ollama_server: OllamaMockServer, telemetry: Telemetry, instrument: Any, fmt: Any, expected: str | None
) -> None:
    if isinstance(fmt, dict) and not HAS_SCHEMA_FORMAT:
        pytest.skip("this ollama takes no JSON schema as format")
    ollama_server.client().chat(model="m", messages=MESSAGES, format=fmt)
    assert ollama_server.last_request.body.get("format", "") == fmt
    assert attrs(telemetry).get("gen_ai.output.type") == expected


def test_options_model_and_unlimited_num_predict(
    ollama_server: OllamaMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    options: Any = {"num_predict": -1, "temperature": 1, "stop": "END"}
    if HAS_MODELS:
        options = ollama.Options(num_predict=-1, temperature=1, stop=["END"])
    ollama_server.client().generate(model="m", prompt="p", options=options)
    a = attrs(telemetry)
    assert "gen_ai.request.max_tokens" not in a  # -1 means "no limit", not a budget
    assert a["gen_ai.request.temperature"] == 1.0
    assert tuple(a["gen_ai.request.stop_sequences"]) == ("END",)


def test_caller_iterators_are_left_to_the_sdk(
    ollama_server: OllamaMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    if not HAS_MODELS:
        pytest.skip("older clients only take lists of messages")
    messages = (m for m in MESSAGES)
    ollama_server.client().chat(model="m", messages=messages)  # type: ignore[arg-type]
    assert ollama_server.last_request.body["messages"] == MESSAGES  # we did not consume it
    assert "gen_ai.prompt.0.content" not in attrs(telemetry)


# --- embeddings ----------------------------------------------------------------------------------


@needs_embed
def test_embed(ollama_server: OllamaMockServer, telemetry: Telemetry, instrument: Any) -> None:
    result = ollama_server.client().embed(model="all-minilm", input=["first text", "second text"])
    vectors = field(result, "embeddings")
    assert len(vectors) == 2 and len(vectors[0]) == DEFAULT_EMBEDDING_DIMENSIONS
    span = telemetry.span()
    a = attrs(telemetry)
    assert span.name == "embeddings all-minilm"
    assert a["gen_ai.operation.name"] == "embeddings" and a["llm.request.type"] == "embedding"
    assert a["gen_ai.embeddings.dimension.count"] == DEFAULT_EMBEDDING_DIMENSIONS
    assert a["gen_ai.prompt.0.content"] == "first text" and a["gen_ai.prompt.1.content"] == "second text"
    assert a["gen_ai.usage.input_tokens"] == field(result, "prompt_eval_count")
    assert a["gen_ai.response.model"] == "all-minilm"
    assert a[ad.OLLAMA_RESPONSE_TOTAL_DURATION] == DEFAULT_DURATIONS["total_duration"] / 1e9
    assert "gen_ai.request.stream" not in a and not [k for k in a if k.startswith("gen_ai.completion")]
    metrics = telemetry.metrics()
    (size,) = metrics[sc.METRIC_EMBEDDINGS_VECTOR_SIZE]
    assert size.value == DEFAULT_EMBEDDING_DIMENSIONS
    assert size.attributes["gen_ai.operation.name"] == "embeddings"
    assert {p.attributes["gen_ai.token.type"] for p in metrics[sc.METRIC_TOKEN_USAGE]} == {"input"}
    if HAS_EMBED_DIMENSIONS:
        telemetry.span_exporter.clear()
        ollama_server.client().embed(model="all-minilm", input="one", dimensions=4)
        assert attrs(telemetry)["gen_ai.embeddings.dimension.count"] == 4


def test_legacy_embeddings(ollama_server: OllamaMockServer, telemetry: Telemetry, instrument: Any) -> None:
    result = ollama_server.client().embeddings(model="nomic-embed-text", prompt="hello")
    assert ollama_server.last_request.path == "/api/embeddings"
    a = attrs(telemetry)
    assert a["gen_ai.operation.name"] == "embeddings" and a["llm.request.type"] == "embedding"
    assert a["gen_ai.embeddings.dimension.count"] == len(field(result, "embedding"))
    assert a["gen_ai.prompt.0.content"] == "hello"
    assert telemetry.metrics()[sc.METRIC_EMBEDDINGS_VECTOR_SIZE][0].value == DEFAULT_EMBEDDING_DIMENSIONS


# --- async -----------------------------------------------------------------------------------------


def test_async_client(ollama_server: OllamaMockServer, telemetry: Telemetry, instrument: Any) -> None:
    async def main() -> None:
        client = ollama_server.async_client()
        result = await client.chat(model="a", messages=MESSAGES)
        stream = await client.chat(model="a", messages=MESSAGES, stream=True)
        text = "".join([field(field(c, "message"), "content") async for c in stream])
        generated = await client.generate(model="g", prompt="p")
        stream = await client.generate(model="g", prompt="p", stream=True)
        streamed = "".join([field(c, "response") async for c in stream])
        if HAS_EMBED:
            await client.embed(model="e", input="x")
        await client.embeddings(model="e", prompt="x")
        spans = telemetry.spans()
        names = ["chat a", "chat a", "text_completion g", "text_completion g"]
        names += ["embeddings e"] * (2 if HAS_EMBED else 1)
        assert [s.name for s in spans] == names
        assert spans[0].attributes["gen_ai.completion.0.content"] == field(
            field(result, "message"), "content"
        )
        assert spans[1].attributes["gen_ai.completion.0.content"] == text
        assert spans[1].attributes[sc.STREAM_END_REASON] == "exhausted"
        assert spans[2].attributes["gen_ai.completion.0.content"] == field(generated, "response")
        assert spans[3].attributes["gen_ai.completion.0.content"] == streamed
        assert spans[3].attributes["gen_ai.usage.output_tokens"] == DEFAULT_COUNTS["eval_count"]
        assert all(s.attributes["server.port"] == ollama_server.port for s in spans)
        ollama_server.script_error(404)
        with pytest.raises(ollama.ResponseError) as info:
            await client.chat(model="missing", messages=MESSAGES)
        assert info.value.status_code == 404
        ollama_server.script_broken_stream(after=2)
        stream = await client.generate(model="g", prompt="p", stream=True)
        with pytest.raises(Exception) as broken:
            async for _ in stream:
                pass
        spans = telemetry.spans()[-2:]
        assert spans[0].attributes["error.type"] == "ResponseError"
        assert spans[1].attributes["error.type"] == type(broken.value).__name__
        assert spans[1].attributes[sc.STREAM_END_REASON] == "error"

    asyncio.run(main())
    telemetry.metrics()  # the metrics of every call are recorded without error


# --- module-level functions and import order -------------------------------------------------------


def test_module_functions(default_client_on: OllamaMockServer, telemetry: Telemetry, instrument: Any) -> None:
    server = default_client_on
    ollama.chat(model="m", messages=MESSAGES)
    "".join(field(c, "response") for c in ollama.generate(model="g", prompt="p", stream=True))
    ollama.embeddings(model="e", prompt="x")
    if HAS_EMBED:
        ollama.embed(model="e", input="x")
    spans = telemetry.spans()
    assert [s.name for s in spans][:3] == ["chat m", "text_completion g", "embeddings e"]
    assert len(spans) == (4 if HAS_EMBED else 3)
    assert all(s.attributes["server.port"] == server.port for s in spans)
    assert spans[1].attributes[sc.STREAM_END_REASON] == "exhausted"


def test_uninstrument_restores_everything(
    default_client_on: OllamaMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    instrumentor = instrument()
    from ollama import chat as held  # taken while instrumented: our wrapper

    instrumentor.uninstrument()
    assert ollama.chat == ollama._client.chat  # the original bound method again
    assert not hasattr(ollama.chat, "__wrapped__") and not hasattr(ollama.Client.chat, "__wrapped__")
    held(model="m", messages=MESSAGES)
    ollama.chat(model="m", messages=MESSAGES)
    default_client_on.client().chat(model="m", messages=MESSAGES)
    assert telemetry.spans() == []  # nothing records after uninstrument, not even a held wrapper
    instrument()
    ollama.chat(model="m", messages=MESSAGES)
    held(model="m", messages=MESSAGES)  # the old wrapper calls through; the new one records
    assert len(telemetry.spans()) == 1


# Never send traffic for 127.0.0.1 through a proxy the environment may configure.
_NO_PROXY = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


def test_wrapped_methods_keep_their_look(telemetry: Telemetry) -> None:
    """Frameworks introspect client methods (async or not, parameters, name); wrapping keeps all."""

    def look() -> tuple[Any, ...]:
        return (
            inspect.iscoroutinefunction(ollama.AsyncClient.chat),
            inspect.iscoroutinefunction(ollama.AsyncClient().generate),
            str(inspect.signature(ollama.Client.chat)),
            str(inspect.signature(ollama.chat)),
            ollama.generate.__name__,
            ollama.Client.embeddings.__doc__,
        )

    before = look()
    instrumentor = OllamaInstrumentor()
    instrumentor.instrument(**telemetry.instrument_kwargs())
    try:
        assert hasattr(ollama.chat, "__wrapped__") and hasattr(ollama.Client.chat, "__wrapped__")
        assert look() == before
    finally:
        instrumentor.uninstrument()


def _run(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script) + textwrap.dedent(CALLS)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **_NO_PROXY, **env},
        cwd=str(ROOT),
    )


CALLS = """
    ollama.chat(model="modfn", messages=[{"role": "user", "content": "hi"}])
    for _ in ollama.generate(model="modgen", prompt="p", stream=True):
        pass
    ollama.Client().embeddings(model="cls", prompt="x")
    genai_observe.shutdown()
"""


def test_init_before_import(ollama_server: OllamaMockServer, otlp_receiver: OTLPReceiver) -> None:
    script = f"""
        import sys
        import genai_observe
        genai_observe.init(endpoint={otlp_receiver.url!r}, service_name="init-first")
        assert "ollama" not in sys.modules  # init() did not import the SDK
        import ollama
        from ollama import chat as chat_after_init
        chat_after_init(model="fromimport", messages=[{{"role": "user", "content": "hi"}}])
    """
    done = _run(script, {"OLLAMA_HOST": ollama_server.url})
    assert done.returncode == 0, done.stderr
    spans = otlp_receiver.spans()
    assert sorted(s.name for s in spans) == [
        "chat fromimport",
        "chat modfn",
        "embeddings cls",
        "text_completion modgen",
    ]
    assert {s.attributes["server.port"] for s in spans} == {ollama_server.port}
    assert {s.resource_attributes["service.name"] for s in spans} == {"init-first"}


def test_import_before_init(ollama_server: OllamaMockServer, otlp_receiver: OTLPReceiver) -> None:
    script = f"""
        import ollama
        client = ollama.Client()  # created before init(): covered too
        import genai_observe
        genai_observe.init(endpoint={otlp_receiver.url!r}, service_name="import-first")
        client.chat(model="early", messages=[{{"role": "user", "content": "hi"}}])
    """
    done = _run(script, {"OLLAMA_HOST": ollama_server.url})
    assert done.returncode == 0, done.stderr
    spans = otlp_receiver.spans()
    assert sorted(s.name for s in spans) == [
        "chat early",
        "chat modfn",
        "embeddings cls",
        "text_completion modgen",
    ]
    assert {s.attributes["gen_ai.system"] for s in spans} == {"Ollama"}
    assert [s.attributes[sc.STREAM_END_REASON] for s in spans if s.name.startswith("text_")] == ["exhausted"]


def test_init_end_to_end(ollama_server: OllamaMockServer, otlp_receiver: OTLPReceiver) -> None:
    handle = genai_observe.init(endpoint=otlp_receiver.url, service_name="e2e")
    assert "ollama" in handle.instrumented
    client = ollama_server.client()
    result = client.chat(model="llama3.2", messages=MESSAGES)
    list(client.chat(model="llama3.2", messages=MESSAGES, stream=True))
    handle.shutdown()
    spans = otlp_receiver.spans()
    assert [s.name for s in spans] == ["chat llama3.2", "chat llama3.2"]
    a = spans[0].attributes
    assert a["gen_ai.completion.0.content"] == field(field(result, "message"), "content")
    assert a["gen_ai.usage.prompt_tokens"] == DEFAULT_COUNTS["prompt_eval_count"]
    assert a[ad.OLLAMA_RESPONSE_EVAL_DURATION] == DEFAULT_DURATIONS["eval_duration"] / 1e9
    assert spans[0].kind == 3  # CLIENT
    (duration,) = otlp_receiver.metrics(sc.METRIC_OPERATION_DURATION)
    assert duration.temporality == 1  # DELTA, as Dynatrace needs
    assert sum(p.count or 0 for p in duration.data_points) == 2
    assert {p.attributes["gen_ai.provider.name"] for p in duration.data_points} == {"ollama"}
    assert otlp_receiver.metrics(sc.METRIC_TIME_TO_FIRST_CHUNK)


def test_example_runs_against_the_local_server(
    ollama_server: OllamaMockServer, otlp_receiver: OTLPReceiver
) -> None:
    env = {
        "OLLAMA_HOST": ollama_server.url,
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.url,
        "OLLAMA_MODEL": "example-model",
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "ollama_chat.py")],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **_NO_PROXY, **env},
    )
    assert done.returncode == 0, done.stderr
    assert default_content("example-model") in done.stdout
    names = [s.name for s in otlp_receiver.spans()]
    assert names.count("chat example-model") == 2


# --- errors and transparency -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 400, 500])
def test_error_responses(
    ollama_server: OllamaMockServer, telemetry: Telemetry, instrument: Any, status: int
) -> None:
    client = ollama_server.client()
    ollama_server.script_error(status)
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model="nope", messages=MESSAGES)
    assert info.value.status_code == status
    span = telemetry.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "ResponseError"
    assert str(info.value.error) in (span.status.description or "")
    (event,) = span.events
    assert event.name == "exception"
    duration = telemetry.metrics()[sc.METRIC_OPERATION_DURATION]
    assert duration[0].attributes["error.type"] == "ResponseError"
    telemetry.span_exporter.clear()
    ollama_server.script_error(status)
    stream = client.generate(model="nope", prompt="p", stream=True)  # the request starts on iteration
    with pytest.raises(ollama.ResponseError) as streamed:
        next(stream)
    assert streamed.value.status_code == status
    span = telemetry.span()
    assert span.attributes["error.type"] == "ResponseError"
    assert span.attributes[sc.STREAM_END_REASON] == "error"


def test_error_inside_a_stream(
    ollama_server: OllamaMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    ollama_server.script(stream_error_after=3, error="llama runner process has terminated")
    received = []
    with pytest.raises(ollama.ResponseError) as info:
        for chunk in ollama_server.client().chat(model="m", messages=MESSAGES, stream=True):
            received.append(field(field(chunk, "message"), "content"))
    assert "llama runner process has terminated" in str(info.value)
    span = telemetry.span()
    assert span.attributes["error.type"] == "ResponseError"
    assert span.attributes["gen_ai.completion.0.content"] == "".join(received)  # what did arrive
    assert "gen_ai.usage.output_tokens" not in span.attributes  # no final line, no counts


def test_broken_stream(ollama_server: OllamaMockServer, telemetry: Telemetry, instrument: Any) -> None:
    ollama_server.script_broken_stream(after=2)
    with pytest.raises(Exception) as info:
        for _ in ollama_server.client().chat(model="m", messages=MESSAGES, stream=True):
            pass
    assert ollama_server.last_request.aborted
    span = telemetry.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == type(info.value).__name__
    assert span.attributes[sc.STREAM_END_REASON] == "error"
    assert span.attributes["gen_ai.completion.0.content"] == "This is "


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_refused(telemetry: Telemetry) -> None:
    port = _closed_port()
    client = ollama.Client(host=f"http://127.0.0.1:{port}")
    with pytest.raises(Exception) as plain:
        client.chat(model="m", messages=MESSAGES)
    instrumentor = OllamaInstrumentor()
    instrumentor.instrument(**telemetry.instrument_kwargs())
    try:
        with pytest.raises(Exception) as info:
            client.chat(model="m", messages=MESSAGES)
        with pytest.raises(Exception) as streamed:
            next(client.chat(model="m", messages=MESSAGES, stream=True))
    finally:
        instrumentor.uninstrument()
    # ConnectionError on ollama >= 0.4.7 (the client's own translation), httpx.ConnectError before.
    assert type(info.value) is type(plain.value) and str(info.value) == str(plain.value)
    first, second = telemetry.spans()
    assert first.attributes["error.type"] == type(info.value).__name__
    assert first.attributes["server.port"] == port
    assert second.attributes["error.type"] == type(streamed.value).__name__


def test_caller_sees_identical_results(ollama_server: OllamaMockServer, telemetry: Telemetry) -> None:
    client = ollama_server.client()

    def calls() -> list[Any]:
        out: list[Any] = [dump(client.chat(model="m", messages=MESSAGES))]
        out.append([dump(c) for c in client.chat(model="m", messages=MESSAGES, stream=True)])
        out.append(dump(client.generate(model="m", prompt="p")))
        out.append([dump(c) for c in client.generate(model="m", prompt="p", stream=True)])
        out.append(dump(client.embeddings(model="e", prompt="x")))
        if HAS_EMBED:
            out.append(dump(client.embed(model="e", input=["x", "y"])))
        ollama_server.script_error(404)
        try:
            client.chat(model="missing", messages=MESSAGES)
        except ollama.ResponseError as exc:
            out.append((type(exc), exc.status_code, exc.error, str(exc)))
        ollama_server.script(stream_error_after=1, error="boom")
        try:
            for chunk in client.generate(model="m", prompt="p", stream=True):
                out.append(dump(chunk))
        except ollama.ResponseError as exc:
            out.append((type(exc), exc.status_code, exc.error))
        unread = client.chat(model="m", messages=MESSAGES, stream=True)
        out.append((unread.__class__, isinstance(unread, types.GeneratorType), inspect.isgenerator(unread)))
        return out

    plain = calls()
    instrumentor = OllamaInstrumentor()
    instrumentor.instrument(**telemetry.instrument_kwargs())
    try:
        instrumented = calls()
    finally:
        instrumentor.uninstrument()
    assert plain == instrumented
    assert len(telemetry.spans()) == (9 if HAS_EMBED else 8)  # the last stream is never iterated


def test_our_failures_never_reach_the_caller(
    ollama_server: OllamaMockServer, telemetry: Telemetry, instrument: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any) -> Any:
        raise RuntimeError("adapter bug")

    client = ollama_server.client()
    monkeypatch.setattr(ad, "_usage_and_timings", broken)  # response reading fails
    result = client.chat(model="m", messages=MESSAGES)
    chunks = list(client.chat(model="m", messages=MESSAGES, stream=True))
    assert field(field(result, "message"), "content") == default_content("m") and chunks
    assert len(telemetry.spans()) == 2  # both spans still end, once
    monkeypatch.setattr(ad, "server_of", broken)  # request reading fails: no span, call unharmed
    assert field(client.generate(model="m", prompt="p"), "response") == default_content("m")
    assert len(telemetry.spans()) == 2


# --- content capture ------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", [Profile.DYNATRACE, Profile.LATEST])
def test_content_off_exports_no_text(
    ollama_server: OllamaMockServer, telemetry: Telemetry, instrument: Any, profile: Profile, tmp_path: Path
) -> None:
    instrument(capture=CaptureMode.NO_CONTENT, profile=profile)
    client = ollama_server.client()
    secret = "Zanzibar"
    messages = [{"role": "system", "content": f"{secret} rules"}, {"role": "user", "content": f"{secret}?"}]
    ollama_server.script(content=f"{secret} answer", times=2)
    client.chat(model="m", messages=messages, options={"temperature": 0.1})
    list(client.chat(model="m", messages=messages, stream=True))
    ollama_server.script(content=f"{secret} answer", thinking=f"{secret} thought", times=2)
    client.generate(model="m", prompt=secret, system=secret)
    list(client.generate(model="m", prompt=secret, stream=True))
    client.embeddings(model="e", prompt=secret)
    if HAS_TOOLS:
        ollama_server.script_tool_calls(ToolCall("get_weather", {"city": secret}))
        list(client.chat(model="m", messages=messages, tools=[WEATHER_TOOL], stream=True))
    spans = telemetry.spans()
    assert len(spans) == (6 if HAS_TOOLS else 5)
    for span in spans:
        text = blob(span)
        assert secret not in text and "content" not in text and "get_weather" not in text
        assert span.attributes["gen_ai.provider.name"] == "ollama"
    assert spans[0].attributes["gen_ai.request.temperature"] == 0.1  # metadata stays
    assert telemetry.logs() == []


def test_event_only_mode(ollama_server: OllamaMockServer, telemetry: Telemetry, instrument: Any) -> None:
    instrument(capture=CaptureMode.EVENT_ONLY)
    list(ollama_server.client().chat(model="m", messages=MESSAGES, stream=True))
    span = telemetry.span()
    assert "gen_ai.prompt.0.content" not in span.attributes
    (record,) = telemetry.logs()
    assert record.event_name == sc.EVENT_INFERENCE_DETAILS
    assert json.loads(record.attributes["gen_ai.input.messages"])[1]["parts"][0]["content"] == "Say hi"
    outputs = json.loads(record.attributes["gen_ai.output.messages"])
    assert outputs[0]["parts"][0]["content"] == default_content("m")
    assert record.attributes[ad.OLLAMA_RESPONSE_TOTAL_DURATION] == DEFAULT_DURATIONS["total_duration"] / 1e9


def test_cached_prompt_reports_no_input_tokens(
    ollama_server: OllamaMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    ollama_server.script(counts=False)
    ollama_server.client().chat(model="m", messages=MESSAGES)
    a = attrs(telemetry)
    assert "gen_ai.usage.input_tokens" not in a and "llm.usage.total_tokens" not in a
    assert sc.METRIC_TOKEN_USAGE not in telemetry.metrics()


# --- server address ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "address", "port"),
    [
        (None, "127.0.0.1", 11434),
        ("", "127.0.0.1", 11434),
        ("example.com", "example.com", 11434),
        ("example.com:56789", "example.com", 56789),
        ("http://example.com", "example.com", 80),
        ("https://Example.com", "example.com", 443),
        ("https://example.com:8443/ollama", "example.com", 8443),
        (":56789", "127.0.0.1", 56789),
        ("[::1]:11435", "::1", 11435),
        ("0.0.0.0", "0.0.0.0", 11434),
    ],
)
def test_server_address_and_port(
    monkeypatch: pytest.MonkeyPatch, host: str | None, address: str, port: int
) -> None:
    if host is None:
        monkeypatch.delenv("OLLAMA_HOST", raising=False)
    else:
        monkeypatch.setenv("OLLAMA_HOST", host)
    try:
        client = ollama.Client()  # reads OLLAMA_HOST like the module's default client
    except Exception as exc:  # e.g. IPv6 hosts before ollama 0.3
        pytest.skip(f"this ollama cannot use OLLAMA_HOST={host!r}: {exc!r}")
    assert ad.server_of(client) == ad.Server(address, port)
    assert ad.parse_host(host) == ad.Server(address, port)


def test_server_address_follows_a_changed_base_url(ollama_server: OllamaMockServer) -> None:
    client = ollama.Client(host="http://10.1.2.3:1234")
    assert ad.server_of(client) == ad.Server("10.1.2.3", 1234)
    client._client.base_url = ollama_server.url
    assert ad.server_of(client) == ad.Server("127.0.0.1", ollama_server.port)
    assert ad.server_of(object()) == ad.parse_host(os.environ.get("OLLAMA_HOST"))


# --- the adapter on plain dicts (ollama < 0.4 answers with dicts) ----------------------------------


def test_adapter_reads_dict_responses() -> None:
    final = {
        "model": "llama3",
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": 5,
        "eval_count": 7,
        **DEFAULT_DURATIONS,
    }
    call = LLMCall()
    ad.chat_response(call, {**final, "message": {"role": "assistant", "content": "Hi", "thinking": "t"}})
    assert (call.response_model, call.choices[0].content, call.choices[0].reasoning) == ("llama3", "Hi", "t")
    assert call.usage is not None and (call.usage.input_tokens, call.usage.output_tokens) == (5, 7)
    assert call.response_attributes == TIMING_ATTRIBUTES
    call = LLMCall()
    ad.generate_response(call, {**final, "response": "text", "context": [1, 2]})
    assert call.choices[0].content == "text" and call.choices[0].finish_reason == "stop"
    acc = ad.Stream(keep_text=True, limit=100)
    for piece in ("a", "b"):
        acc.on_chunk({"model": "llama3", "response": piece, "done": False})
    acc.on_chunk({**final, "response": ""})
    call = LLMCall()
    acc.fill(call)
    assert call.choices[0].content == "ab" and call.usage is not None and call.usage.output_tokens == 7
    call = LLMCall()
    ad.embeddings_response(call, {"embedding": [0.1, 0.2, 0.3]})
    assert (call.embedding_vector_size, call.embedding_count) == (3, 1)
    call = LLMCall()
    ad.embed_response(call, {"model": "e", "embeddings": [[0.1, 0.2], [0.3, 0.4]], "prompt_eval_count": 2})
    assert (call.embedding_vector_size, call.embedding_count) == (2, 2)


# --- the rig itself --------------------------------------------------------------------------------


def test_rig_streams_by_default_as_ndjson(ollama_server: OllamaMockServer) -> None:
    request = urllib.request.Request(
        f"{ollama_server.url}/api/chat",
        data=json.dumps({"model": "m", "messages": MESSAGES}).encode(),  # no "stream": the API streams
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in response.read().decode().splitlines()]
    assert all(not line["done"] for line in lines[:-1])
    final = lines[-1]
    assert final["done"] is True and final["done_reason"] == "stop"
    for key in ("prompt_eval_count", "eval_count", *DEFAULT_DURATIONS):
        assert isinstance(final[key], int), key
    assert "".join(line["message"]["content"] for line in lines) == default_content("m")
    with urllib.request.urlopen(ollama_server.url, timeout=10) as response:
        assert response.read() == b"Ollama is running"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT.*Z", final["created_at"])
