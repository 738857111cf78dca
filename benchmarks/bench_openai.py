"""OpenAI client cost, uninstrumented vs instrumented, over an in-process httpx2 MockTransport."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx2
import openai

from genai_observe.instrumentation.openai import OpenAIInstrumentor

from ._harness import Result, interleaved

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


MESSAGES = [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "Hello there!"}]


def run(handle: Any, iterations: int, warmup: int) -> list[Result]:
    client = openai.OpenAI(
        api_key="bench",
        base_url="https://api.openai.com/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(_handler)),
    )
    instrumentor = OpenAIInstrumentor()
    kwargs = {
        "tracer_provider": handle.tracer_provider,
        "meter_provider": handle.meter_provider,
        "logger_provider": handle.logger_provider,
        "capture": handle.settings.capture,
        "profile": handle.settings.profile,
    }

    def toggle(on: bool) -> None:
        if on and not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(**kwargs)
        elif not on and instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()

    results = []
    results.append(
        interleaved(
            "openai.chat",
            lambda: client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES),
            toggle,
            iterations=iterations,
            warmup=warmup,
        )
    )
    results.append(
        interleaved(
            "openai.embeddings",
            lambda: client.embeddings.create(model="text-embedding-3-small", input="hello world"),
            toggle,
            iterations=iterations,
            warmup=warmup,
        )
    )
    results.append(
        interleaved(
            "openai.responses",
            lambda: client.responses.create(model="gpt-4.1", input="Hello there!"),
            toggle,
            iterations=iterations,
            warmup=warmup,
        )
    )

    ttfc: dict[bool, list[int]] = {False: [], True: []}
    state = {"on": False}

    def stream_call() -> None:
        start = time.perf_counter_ns()
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        first = True
        for _ in stream:
            if first:
                ttfc[state["on"]].append(time.perf_counter_ns() - start)
                first = False

    def stream_toggle(on: bool) -> None:
        state["on"] = on
        toggle(on)

    streamed = interleaved(
        "openai.chat.stream",
        stream_call,
        stream_toggle,
        iterations=max(iterations // 4, 200),
        warmup=warmup // 4,
    )
    base_ttfc = sorted(ttfc[False])[len(ttfc[False]) // 2] / 1000
    inst_ttfc = sorted(ttfc[True])[len(ttfc[True]) // 2] / 1000
    row = streamed.row()
    streamed.extra = {
        "chunks": CHUNKS + 1,
        "added_us_per_chunk": row["added_us"] / (CHUNKS + 1),
        "base_ttfc_us": base_ttfc,
        "inst_ttfc_us": inst_ttfc,
        "added_ttfc_us": inst_ttfc - base_ttfc,
    }
    results.append(streamed)
    return results
