"""OpenAI client cost, uninstrumented vs instrumented, over an in-process httpx2 MockTransport."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2
import openai

from genai_observe.instrumentation.openai import OpenAIInstrumentor

from ._harness import Result, Scenario, instrument_toggle, per_chunk_estimate, run_scenarios

CHUNKS = 100
_CHAT = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 20,
            "completion_tokens": 9,
            "total_tokens": 29,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
        "system_fingerprint": "fp_1",
        "service_tier": "default",
    }
).encode()
_EMB = json.dumps(
    {
        "object": "list",
        "model": "text-embedding-3-small",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.01] * 256}],
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    }
).encode()


def _stream_body() -> bytes:
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
    out = []
    for i in range(CHUNKS):
        finish = "stop" if i == CHUNKS - 1 else None
        out.append(
            {**base, "choices": [{"index": 0, "delta": {"content": f"tok{i} "}, "finish_reason": finish}]}
        )
    out.append(
        {
            **base,
            "choices": [],
            "usage": {"prompt_tokens": 20, "completion_tokens": CHUNKS, "total_tokens": 120},
        }
    )
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in out) + b"data: [DONE]\n\n"


_STREAM = _stream_body()
_RESPONSES = json.dumps(
    {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "model": "gpt-4.1",
        "status": "completed",
        "output": [
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "Hi there", "annotations": []}],
            }
        ],
        "usage": {
            "input_tokens": 10,
            "output_tokens": 3,
            "total_tokens": 13,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }
).encode()


def _handler(request: httpx2.Request) -> httpx2.Response:
    path = request.url.path
    if path.endswith("/embeddings"):
        return httpx2.Response(200, content=_EMB, headers={"content-type": "application/json"})
    if path.endswith("/responses"):
        return httpx2.Response(200, content=_RESPONSES, headers={"content-type": "application/json"})
    if b'"stream":true' in request.content.replace(b" ", b""):
        return httpx2.Response(200, content=_STREAM, headers={"content-type": "text/event-stream"})
    return httpx2.Response(200, content=_CHAT, headers={"content-type": "application/json"})


MESSAGES: Any = [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "Hello there!"},
]
# A retrieval-augmented prompt of ~8 KB (a system prompt with four retrieved passages and a
# three-turn conversation): content capture costs by the character, which the two-line prompt
# above hides.
_PASSAGE = (
    "The quarterly report notes that revenue grew 12 % year over year, driven by subscriptions; "
    "operating costs rose 4 %, mostly in cloud infrastructure. "
) * 12
LONG_MESSAGES: Any = [
    {
        "role": "system",
        "content": "Answer from the passages below only.\n\n"
        + "\n\n".join(f"Passage {n}: {_PASSAGE}" for n in range(1, 5)),
    },
    {"role": "user", "content": "What drove revenue growth last quarter?"},
    {"role": "assistant", "content": "Subscriptions drove most of it, according to passage 1."},
    {"role": "user", "content": "And what happened to operating costs? Quote the passage."},
]


def _client() -> openai.OpenAI:
    return openai.OpenAI(
        api_key="bench",
        base_url="https://api.openai.com/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(_handler)),
    )


def _scenario(name: str, make: Callable[[openai.OpenAI], Any], chunks: int = 0) -> Scenario:
    def setup() -> Callable[[bool], Any]:
        client = _client()
        return lambda _instrumented: make(client)

    return Scenario(name, "openai", OpenAIInstrumentor, setup, chunks)


def scenarios() -> list[Scenario]:
    """The calls of this suite, shared by the wall-clock run and the instruction counter."""
    return [
        _scenario("openai.chat", lambda c: c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)),
        _scenario(
            "openai.chat.long_prompt",
            lambda c: c.chat.completions.create(model="gpt-4o-mini", messages=LONG_MESSAGES),
        ),
        _scenario(
            "openai.embeddings",
            lambda c: c.embeddings.create(model="text-embedding-3-small", input="hello world"),
        ),
        _scenario("openai.responses", lambda c: c.responses.create(model="gpt-4.1", input="Hello there!")),
        _scenario(
            "openai.chat.stream",
            lambda c: c.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            ),
            chunks=CHUNKS + 1,
        ),
    ]


def run(handle: Any, iterations: int, warmup: int) -> list[Result]:
    toggle = instrument_toggle(OpenAIInstrumentor(), handle)
    results = run_scenarios(scenarios(), toggle, iterations=iterations, warmup=warmup)
    per_chunk_estimate(results[-1], results[0])
    return results
