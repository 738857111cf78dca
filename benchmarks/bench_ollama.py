"""Ollama client cost, uninstrumented vs instrumented, over an in-process httpx MockTransport.

``ollama.Client`` passes extra keyword arguments to its ``httpx.Client`` (``httpx``, not ``httpx2``),
so ``transport=`` puts the mock where the network would be; the SDK still parses real JSON and
real NDJSON stream lines.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import ollama

from genai_observe.instrumentation.ollama import OllamaInstrumentor

from ._harness import Result, Scenario, instrument_toggle, per_chunk_estimate, run_scenarios

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


def _scenario(name: str, make: Callable[[ollama.Client], Any], chunks: int = 0) -> Scenario:
    def setup() -> Callable[[bool], Any]:
        client = ollama.Client(host="http://127.0.0.1:11434", transport=httpx.MockTransport(_handler))
        return lambda _instrumented: make(client)

    return Scenario(name, "ollama", OllamaInstrumentor, setup, chunks)


def scenarios() -> list[Scenario]:
    """The calls of this suite, shared by the wall-clock run and the instruction counter."""
    return [
        _scenario("ollama.chat", lambda c: c.chat(model=MODEL, messages=MESSAGES)),
        _scenario(
            "ollama.chat.stream", lambda c: c.chat(model=MODEL, messages=MESSAGES, stream=True), CHUNKS
        ),
    ]


def run(handle: Any, iterations: int, warmup: int) -> list[Result]:
    toggle = instrument_toggle(OllamaInstrumentor(), handle)
    results = run_scenarios(scenarios(), toggle, iterations=iterations, warmup=warmup)
    per_chunk_estimate(results[1], results[0])
    return results
