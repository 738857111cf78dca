"""Ollama client cost, uninstrumented vs instrumented, over an in-process httpx MockTransport.

``ollama.Client`` passes extra keyword arguments to its ``httpx.Client`` (``httpx``, not ``httpx2``),
so ``transport=`` puts the mock where the network would be; the SDK still parses real JSON and
real NDJSON stream lines.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import ollama

from genai_observe.instrumentation.ollama import OllamaInstrumentor

from ._harness import Result, instrument_toggle, interleaved, per_chunk_estimate, streamed

CHUNKS = 100
MODEL = "llama3.2"
_CREATED = "2025-01-01T00:00:00.000000Z"
_FINAL = {
    "done": True,
    "done_reason": "stop",
    "total_duration": 1_250_000_000,
    "load_duration": 50_000_000,
    "prompt_eval_count": 26,
    "prompt_eval_duration": 200_000_000,
    "eval_count": CHUNKS,
    "eval_duration": 900_000_000,
}
_CHAT = json.dumps(
    {
        "model": MODEL,
        "created_at": _CREATED,
        "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
        **_FINAL,
        "eval_count": 9,
    }
).encode()


def _stream_body() -> bytes:
    lines = [
        {
            "model": MODEL,
            "created_at": _CREATED,
            "message": {"role": "assistant", "content": f"tok{i} "},
            "done": False,
        }
        for i in range(CHUNKS - 1)
    ]
    # The last line carries the last piece of text with the totals, as the server sends it.
    lines.append(
        {
            "model": MODEL,
            "created_at": _CREATED,
            "message": {"role": "assistant", "content": f"tok{CHUNKS - 1} "},
            **_FINAL,
        }
    )
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


_STREAM = _stream_body()


def _handler(request: httpx.Request) -> httpx.Response:
    if json.loads(request.content).get("stream"):
        return httpx.Response(200, content=_STREAM, headers={"content-type": "application/x-ndjson"})
    return httpx.Response(200, content=_CHAT, headers={"content-type": "application/json"})


MESSAGES: Any = [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "Hello there!"},
]


def run(handle: Any, iterations: int, warmup: int) -> list[Result]:
    client = ollama.Client(host="http://127.0.0.1:11434", transport=httpx.MockTransport(_handler))
    toggle = instrument_toggle(OllamaInstrumentor(), handle)
    results = [
        interleaved(
            "ollama.chat",
            lambda: client.chat(model=MODEL, messages=MESSAGES),
            toggle,
            iterations=iterations,
            warmup=warmup,
        ),
        streamed(
            "ollama.chat.stream",
            lambda: client.chat(model=MODEL, messages=MESSAGES, stream=True),
            toggle,
            chunks=CHUNKS,
            iterations=iterations,
            warmup=warmup,
        ),
    ]
    per_chunk_estimate(results[1], results[0])
    return results
