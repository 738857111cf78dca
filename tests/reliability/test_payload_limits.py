"""Huge prompts never make a request exceed Dynatrace's limits, and JSON content stays valid."""

from __future__ import annotations

import json

import genai_observe
from genai_observe._core.content import ContentPolicy
from genai_observe._core.record import Message
from tests.rig.otlp_receiver import OTLPReceiver

DYNATRACE_TRACE_LIMIT = 8 * 1024 * 1024
DYNATRACE_LOG_LIMIT = 4 * 1024 * 1024


def test_batches_of_huge_prompts_are_split_below_the_request_limit(otlp_receiver: OTLPReceiver) -> None:
    handle = genai_observe.init(endpoint=otlp_receiver.url, capture_content="SPAN_AND_EVENT", metrics=False)
    messages = [{"role": "user", "content": f"{i}" + "x" * 20_000} for i in range(12)]
    for n in range(60):  # ~60 x 12 x 16 KiB of prompt text: far more than one request may carry
        with genai_observe.llm_call(provider="openai", model=f"big{n}", messages=messages) as call:
            call.set_response(content="y" * 20_000, finish_reason="stop")
    handle.shutdown()
    traces = otlp_receiver.requests_for("traces")
    logs = otlp_receiver.requests_for("logs")
    assert len(traces) > 1 and len(logs) > 1  # split ...
    assert all(len(r.body) < DYNATRACE_TRACE_LIMIT for r in traces)  # ... below the limits
    assert all(len(r.body) < DYNATRACE_LOG_LIMIT for r in logs)
    assert len({s.name for s in otlp_receiver.spans()}) == 60  # and nothing lost
    assert len(otlp_receiver.logs()) == 60
    for log in otlp_receiver.logs():
        json.loads(log.attributes["gen_ai.input.messages"])  # valid JSON after truncation


def test_long_conversation_keeps_the_latest_turns_within_the_total_bound() -> None:
    policy = ContentPolicy(max_length=1000)
    messages = [Message(role="user", content=f"turn {i} " + "z" * 2000) for i in range(500)]
    text = policy.input_messages(messages)
    assert len(text) <= policy.max_total
    kept = json.loads(text)
    assert 0 < len(kept) < 500
    assert kept[-1]["parts"][0]["content"].startswith("turn 499 ")  # the newest turn survives
    assert all(len(m["parts"][0]["content"]) <= 1000 + len("…[truncated]") for m in kept)
