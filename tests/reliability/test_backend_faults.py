"""A broken telemetry backend never hurts the app: no exception, no blocking, bounded memory.

The bounds here are structural (an app call must not wait for an export timeout; shutdown must not
exceed its own timeout by much), not speed measurements: benchmarks/ measures speed.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import genai_observe
from genai_observe._core import metrics as _metrics
from genai_observe._pipeline import exporters as _export
from tests.rig.otlp_receiver import OTLPReceiver

EXPORT_TIMEOUT = 2.0
SHUTDOWN_TIMEOUT = 2.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_call(i: int) -> None:
    with genai_observe.llm_call(
        provider="openai", model=f"m{i % 3}", messages=[{"role": "user", "content": "x" * 200}]
    ) as call:
        call.set_response(content="y" * 200, input_tokens=10, output_tokens=20, finish_reason="stop")


FAULTS: list[tuple[str, dict[str, Any]]] = [
    ("refused", {}),
    ("dns", {}),
    ("400", {"mode": "status", "status": 400}),
    ("413", {"mode": "status", "status": 413}),
    ("429", {"mode": "429", "retry_after": 30}),
    ("500", {"mode": "status", "status": 500}),
    ("503", {"mode": "status", "status": 503, "retry_after": 1}),
    ("hang", {"mode": "hang"}),
    ("slow", {"mode": "slow", "delay": 1.5}),
]


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    name, spec = request.param
    if name == "refused":
        yield f"http://127.0.0.1:{_free_port()}"
        return
    if name == "dns":
        yield "http://collector.genai-observe.invalid:4318"  # .invalid never resolves
        return
    with OTLPReceiver() as receiver:
        spec = dict(spec)
        receiver.set_response(spec.pop("mode"), **spec)
        yield receiver.url


@pytest.mark.parametrize("backend", FAULTS, indirect=True, ids=[f[0] for f in FAULTS])
def test_app_unaffected_by_backend_fault(backend: str) -> None:
    handle = genai_observe.init(
        endpoint=backend,
        export_timeout=EXPORT_TIMEOUT,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        metric_export_interval_ms=200,
        capture_content="SPAN_AND_EVENT",
    )
    started = time.monotonic()
    slowest = 0.0
    for i in range(300):
        t0 = time.monotonic()
        one_call(i)  # must not raise
        slowest = max(slowest, time.monotonic() - t0)
    handle.force_flush(timeout=0.5)  # a flush attempt against the broken backend
    elapsed = time.monotonic() - started
    # No app call waited for an export (each would take EXPORT_TIMEOUT); generous on purpose.
    assert slowest < EXPORT_TIMEOUT / 2, f"a call took {slowest:.2f}s"
    began = time.monotonic()
    genai_observe.shutdown()
    took = time.monotonic() - began
    # One deadline for all three providers (they shut down in parallel).
    assert took < SHUTDOWN_TIMEOUT + 1.5, f"shutdown took {took:.1f}s"
    assert elapsed < 60


def test_queues_stay_bounded_with_a_hanging_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "256")
    monkeypatch.setenv("OTEL_BLRP_MAX_QUEUE_SIZE", "256")
    with OTLPReceiver() as receiver:
        receiver.set_response("hang")
        handle = genai_observe.init(
            endpoint=receiver.url,
            export_timeout=EXPORT_TIMEOUT,
            capture_content="SPAN_AND_EVENT",
            shutdown_timeout=1,
        )
        for i in range(3000):
            one_call(i)
        stats = handle.stats()
        switch = handle.tracer_provider._active_span_processor._span_processors[0]
        processor = switch.inner  # init() swaps exporters inside one switchable processor
        queued = len(processor._batch_processor._queue)
        genai_observe.shutdown(timeout=1)
    assert queued <= 256
    assert stats["dropped"]["traces"] > 0 and stats["dropped"]["logs"] > 0
    assert len(_metrics.METRICS._queue) <= _metrics.MetricsWorker.MAX_PENDING


def test_metrics_queue_is_bounded_and_counts_drops(monkeypatch: pytest.MonkeyPatch) -> None:
    worker = _metrics.MetricsWorker()
    monkeypatch.setattr(_metrics.MetricsWorker, "MAX_PENDING", 10)
    monkeypatch.setattr(worker, "_start", lambda: True)  # "started", yet no thread: nothing drains
    for _ in range(25):
        worker.submit(lambda: None)
    assert len(worker._queue) == 10 and worker.dropped == 15
    worker.drain()
    assert len(worker._queue) == 0


def test_concurrent_callers_while_backend_hangs() -> None:
    with OTLPReceiver() as receiver:
        receiver.set_response("hang")
        genai_observe.init(endpoint=receiver.url, export_timeout=EXPORT_TIMEOUT, shutdown_timeout=1)
        errors: list[BaseException] = []

        def worker(n: int) -> None:
            try:
                for i in range(200):
                    one_call(n * 1000 + i)
            except BaseException as exc:  # pragma: no cover - the assertion below reports it
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        genai_observe.shutdown(timeout=1)
    assert errors == []
    assert not any(t.is_alive() for t in threads)


@pytest.mark.parametrize("status", [400, 413])
def test_refused_exports_log_one_line_per_signal(
    status: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A backend refusing every request: the SDK exporters' "Failed to export" error, once per
    signal per minute, then with the count of the lines held back (issue 13, item 13)."""
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    monkeypatch.setenv("OTEL_BLRP_SCHEDULE_DELAY", "50")
    caplog.set_level(logging.INFO)

    def failed() -> list[str]:
        """This backend's refusals (an earlier test's exporter may still be retrying elsewhere)."""
        messages = [r.getMessage() for r in caplog.records]
        return [m for m in messages if m.startswith("Failed to export") and f"code: {status}," in m]

    with OTLPReceiver() as receiver:
        receiver.set_response("status", status=status)
        handle = genai_observe.init(
            endpoint=receiver.url, metric_export_interval_ms=100, capture_content="SPAN_AND_EVENT"
        )
        deadline = time.monotonic() + 2.0
        calls = 0
        while time.monotonic() < deadline:
            one_call(calls)
            calls += 1
            time.sleep(0.01)
        refused = len(receiver.requests)
        lines = failed()
        assert refused >= 15  # every signal exported many times, each refused ...
        assert 1 <= len(lines) <= 3, lines  # ... and each signal said so once
        assert {line.split()[3] for line in lines} <= {"spans", "metrics", "logs"}

        # Once the interval has passed, the next line carries the count of those held back.
        monkeypatch.setattr(_export.FailedExportLimiter, "every_s", 0.5)
        time.sleep(0.6)
        for i in range(20):
            one_call(i)
            time.sleep(0.02)
        handle.force_flush(2)
        handle.shutdown()
    summaries = [line for line in failed()[len(lines) :] if "more such failure(s)" in line]
    assert summaries, failed()
    assert f"code: {status}" in summaries[0]
