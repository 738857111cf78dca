"""100,000 instrumented calls: memory stays flat and no internal registry grows."""

from __future__ import annotations

import gc
import json
import os
from typing import Any

import httpx2
import openai
import pytest
from benchmarks._harness import OTLPSink

import genai_observe
from genai_observe import _manual, _recorder
from genai_observe.instrumentation.openai import _adapter

TOTAL = 100_000
OPENAI_SHARE = 10  # every 10th call goes through the real openai SDK (a tenth of those streamed)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _handler(request: httpx2.Request) -> httpx2.Response:
    base = {"id": "c1", "created": 1, "model": "m"}
    if b'"stream":true' in request.content.replace(b" ", b""):
        chunks = [
            {
                **base,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"content": f"t{i}"}, "finish_reason": None}],
            }
            for i in range(5)
        ]
        body = b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"
        return httpx2.Response(200, content=body, headers={"content-type": "text/event-stream"})
    payload = {
        **base,
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }
    return httpx2.Response(200, json=payload)


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
def test_hundred_thousand_calls_keep_memory_flat(record_property: Any) -> None:
    # A sink that discards (the test receiver keeps every request, which would be measured too).
    sink = OTLPSink()
    handle = genai_observe.init(endpoint=sink.url, capture_content=True, metric_export_interval_ms=500)
    client = openai.OpenAI(
        api_key="k",
        base_url="https://api.openai.com/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(_handler)),
    )
    messages = [{"role": "user", "content": "hello " * 20}]

    def call(i: int) -> None:
        if i % OPENAI_SHARE == 0:
            if i % (OPENAI_SHARE * 10) == 0:
                for _ in client.chat.completions.create(model="m", messages=messages, stream=True):
                    pass
            else:
                client.chat.completions.create(model="m", messages=messages)
        else:
            with genai_observe.llm_call(provider="acme", model=f"m{i % 5}", messages=messages) as c:
                c.set_response(content="ok", input_tokens=5, output_tokens=1, finish_reason="stop")

    for i in range(5_000):  # warm-up: caches, pools, SDK internals reach their steady size
        call(i)
    handle.force_flush()
    gc.collect()
    before = _rss_bytes()
    for i in range(TOTAL):
        call(i)
    handle.force_flush()
    gc.collect()
    growth = _rss_bytes() - before
    record_property("rss_growth_bytes", growth)
    print(f"\nRSS growth over {TOTAL} calls: {growth / 1e6:.2f} MB")
    genai_observe.shutdown()
    sink.stop()
    assert growth < 20 * 1024 * 1024, f"RSS grew by {growth / 1e6:.1f} MB"
    # No registry of ours grows with the number of calls.
    assert len(_recorder._reported) < 50
    assert len(_recorder.METRICS._queue) == 0
    assert len(_adapter._client_cache) <= 1
    assert len(_manual._recorders) <= 1
