"""Prompt caching for Dynatrace (contract rows AR-022, AR-023, AR-045): the span attributes
``gen_ai.prompt_caching`` / ``gen_ai.cache.type`` and the counter ``gen_ai.prompt.caching``.

The core writes them from the neutral record's cache counts, so each provider is driven through its
real SDK over real HTTP against the local servers in tests/rig; what Dynatrace receives is read
back from the OTLP receiver.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import genai_observe
from genai_observe._core import semconv as sc
from genai_observe.instrumentation.anthropic import AnthropicInstrumentor
from genai_observe.instrumentation.openai import OpenAIInstrumentor
from tests.conftest import Telemetry
from tests.rig.anthropic_server import AnthropicMockServer
from tests.rig.bedrock_server import BedrockMockServer, Reply, Usage
from tests.rig.openai_server import OpenAIMockServer
from tests.rig.otlp_receiver import OTLPReceiver

MESSAGES = [{"role": "user", "content": "Say hi"}]
CLAUDE = "claude-test"
DELTA = 1  # AggregationTemporality.DELTA as OTLP encodes it
CACHE_NAMES = (sc.GEN_AI_PROMPT_CACHING, sc.GEN_AI_CACHE_TYPE)


def _caching_points(receiver: OTLPReceiver) -> list[tuple[str, str, int]]:
    """(provider, cache type, tokens) of every gen_ai.prompt.caching point the receiver decoded."""
    out = []
    for metric in receiver.metrics(sc.METRIC_PROMPT_CACHING):
        assert metric.kind == "sum" and metric.is_monotonic is True and metric.temporality == DELTA
        assert metric.unit == "{token}"
        for p in metric.data_points:
            out.append((p.attributes[sc.GEN_AI_PROVIDER_NAME], p.attributes[sc.GEN_AI_CACHE_TYPE], p.value))
    return sorted(out)


def test_anthropic_read_write_and_none_at_the_receiver(
    anthropic_server: AnthropicMockServer, otlp_receiver: OTLPReceiver
) -> None:
    """A call that reads and writes is a hit (``read``); write-only is ``write``; no cache, nothing."""
    handle = genai_observe.init(endpoint=otlp_receiver.url, service_name="caching")
    client = anthropic_server.client()
    anthropic_server.script(
        usage={"input_tokens": 4, "cache_read_input_tokens": 1163, "cache_creation_input_tokens": 7}
    )
    client.messages.create(model=CLAUDE, max_tokens=50, messages=MESSAGES)
    # streamed: the counts come from message_start
    anthropic_server.script(usage={"input_tokens": 3, "cache_creation_input_tokens": 900})
    list(client.messages.create(model=CLAUDE, max_tokens=50, messages=MESSAGES, stream=True))
    anthropic_server.script(usage={"input_tokens": 3})
    client.messages.create(model=CLAUDE, max_tokens=50, messages=MESSAGES)
    handle.shutdown()
    spans = otlp_receiver.spans()
    assert len(spans) == 3
    read, write, none = (s.attributes for s in spans)
    assert read[sc.GEN_AI_PROMPT_CACHING] == read[sc.GEN_AI_CACHE_TYPE] == "read"
    assert read[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == 7  # the write is still counted
    assert write[sc.GEN_AI_PROMPT_CACHING] == write[sc.GEN_AI_CACHE_TYPE] == "write"
    assert not set(CACHE_NAMES) & set(none)
    assert _caching_points(otlp_receiver) == [
        ("anthropic", "read", 1163),
        ("anthropic", "write", 7 + 900),
    ]
    (metric,) = otlp_receiver.metrics(sc.METRIC_PROMPT_CACHING)
    for point in metric.data_points:  # the metric attributes of every GenAI metric, plus the type
        assert point.attributes[sc.GEN_AI_REQUEST_MODEL] == CLAUDE
        assert point.attributes[sc.GEN_AI_SYSTEM] == "Anthropic"
        assert set(point.attributes) <= {*sc.METRIC_ATTRIBUTE_KEYS, *sc.METRIC_EXTRA_KEYS}


def test_bedrock_converse_at_the_receiver(
    bedrock_server: BedrockMockServer, otlp_receiver: OTLPReceiver
) -> None:
    handle = genai_observe.init(endpoint=otlp_receiver.url, service_name="caching")
    bedrock_server.script(Reply(usage=Usage(input=5, output=7, cache_read=100, cache_write=20)))
    bedrock_server.client().converse(
        modelId="anthropic.claude-3-5-haiku-20241022-v1:0",
        messages=[{"role": "user", "content": [{"text": "hi"}]}],
    )
    handle.shutdown()
    (span,) = otlp_receiver.spans()
    assert span.attributes[sc.GEN_AI_PROMPT_CACHING] == span.attributes[sc.GEN_AI_CACHE_TYPE] == "read"
    assert _caching_points(otlp_receiver) == [("aws.bedrock", "read", 100), ("aws.bedrock", "write", 20)]


@pytest.fixture
def instrument(telemetry: Telemetry) -> Iterator[Any]:
    with telemetry.instrumenting(OpenAIInstrumentor()) as apply:
        yield apply


def _openai_caching(telemetry: Telemetry) -> tuple[list[Any], list[tuple[str, int]]]:
    spans = [dict(s.attributes or {}) for s in telemetry.spans()]
    points = telemetry.metrics().get(sc.METRIC_PROMPT_CACHING, [])
    return spans, sorted((p.attributes[sc.GEN_AI_CACHE_TYPE], p.value) for p in points)


def test_openai_cached_tokens_chat_stream_and_responses(
    openai_server: OpenAIMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    """OpenAI only reads (``cached_tokens``): chat, a chat stream's usage chunk, Responses, async."""
    client = openai_server.client()
    openai_server.script(usage={"cached_tokens": 40}, times=None)
    client.chat.completions.create(model="m", messages=MESSAGES)
    list(
        client.chat.completions.create(
            model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    client.responses.create(model="m", input="hi")
    list(client.responses.create(model="m", input="hi", stream=True))

    async def run_async() -> None:
        aclient = openai_server.async_client()
        await aclient.chat.completions.create(model="m", messages=MESSAGES)
        await aclient.responses.create(model="m", input="hi")

    asyncio.run(run_async())
    spans, points = _openai_caching(telemetry)
    assert len(spans) == 6
    for a in spans:
        assert (a[sc.GEN_AI_PROMPT_CACHING], a[sc.GEN_AI_CACHE_TYPE]) == ("read", "read"), a
        assert a[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 40
    assert points == [("read", 6 * 40)]  # one point series; no write type for OpenAI


def test_no_cache_hit_no_caching_telemetry(
    openai_server: OpenAIMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    openai_server.script(usage={"cached_tokens": 0})
    openai_server.client().chat.completions.create(model="m", messages=MESSAGES)
    spans, points = _openai_caching(telemetry)
    assert spans[0][sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 0
    assert not set(CACHE_NAMES) & set(spans[0]) and points == []


def test_latest_profile_has_no_caching_names(
    openai_server: OpenAIMockServer,
    anthropic_server: AnthropicMockServer,
    telemetry: Telemetry,
    instrument: Any,
) -> None:
    """v1.41.0 defines none of these names: the latest profile keeps only the usage counts."""
    instrument(profile="latest")
    openai_server.client().chat.completions.create(model="m", messages=MESSAGES)
    with telemetry.instrumenting(AnthropicInstrumentor(), profile="latest"):
        anthropic_server.script(usage={"cache_read_input_tokens": 5, "cache_creation_input_tokens": 6})
        anthropic_server.client().messages.create(model=CLAUDE, max_tokens=9, messages=MESSAGES)
    spans, points = _openai_caching(telemetry)
    assert len(spans) == 2
    for a in spans:
        assert a[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] > 0
        assert not set(CACHE_NAMES) & set(a)
    assert points == []
