"""Anthropic client cost, uninstrumented vs instrumented, over an in-process httpx2 MockTransport.

``anthropic`` 2.x sends through ``httpx2`` (like ``openai`` 3.x), so the mock sits where the network
would be and the SDK still parses real JSON and real Anthropic SSE bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx2
from opentelemetry import trace

from genai_observe.instrumentation.anthropic import AnthropicInstrumentor

from ._harness import Result, Scenario, instrument_toggle, interleaved, per_chunk_estimate, run_scenarios

CHUNKS = 100
MODEL = "claude-sonnet-4-5"
_USAGE = {
    "input_tokens": 20,
    "output_tokens": 9,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
    "service_tier": "standard",
}
_MESSAGE = json.dumps(
    {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [{"type": "text", "text": "Hello! How can I help you today?"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": _USAGE,
    }
).encode()


def _sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def _stream_events() -> list[dict[str, Any]]:
    """The event sequence the API sends for a one-text-block answer."""
    start_usage = {**_USAGE, "output_tokens": 1}  # the API's placeholder until message_delta
    events: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": MODEL,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": start_usage,
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ]
    events += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": f"tok{i} "}}
        for i in range(CHUNKS)
    ]
    events += [
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": CHUNKS},
        },
        {"type": "message_stop"},
    ]
    return events


_EVENTS = _stream_events()
_STREAM = b"".join(_sse(e) for e in _EVENTS)


def _handler(request: httpx2.Request) -> httpx2.Response:
    if b'"stream":true' in request.content.replace(b" ", b""):
        return httpx2.Response(200, content=_STREAM, headers={"content-type": "text/event-stream"})
    return httpx2.Response(200, content=_MESSAGE, headers={"content-type": "application/json"})


MESSAGES: Any = [{"role": "user", "content": "Hello there!"}]
SYSTEM = "You are helpful."


def _client(**options: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key="bench",
        base_url="https://api.anthropic.com",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(_handler)),
        **options,
    )


def _setup(make: Callable[[anthropic.Anthropic], Any]) -> Callable[[], Callable[[bool], Any]]:
    """``call(instrumented)`` picks the client: the baseline is an app without telemetry.

    ``anthropic`` 2.x traces itself through the global tracer provider, which ``init()`` sets. An app
    without telemetry has no global provider, so the SDK's spans are no-ops: the baseline client gets
    a no-op provider. The instrumented side uses a default client, whose own span our instrumentor
    replaces, exactly as after ``init()``.
    """

    def setup() -> Callable[[bool], Any]:
        plain = _client(open_telemetry={"tracer_provider": trace.NoOpTracerProvider()})
        default = _client()
        return lambda instrumented: make(default if instrumented else plain)

    return setup


def _create(client: anthropic.Anthropic, **extra: Any) -> Any:
    return client.messages.create(model=MODEL, max_tokens=256, system=SYSTEM, messages=MESSAGES, **extra)


def _text_stream(client: anthropic.Anthropic) -> Iterator[str]:
    with client.messages.stream(model=MODEL, max_tokens=256, system=SYSTEM, messages=MESSAGES) as stream:
        yield from stream.text_stream


def scenarios() -> list[Scenario]:
    """The calls of this suite, shared by the wall-clock run and the instruction counter."""
    return [
        Scenario("anthropic.messages", "anthropic", AnthropicInstrumentor, _setup(_create)),
        Scenario(
            "anthropic.messages.stream",
            "anthropic",
            AnthropicInstrumentor,
            _setup(lambda c: _create(c, stream=True)),
            len(_EVENTS),
        ),
        Scenario(
            "anthropic.messages.stream_helper",
            "anthropic",
            AnthropicInstrumentor,
            _setup(_text_stream),
            len(_EVENTS),
        ),
    ]


def run(handle: Any, iterations: int, warmup: int) -> list[Result]:
    """The ``vs_sdk_spans`` row compares against the SDK's own spans exported through the same
    providers (an app with its own OpenTelemetry setup) instead of an app without telemetry."""
    instrument = instrument_toggle(AnthropicInstrumentor(), handle)
    results = run_scenarios(scenarios(), instrument, iterations=iterations, warmup=warmup)
    default = _client()
    results.insert(
        1,
        interleaved(
            "anthropic.messages.vs_sdk_spans",
            lambda: _create(default),
            instrument,
            iterations=iterations,
            warmup=warmup,
        ),
    )
    for stream in results[2:]:
        per_chunk_estimate(stream, results[0])
    return results
