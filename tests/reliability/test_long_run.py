"""100,000 instrumented calls across every provider: memory stays flat and no internal registry grows.

The calls go through the real SDKs (openai, anthropic, boto3 bedrock-runtime, ollama, langchain-core
and langchain-openai), streamed and not, with content capture on, exported over OTLP/HTTP to a sink
that discards. The network is replaced in-process (httpx/httpx2 ``MockTransport``, a botocore
``before-send`` handler answering with real wire bytes: JSON, SSE, NDJSON and AWS event-stream
frames), so each SDK still builds its request and parses a real response, but 100,000 calls finish
in about a minute here. The rigs' HTTP servers are not used here: they record every request, which would
be measured as growth, and real HTTP would make the run several times longer.

The mix, per cycle of 100 calls: 12 provider SDK calls (OpenAI chat and stream, Anthropic messages,
stream and stream helper, Bedrock Converse, ConverseStream and InvokeModel, Ollama chat and stream,
LangChain: a fake-model chain invoked and streamed, a ChatOpenAI chain) and 88 manual-API calls
(an SDK call costs 1-4 ms here, a manual one 0.4 ms). Every other stream is abandoned after its
first chunk.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import boto3
import httpx
import httpx2
import ollama
import openai
import pytest
from benchmarks._harness import OTLPSink
from botocore.awsrequest import AWSResponse

import genai_observe
from genai_observe import _manual
from genai_observe._core import diagnostics as _diagnostics
from genai_observe._core import metrics as _metrics
from genai_observe._core.recorder import Invocation
from genai_observe._core.streams import AsyncStreamProxy, SyncStreamProxy
from genai_observe.instrumentation._kit.endpoints import host_port
from genai_observe.instrumentation.anthropic import _adapter as anthropic_ad
from genai_observe.instrumentation.bedrock import _adapter as bedrock_ad
from genai_observe.instrumentation.langchain import LangChainInstrumentor
from genai_observe.instrumentation.ollama import _adapter as ollama_ad
from genai_observe.instrumentation.openai import _adapter as openai_ad
from tests.rig.bedrock_server import EVENTSTREAM, json_event

from ._providers import BEDROCK_CLAUDE, BEDROCK_MODEL, fake_chain

TOTAL = 100_000
WARMUP = 10_000  # SDK caches, connection pools, export queues and the allocator reach steady size
CYCLE = 100  # calls per cycle: the 12 provider SDK calls below, then manual-API calls
MESSAGES = [{"role": "user", "content": "hello " * 20}]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# --- wire bytes of each provider --------------------------------------------------------------------


def _sse(events: list[dict[str, Any]], named: bool = False, done: bool = False) -> bytes:
    out = b"".join(
        (f"event: {e['type']}\n" if named else "").encode() + f"data: {json.dumps(e)}\n\n".encode()
        for e in events
    )
    return out + (b"data: [DONE]\n\n" if done else b"")


_OPENAI_BASE = {"id": "c1", "created": 1, "model": "m", "system_fingerprint": "fp"}
OPENAI_JSON = json.dumps(
    {
        **_OPENAI_BASE,
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }
).encode()
OPENAI_SSE = _sse(
    [
        {
            **_OPENAI_BASE,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": f"t{i}"}, "finish_reason": None}],
        }
        for i in range(3)
    ]
    + [
        {
            **_OPENAI_BASE,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
    ],
    done=True,
)

_ANTHROPIC_USAGE = {"input_tokens": 5, "output_tokens": 3}
_ANTHROPIC_MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-long",
    "content": [{"type": "text", "text": "ok"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": _ANTHROPIC_USAGE,
}
ANTHROPIC_JSON = json.dumps(_ANTHROPIC_MESSAGE).encode()
ANTHROPIC_SSE = _sse(
    [
        {
            "type": "message_start",
            "message": {
                **_ANTHROPIC_MESSAGE,
                "content": [],
                "stop_reason": None,
                "usage": {"input_tokens": 5, "output_tokens": 1},
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        *(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": f"t{i}"}}
            for i in range(3)
        ),
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 3},
        },
        {"type": "message_stop"},
    ],
    named=True,
)

_OLLAMA_HEAD = {"model": "llama-long", "created_at": "2025-01-01T00:00:00Z"}
_OLLAMA_FINAL = {"done": True, "done_reason": "stop", "prompt_eval_count": 5, "eval_count": 3}
OLLAMA_JSON = json.dumps(
    {**_OLLAMA_HEAD, "message": {"role": "assistant", "content": "ok"}, **_OLLAMA_FINAL}
).encode()
OLLAMA_NDJSON = b"".join(
    json.dumps(line).encode() + b"\n"
    for line in [
        *(
            {**_OLLAMA_HEAD, "message": {"role": "assistant", "content": f"t{i}"}, "done": False}
            for i in range(3)
        ),
        {**_OLLAMA_HEAD, "message": {"role": "assistant", "content": ""}, **_OLLAMA_FINAL},
    ]
)

BEDROCK_CONVERSE = json.dumps(
    {
        "output": {"message": {"role": "assistant", "content": [{"text": "ok"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 5, "outputTokens": 1, "totalTokens": 6},
        "metrics": {"latencyMs": 1},
    }
).encode()
BEDROCK_INVOKE = json.dumps({**_ANTHROPIC_MESSAGE, "model": "claude-3-haiku"}).encode()
BEDROCK_STREAM = b"".join(
    [
        json_event("messageStart", {"role": "assistant"}),
        *(
            json_event("contentBlockDelta", {"delta": {"text": f"t{i}"}, "contentBlockIndex": 0})
            for i in range(3)
        ),
        json_event("contentBlockStop", {"contentBlockIndex": 0}),
        json_event("messageStop", {"stopReason": "end_turn"}),
        json_event(
            "metadata",
            {"usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8}, "metrics": {"latencyMs": 1}},
        ),
    ]
)


def _streamed(content: bytes) -> bool:
    return b'"stream":true' in content.replace(b" ", b"")


def _openai_handler(request: httpx2.Request) -> httpx2.Response:
    if _streamed(request.content):
        return httpx2.Response(200, content=OPENAI_SSE, headers={"content-type": "text/event-stream"})
    return httpx2.Response(200, content=OPENAI_JSON, headers={"content-type": "application/json"})


def _anthropic_handler(request: httpx2.Request) -> httpx2.Response:
    if _streamed(request.content):
        return httpx2.Response(200, content=ANTHROPIC_SSE, headers={"content-type": "text/event-stream"})
    return httpx2.Response(200, content=ANTHROPIC_JSON, headers={"content-type": "application/json"})


def _ollama_handler(request: httpx.Request) -> httpx.Response:
    if _streamed(request.content):
        return httpx.Response(200, content=OLLAMA_NDJSON, headers={"content-type": "application/x-ndjson"})
    return httpx.Response(200, content=OLLAMA_JSON, headers={"content-type": "application/json"})


class _Raw:
    """What botocore reads of urllib3's response: ``stream()`` for event streams, ``read()``."""

    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data

    def stream(self, amt: int = 2**16, decode_content: bool | None = None) -> Iterator[bytes]:
        data, self._data = self._data, None
        if data:
            yield data

    def read(self, amt: int | None = None, decode_content: bool | None = None) -> bytes:
        data, self._data = self._data, None
        return data or b""

    def close(self) -> None:
        self._data = None


def _bedrock_send(request: Any, **_: Any) -> AWSResponse:
    url = request.url
    if url.endswith("/converse-stream"):
        return AWSResponse(url, 200, {"content-type": EVENTSTREAM}, _Raw(BEDROCK_STREAM))
    body = BEDROCK_CONVERSE if url.endswith("/converse") else BEDROCK_INVOKE
    return AWSResponse(
        url, 200, {"content-type": "application/json", "content-length": str(len(body))}, _Raw(body)
    )


# --- the calls ----------------------------------------------------------------------------------------


def _calls() -> list[Callable[[int], Any]]:
    """The provider calls of one cycle; each takes the cycle number."""
    from langchain_openai import ChatOpenAI

    oai = openai.OpenAI(
        api_key="k",
        base_url="https://api.openai.com/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(_openai_handler)),
    )
    claude = anthropic.Anthropic(
        api_key="k",
        base_url="https://api.anthropic.com",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(_anthropic_handler)),
    )
    local = ollama.Client(host="http://127.0.0.1:11434", transport=httpx.MockTransport(_ollama_handler))
    bedrock = boto3.session.Session().client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="AKIDLONGRUN", aws_secret_access_key="x"
    )
    bedrock.meta.events.register("before-send.bedrock-runtime", _bedrock_send)
    fake = fake_chain("a fake answer in a few words")
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    chat = ChatOpenAI(
        model="gpt-long",
        api_key="k",
        base_url="https://api.openai.com/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(_openai_handler)),
    )
    chain = ChatPromptTemplate.from_messages([("user", "{q}")]) | chat | StrOutputParser()
    converse = [{"role": "user", "content": [{"text": "hello " * 20}]}]
    claude_body = json.dumps(
        {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 20, "messages": MESSAGES}
    )
    args = {"model": "claude-long", "max_tokens": 20, "messages": MESSAGES}

    def read(stream: Any, cycle: int) -> None:
        """Read to the end, or (every other cycle) take one chunk and drop the stream."""
        if cycle % 2:
            next(iter(stream))
            return
        for _ in stream:
            pass

    def anthropic_stream(cycle: int) -> None:
        if cycle % 2:
            with claude.messages.stream(**args) as helper:
                helper.get_final_text()
        else:
            read(claude.messages.create(**args, stream=True), 0)

    return [
        lambda c: oai.chat.completions.create(model="m", messages=MESSAGES),
        lambda c: read(oai.chat.completions.create(model="m", messages=MESSAGES, stream=True), c),
        lambda c: claude.messages.create(**args),
        anthropic_stream,
        lambda c: bedrock.converse(modelId=BEDROCK_MODEL, messages=converse),
        lambda c: read(bedrock.converse_stream(modelId=BEDROCK_MODEL, messages=converse)["stream"], c),
        lambda c: bedrock.invoke_model(modelId=BEDROCK_CLAUDE, body=claude_body)["body"].read(),
        lambda c: local.chat(model="llama-long", messages=MESSAGES, stream=False),
        lambda c: read(local.chat(model="llama-long", messages=MESSAGES, stream=True), c),
        lambda c: fake.invoke({"q": "hello"}),
        lambda c: read(fake.stream({"q": "hello"}), 0),
        lambda c: chain.invoke({"q": "hello"}),
    ]


def _manual_call(i: int) -> None:
    with genai_observe.llm_call(provider="acme", model=f"m{i % 5}", messages=MESSAGES) as call:
        call.set_response(content="ok", input_tokens=5, output_tokens=1, finish_reason="stop")


def _registries(handle: Any) -> dict[str, int]:
    """Every per-process registry of ours, by size."""
    handler = LangChainInstrumentor().handler
    stats = handle._stats
    return {
        "reported internal errors": len(_diagnostics._reported),
        "metric points queued": len(_metrics.METRICS._queue),
        "openai clients": len(openai_ad._client_cache),
        "anthropic clients": len(anthropic_ad._client_cache),
        "ollama servers": len(ollama_ad._servers),
        "ollama converted tools": len(ollama_ad._converted),
        "client endpoints": host_port.cache_info().currsize,
        "bedrock model ids": bedrock_ad.resolve_model.cache_info().currsize,
        "langchain runs": handler.tracked_runs() if handler is not None else -1,
        "manual recorders": len(_manual._recorders),
        "export report keys": len(stats._unreported) + len(stats._last_report),
        "live operations and stream proxies": _live(Invocation, SyncStreamProxy, AsyncStreamProxy),
    }


def _live(*types: type) -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, types))


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
@pytest.mark.usefixtures("aws_env")
def test_hundred_thousand_calls_keep_memory_flat(record_property: Any) -> None:
    # A sink that discards (the test receiver keeps every request, which would be measured too).
    sink = OTLPSink()
    reported_before = set(_diagnostics._reported)
    handle = genai_observe.init(endpoint=sink.url, capture_content=True, metric_export_interval_ms=500)
    calls = _calls()  # imports every SDK the calls use: their instrumentations are then active
    assert set(handle.instrumented) >= {"openai", "anthropic", "bedrock", "ollama", "langchain"}
    manual_per_cycle = CYCLE - len(calls)
    assert manual_per_cycle > 0

    def run(total: int) -> int:
        made = 0
        for cycle in itertools.count():
            for call in calls:
                call(cycle)
            for i in range(manual_per_cycle):
                _manual_call(i)
            made += CYCLE
            if made >= total:
                return made

    run(WARMUP)
    gc.collect()  # abandoned streams in reference cycles end here (and queue their metric points)
    handle.force_flush()
    # Failures of ours while calling (not the instrumentation's setup, e.g. a method this SDK
    # version does not have): none.
    assert {e for e in set(_diagnostics._reported) - reported_before if ".wrap:" not in e} == set()
    before = _registries(handle)
    threads_before = threading.active_count()
    rss_before = _rss_bytes()
    made = run(TOTAL // 2)
    gc.collect()
    handle.force_flush()
    half = _rss_bytes() - rss_before
    made += run(TOTAL - made)
    gc.collect()
    handle.force_flush()
    growth = _rss_bytes() - rss_before
    after = _registries(handle)
    dropped = handle.stats()["dropped"]
    threads_after = threading.active_count()
    sdk_calls = made // CYCLE * len(calls)
    record_property("rss_growth_bytes", growth)
    record_property("rss_growth_first_half_bytes", half)
    record_property("calls", made)
    record_property("provider_sdk_calls", sdk_calls)
    print(
        f"\nRSS growth over {made} calls ({sdk_calls} through the provider SDKs): {growth / 1e6:.2f} MB"
        f" ({half / 1e6:.2f} MB after the first half); dropped on full queues {dropped}; registries {after}"
    )
    record_property("dropped", dropped)
    genai_observe.shutdown()
    sink.stop()
    assert made == TOTAL
    # Bounded, not flat from the first call: the span and log export queues (2,048 items each, a few
    # KB per item with content on) and the metric queue reach their high-water mark at some point of
    # the run, and the allocator keeps that memory. A leak grows with the calls: the second half.
    assert growth < 32 * 1024 * 1024, f"RSS grew by {growth / 1e6:.1f} MB"
    assert growth - half < 8 * 1024 * 1024, f"RSS grew by {(growth - half) / 1e6:.1f} MB in the second half"
    # No registry of ours grows with the number of calls, and the run hit no internal error.
    # (The export stats keep one rate-limited warning key per signal and kind: at most 6.)
    assert after.pop("export report keys") <= 6
    before.pop("export report keys")
    assert after.keys() == before.keys()
    grown = {k: (before[k], after[k]) for k in before if after[k] > before[k]}
    assert not grown, grown  # a cache may shrink when an earlier test's client is collected
    assert after["metric points queued"] == 0
    assert after["langchain runs"] == 0
    # (Client caches are compared with their size after warm-up above, not with a fixed number:
    # clients that earlier tests of the same process created are still alive in the whole suite.)
    assert after["manual recorders"] <= 1
    assert threads_after <= threads_before
