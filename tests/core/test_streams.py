"""Stream proxies: transparent to the caller, and the span ends exactly once however it stops."""

from __future__ import annotations

import asyncio
import bisect
import copy
import gc
import pickle
import time
from collections.abc import AsyncIterator, Iterator
from itertools import pairwise
from typing import Any

import pytest
from opentelemetry.trace import StatusCode

from genai_observe._core import semconv as sc
from genai_observe._core.record import Choice, LLMCall, Usage
from genai_observe._core.recorder import Invocation
from genai_observe._core.streams import AsyncStreamProxy, SyncStreamProxy
from genai_observe.instrumentation._kit.calls import run_async, run_sync
from tests.conftest import Telemetry


class SDKStream:
    """Shaped like the SDKs' Stream: iterator, context manager, close(), extra helpers."""

    def __init__(self, chunks: list[str], fail_after: int | None = None) -> None:
        self._chunks = chunks
        self._fail_after = fail_after
        self._it = self._gen()
        self.closed = False
        self.response = "http-response"

    def _gen(self) -> Iterator[str]:
        for i, chunk in enumerate(self._chunks):
            if self._fail_after is not None and i == self._fail_after:
                raise ConnectionError("peer closed connection")
            yield chunk

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        return next(self._it)

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> SDKStream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def helper(self) -> str:
        return "helper works"


class AsyncSDKStream:
    def __init__(self, chunks: list[str], delay: float = 0.0, fail_after: int | None = None) -> None:
        self._chunks = chunks
        self._delay = delay
        self._fail_after = fail_after
        self._it = self._gen()
        self.closed = False

    async def _gen(self) -> AsyncIterator[str]:
        for i, chunk in enumerate(self._chunks):
            if self._fail_after is not None and i == self._fail_after:
                raise ConnectionError("peer closed connection")
            await asyncio.sleep(self._delay)
            yield chunk

    def __aiter__(self) -> AsyncSDKStream:
        return self

    async def __anext__(self) -> str:
        return await self._it.__anext__()

    async def close(self) -> None:
        self.closed = True

    async def __aenter__(self) -> AsyncSDKStream:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


class Accumulator:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def on_chunk(self, chunk: str) -> None:
        self.parts.append(chunk)

    def fill(self, call: LLMCall) -> None:
        call.choices = [Choice(content="".join(self.parts), finish_reason="stop" if self.parts else None)]
        call.usage = Usage(input_tokens=3, output_tokens=len(self.parts))


def build() -> LLMCall:
    return LLMCall(request_model="m", stream=True)


def sync_stream(telemetry: Telemetry, stream: Any) -> Any:
    acc = Accumulator()

    def on_result(inv: Invocation, result: Any) -> Any:
        return SyncStreamProxy(result, inv, acc.on_chunk, acc.fill)

    return run_sync(telemetry.recorder(), build, lambda: stream, (), {}, on_result)


async def async_stream(telemetry: Telemetry, stream: Any) -> Any:
    acc = Accumulator()

    async def create() -> Any:
        return stream

    def on_result(inv: Invocation, result: Any) -> Any:
        return AsyncStreamProxy(result, inv, acc.on_chunk, acc.fill)

    return await run_async(telemetry.recorder(), build, create, (), {}, on_result)


def only_span(telemetry: Telemetry) -> Any:
    spans = telemetry.spans()
    assert len(spans) == 1, "span must end exactly once"
    return spans[0]


def test_exhausted_stream_is_transparent_and_ends_once(telemetry: Telemetry) -> None:
    raw = SDKStream(["a", "b", "c"])
    proxy = sync_stream(telemetry, raw)
    assert isinstance(proxy, SDKStream)  # isinstance still works
    assert proxy.helper() == "helper works" and proxy.response == "http-response"
    assert telemetry.spans() == []  # not ended before the stream is consumed
    assert list(proxy) == ["a", "b", "c"]
    assert list(proxy) == []  # exhausted stays exhausted, no second span
    span = only_span(telemetry)
    a = dict(span.attributes or {})
    assert a["gen_ai.completion.0.content"] == "abc"
    assert a["gen_ai.usage.output_tokens"] == 3
    assert a[sc.STREAM_END_REASON] == "exhausted"
    metrics = telemetry.metrics()
    assert metrics[sc.METRIC_TIME_TO_FIRST_CHUNK][0].count == 1
    assert metrics[sc.METRIC_TIME_PER_OUTPUT_CHUNK][0].count == 2


# Chunk arrival times (seconds after the call) chosen so the gaps fall in different buckets.
ARRIVALS = [0.5, 0.505, 0.53, 0.6, 1.0, 2.5, 2.5]


def _per_chunk_points(telemetry: Telemetry) -> tuple[Any, Any, Invocation]:
    invocations: list[Invocation] = []
    acc = Accumulator()

    def on_result(inv: Invocation, result: Any) -> Any:
        invocations.append(inv)
        return SyncStreamProxy(result, inv, acc.on_chunk, acc.fill)

    proxy = run_sync(telemetry.recorder(), build, lambda: SDKStream(list("abcdefg")), (), {}, on_result)
    list(proxy)
    metrics = telemetry.metrics()
    (ttfc,) = metrics[sc.METRIC_TIME_TO_FIRST_CHUNK]
    (tpoc,) = metrics[sc.METRIC_TIME_PER_OUTPUT_CHUNK]
    return ttfc, tpoc, invocations[0]


def test_time_per_output_chunk_has_one_value_per_gap(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The histogram holds exactly the gaps between consecutive chunks: count, sum, min, max, buckets."""
    from genai_observe._core import streams as _streams

    arrivals = [time.perf_counter() + t for t in ARRIVALS]  # in the future: the call starts now
    clock = iter(arrivals)
    monkeypatch.setattr(_streams, "_perf_counter", lambda: next(clock))
    ttfc, tpoc, inv = _per_chunk_points(telemetry)
    gaps = [b - a for a, b in pairwise(arrivals)]
    assert tpoc.count == len(gaps) == 6
    assert tpoc.sum == pytest.approx(sum(gaps), rel=1e-12)
    assert (tpoc.min, tpoc.max) == (min(gaps), max(gaps))
    assert list(tpoc.explicit_bounds) == list(sc.DURATION_BUCKETS)
    expected = [0] * (len(sc.DURATION_BUCKETS) + 1)
    for gap in gaps:
        expected[bisect.bisect_left(sc.DURATION_BUCKETS, gap)] += 1
    assert list(tpoc.bucket_counts) == expected
    assert inv.chunk_gaps == gaps
    # Time to first chunk: from the call's start to the first arrival, once.
    assert ttfc.count == 1
    assert ttfc.sum == pytest.approx(arrivals[0] - inv.started, rel=1e-12)


def test_time_per_output_chunk_with_the_real_clock(telemetry: Telemetry) -> None:
    _ttfc, tpoc, inv = _per_chunk_points(telemetry)
    gaps = inv.chunk_gaps
    assert gaps is not None and tpoc.count == len(gaps) == 6
    assert tpoc.sum == pytest.approx(sum(gaps), rel=1e-12) and all(g >= 0 for g in gaps)


def test_break_then_garbage_collected_ends_once(telemetry: Telemetry) -> None:
    proxy = sync_stream(telemetry, SDKStream(["a", "b", "c"]))
    for chunk in proxy:
        assert chunk == "a"
        break
    assert telemetry.spans() == []
    del proxy, chunk
    gc.collect()
    span = only_span(telemetry)
    assert (span.attributes or {})[sc.STREAM_END_REASON] == "abandoned"
    assert (span.attributes or {})["gen_ai.completion.0.content"] == "a"


def test_close_early_ends_once_and_closes_the_sdk_stream(telemetry: Telemetry) -> None:
    raw = SDKStream(["a", "b"])
    proxy = sync_stream(telemetry, raw)
    next(proxy)
    proxy.close()
    assert raw.closed
    proxy.close()
    del proxy
    gc.collect()
    assert (only_span(telemetry).attributes or {})[sc.STREAM_END_REASON] == "closed"


def test_context_manager_and_consumer_exception(telemetry: Telemetry) -> None:
    raw = SDKStream(["a", "b", "c"])
    with pytest.raises(ValueError, match="consumer bug"), sync_stream(telemetry, raw) as stream:
        for _chunk in stream:
            raise ValueError("consumer bug")
    assert raw.closed
    span = only_span(telemetry)
    assert span.status.status_code is not StatusCode.ERROR  # the provider did not fail
    assert (span.attributes or {})[sc.STREAM_END_REASON] == "closed"


def test_stream_failing_midway_records_error_and_reraises(telemetry: Telemetry) -> None:
    proxy = sync_stream(telemetry, SDKStream(["a", "b", "c"], fail_after=2))
    got = []
    with pytest.raises(ConnectionError, match="peer closed"):
        for chunk in proxy:
            got.append(chunk)
    assert got == ["a", "b"]
    span = only_span(telemetry)
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "ConnectionError"
    assert (span.attributes or {})["gen_ai.completion.0.content"] == "ab"  # what arrived is kept
    del proxy
    gc.collect()
    assert len(telemetry.spans()) == 1


def test_plain_generator_and_iterable_without_next(telemetry: Telemetry) -> None:
    def gen() -> Iterator[str]:
        yield from ["x", "y"]

    assert list(sync_stream(telemetry, gen())) == ["x", "y"]
    assert list(sync_stream(telemetry, ["p", "q"])) == ["p", "q"]  # iterable, not an iterator
    assert len(telemetry.spans()) == 2


def test_chunk_handler_bug_does_not_break_iteration(telemetry: Telemetry) -> None:
    def on_result(inv: Invocation, result: Any) -> Any:
        return SyncStreamProxy(result, inv, lambda c: 1 / 0, None)

    proxy = run_sync(telemetry.recorder(), build, lambda: SDKStream(["a", "b"]), (), {}, on_result)
    assert list(proxy) == ["a", "b"]
    assert len(telemetry.spans()) == 1


async def test_async_exhausted(telemetry: Telemetry) -> None:
    proxy = await async_stream(telemetry, AsyncSDKStream(["a", "b"]))
    assert isinstance(proxy, AsyncSDKStream)
    assert [c async for c in proxy] == ["a", "b"]
    assert (only_span(telemetry).attributes or {})["gen_ai.completion.0.content"] == "ab"


async def test_async_context_manager_break(telemetry: Telemetry) -> None:
    raw = AsyncSDKStream(["a", "b", "c"])
    async with await async_stream(telemetry, raw) as stream:
        async for _ in stream:
            break
    assert raw.closed
    assert (only_span(telemetry).attributes or {})[sc.STREAM_END_REASON] == "closed"


async def test_async_close_and_error(telemetry: Telemetry) -> None:
    raw = AsyncSDKStream(["a", "b"])
    proxy = await async_stream(telemetry, raw)
    await proxy.__anext__()
    await proxy.close()
    assert raw.closed
    failing = await async_stream(telemetry, AsyncSDKStream(["a", "b"], fail_after=1))
    with pytest.raises(ConnectionError):
        async for _ in failing:
            pass
    spans = telemetry.spans()
    assert len(spans) == 2
    assert spans[1].status.status_code is StatusCode.ERROR


async def test_async_task_cancelled_midstream_ends_once(telemetry: Telemetry) -> None:
    proxy = await async_stream(telemetry, AsyncSDKStream(["a", "b", "c"], delay=0.2))

    async def consume() -> None:
        async for _ in proxy:
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    span = only_span(telemetry)
    assert (span.attributes or {})[sc.STREAM_END_REASON] == "cancelled"
    assert span.status.status_code is not StatusCode.ERROR


def test_unbounded_stream_keeps_bounded_timing_state(telemetry: Telemetry) -> None:
    def endless() -> Iterator[int]:
        yield from range(20_000)

    inv_holder: list[Invocation] = []

    def on_result(inv: Invocation, result: Any) -> Any:
        inv_holder.append(inv)
        return SyncStreamProxy(result, inv, None, None)

    proxy = run_sync(telemetry.recorder(), build, endless, (), {}, on_result)
    for _ in proxy:
        pass
    gaps = inv_holder[0].chunk_gaps
    assert gaps is not None and len(gaps) == 8192  # the first 8192 gaps; later chunks not timed


class PicklableStream:
    """A stream whose state can be copied and pickled (the SDKs' hold clients with locks)."""

    def __init__(self, chunks: list[str]) -> None:
        self.chunks = list(chunks)

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if not self.chunks:
            raise StopIteration
        return self.chunks.pop(0)


OPERATIONS = {
    "copy": copy.copy,
    "deepcopy": copy.deepcopy,
    "pickle": lambda s: pickle.loads(pickle.dumps(s)),
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
@pytest.mark.parametrize("make", [lambda: iter(["a", "b", "c"]), lambda: PicklableStream(["a", "b", "c"])])
def test_copy_deepcopy_and_pickle_act_on_the_sdk_object(
    telemetry: Telemetry, make: Any, operation: str
) -> None:
    def read(stream: Any) -> tuple[type, list[str], list[str]]:
        next(stream)
        duplicate = OPERATIONS[operation](stream)
        assert telemetry.spans() == []  # copying neither ends nor records anything
        return type(duplicate), list(duplicate), list(stream)

    plain = read(make())
    # The copy is the SDK's object (uninstrumented), at the same position, sharing what it shares.
    assert read(sync_stream(telemetry, make())) == plain
    assert (only_span(telemetry).attributes or {})[sc.STREAM_END_REASON] == "exhausted"


def test_what_the_sdk_object_cannot_copy_raises_its_own_error(telemetry: Telemetry) -> None:
    proxy = sync_stream(telemetry, (c for c in ["a"]))
    for operation in (copy.copy, copy.deepcopy, pickle.dumps):
        with pytest.raises(TypeError, match="cannot pickle 'generator' object"):
            operation(proxy)
    assert list(proxy) == ["a"]


def test_break_then_resume_by_loop_and_by_next_reads_every_chunk_once(telemetry: Telemetry) -> None:
    """A ``for`` loop runs on a generator over the stream (issue 19); leaving that loop must not end
    the stream, and a later loop or ``next()`` goes on where it stopped, every chunk read once."""
    proxy = sync_stream(telemetry, SDKStream(["a", "b", "c", "d"]))
    for chunk in proxy:
        assert chunk == "a"
        break
    gc.collect()  # the first loop's generator is gone: that is no end of the stream
    assert telemetry.spans() == []
    assert next(proxy) == "b"
    assert list(proxy) == ["c", "d"]
    span = only_span(telemetry)
    assert (span.attributes or {})[sc.STREAM_END_REASON] == "exhausted"
    assert (span.attributes or {})["gen_ai.completion.0.content"] == "abcd"
    assert list(proxy) == []  # iterating an exhausted stream again ends nothing twice
    assert len(telemetry.spans()) == 1


async def test_async_break_then_resume_reads_every_chunk_once(telemetry: Telemetry) -> None:
    proxy = await async_stream(telemetry, AsyncSDKStream(["a", "b", "c", "d"]))
    async for chunk in proxy:
        assert chunk == "a"
        break
    gc.collect()
    await asyncio.sleep(0)  # let the event loop finalize the abandoned async generator
    assert telemetry.spans() == []
    assert await proxy.__anext__() == "b"
    assert [c async for c in proxy] == ["c", "d"]
    span = only_span(telemetry)
    assert (span.attributes or {})[sc.STREAM_END_REASON] == "exhausted"
    assert (span.attributes or {})["gen_ai.completion.0.content"] == "abcd"
