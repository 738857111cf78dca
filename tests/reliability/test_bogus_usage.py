"""Token counts the provider got wrong are dropped, silently, for every provider (issue 13, item 10).

A count of 1e20 made the OTLP encoder print a traceback per attribute, a negative one made the
SDK's histograms warn per point. The servers of tests/rig answer with such usages through the
real SDKs; the bad count must be absent from the span and the metrics, the good one kept.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

import genai_observe
from genai_observe._core import semconv as sc
from tests.conftest import Telemetry
from tests.rig.bedrock_server import Reply as BedrockReply
from tests.rig.bedrock_server import Usage as BedrockUsage
from tests.rig.otlp_receiver import OTLPReceiver

from ._providers import (
    ANTHROPIC_MODEL,
    BEDROCK_MODEL,
    OLLAMA_MODEL,
    anthropic_client,
    bedrock_client,
    instrumented,
    llm_spans,
    ollama_client,
    openai_chain,
    openai_client,
)

BOGUS = {"huge": 1e20, "negative": -5, "beyond-2**53": 2**60, "fraction": 1.5}
GOOD = 7  # the output count, sent alongside the bogus input count


HI = [{"role": "user", "content": "hi"}]


def _call(provider: str, bogus: Any, request: pytest.FixtureRequest) -> None:
    """One chat call of ``provider`` whose answer reports ``bogus`` input tokens, 7 output."""
    if provider in ("openai", "langchain"):
        server = request.getfixturevalue("openai_server")
        server.script(endpoint="chat.completions", usage={"prompt_tokens": bogus, "completion_tokens": GOOD})
        if provider == "langchain":
            openai_chain(server.base_url).invoke({"q": "hi"})
        else:
            openai_client(server).chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}]
            )
    elif provider == "anthropic":
        server = request.getfixturevalue("anthropic_server")
        server.script(usage={"input_tokens": bogus, "output_tokens": GOOD})
        messages = [{"role": "user", "content": "hi"}]
        anthropic_client(server).messages.create(model=ANTHROPIC_MODEL, max_tokens=5, messages=messages)
    elif provider == "bedrock":
        request.getfixturevalue("aws_env")
        server = request.getfixturevalue("bedrock_server")
        server.script(BedrockReply(usage=BedrockUsage(input=bogus, output=GOOD)))
        messages = [{"role": "user", "content": [{"text": "hi"}]}]
        bedrock_client(server).converse(modelId=BEDROCK_MODEL, messages=messages)
    else:
        server = request.getfixturevalue("ollama_server")
        server.script(prompt_eval_count=bogus, eval_count=GOOD)
        ollama_client(server).chat(
            model=OLLAMA_MODEL, messages=[{"role": "user", "content": "hi"}], stream=False
        )


INSTRUMENTATIONS = {
    "openai": ("openai",),
    "anthropic": ("anthropic",),
    "bedrock": ("bedrock",),
    "ollama": ("ollama",),
    "langchain": ("langchain", "openai"),
}


@pytest.mark.parametrize("bogus", BOGUS.values(), ids=BOGUS.keys())
@pytest.mark.parametrize("provider", INSTRUMENTATIONS)
def test_bogus_token_count_is_absent(
    provider: str, bogus: Any, telemetry: Telemetry, request: pytest.FixtureRequest
) -> None:
    if provider == "bedrock" and bogus == 1.5:
        pytest.skip("botocore hands the app int(1.5) == 1 itself")
    try:
        _call(provider, bogus, request)  # without the library: what the SDK itself makes of it
    except Exception as exc:
        pytest.skip(f"the {provider} SDK itself rejects {bogus!r}: {type(exc).__name__}")
    with instrumented(telemetry, *INSTRUMENTATIONS[provider]):
        _call(provider, bogus, request)
    (span,) = llm_spans(telemetry)
    attributes = dict(span.attributes or {})
    counts = {k: v for k, v in attributes.items() if "tokens" in k}
    assert all(isinstance(v, int) and 0 <= v <= 2**53 for v in counts.values()), counts
    assert sc.GEN_AI_USAGE_INPUT_TOKENS not in attributes
    assert attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == GOOD  # the good count is kept
    points = {p.attributes[sc.GEN_AI_TOKEN_TYPE]: p for p in telemetry.metrics()[sc.METRIC_TOKEN_USAGE]}
    assert sc.TOKEN_TYPE_INPUT not in points
    assert points[sc.TOKEN_TYPE_OUTPUT].sum == GOOD


def test_bogus_token_counts_export_without_a_word(
    otlp_receiver: OTLPReceiver, openai_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Through the real OTLP exporters: every signal accepted, nothing logged about it."""
    caplog.set_level(logging.DEBUG)
    handle = genai_observe.init(endpoint=otlp_receiver.url)
    client = openai_client(openai_server)
    for bogus in BOGUS.values():
        usage = {"prompt_tokens": bogus, "completion_tokens": -1, "total_tokens": bogus}
        openai_server.script(endpoint="chat.completions", usage=usage)
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    handle.shutdown()
    spans = otlp_receiver.spans()
    assert len(spans) == len(BOGUS)
    dropped = (
        sc.GEN_AI_USAGE_INPUT_TOKENS,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS,
        sc.GEN_AI_USAGE_PROMPT_TOKENS,
        sc.GEN_AI_USAGE_COMPLETION_TOKENS,
        sc.LLM_USAGE_TOTAL_TOKENS,
    )
    assert not [k for s in spans for k in s.attributes if k in dropped]
    assert all(r.accepted and not r.decode_error for r in otlp_receiver.requests)
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert problems == [], [r.getMessage() for r in problems]
