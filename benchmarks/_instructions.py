"""Instructions per call, counted with ``valgrind --tool=callgrind`` (docs/performance.md).

For each scenario and side, a child interpreter makes N calls under callgrind, another M calls;
(I_M - I_N) / (M - N) is the cost of one call with start-up, imports and warm-up cancelled. Every
thread of the child is counted, so work moved to a background thread (metric recording, span
export) still counts. Instruction counts do not move with the machine's load, unlike wall time.

The sides:

- ``bare``: the SDK call, no telemetry at all (no providers, nothing instrumented).
- ``ours``: the same call after ``genai_observe.init()`` (content capture on) with its own
  pipeline, as an application gets it: batch processors, the periodic metric reader and the
  in-process time_per_output_chunk aggregation, up to OTLP exporters that discard what they are
  given (export encoding is left out on every side).
- ``floor``: the bare call, then, through the same providers, the SDK calls that make the spans
  (same names, kinds and attributes: request attributes at start, the rest set before ``end()``)
  and the metric records (same instruments, attribute sets and number of records, dicts built once)
  that ``ours`` makes. It is what any instrumentation emitting these signals through the SDK pays.

``python -m benchmarks.run --instructions [--only openai,...] [--calls N,M] [--stream-calls N,M]``
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ._harness import Scenario, consume

SIDES = ("bare", "ours", "floor")
SUITES = ("openai", "anthropic", "bedrock", "ollama")
# The scenarios of issue 19's table; the wall-clock suite runs more.
SCENARIOS = (
    "openai.chat",
    "openai.chat.stream",
    "openai.embeddings",
    "openai.responses",
    "anthropic.messages",
    "anthropic.messages.stream",
    "bedrock.converse",
    "bedrock.converse_stream",
    "ollama.chat",
    "ollama.chat.stream",
)
WARMUP = 3  # calls before the counted ones, in every child (they cancel out anyway)

_TOTAL = re.compile(rb"^(?:summary|totals):\s*(\d+)", re.MULTILINE)


def parse_total(text: bytes) -> int:
    """The instruction total of a callgrind output file (its ``summary:`` or ``totals:`` line)."""
    match = _TOTAL.search(text)
    if match is None:
        raise ValueError("no summary: or totals: line in the callgrind output")
    return int(match.group(1))


def per_call(n: int, total_n: int, m: int, total_m: int) -> float:
    """Instructions per call from two runs of n and m calls: start-up and warm-up cancel."""
    if m <= n:
        raise ValueError("m must be larger than n")
    return (total_m - total_n) / (m - n)


def find_scenario(name: str) -> Scenario:
    """The scenario called ``name``; imports only its own suite (and so only its own SDK)."""
    suite = name.split(".", 1)[0]
    module = __import__(f"benchmarks.bench_{suite}", fromlist=["scenarios"])
    for found in module.scenarios():
        if found.name == name:
            return found  # type: ignore[no-any-return]
    raise KeyError(name)


# --- the child: runs under callgrind ---------------------------------------------------------


def _providers() -> tuple[Any, Any, Any]:
    """SDK providers as init() builds them (batch processors), with exporters that discard."""
    from opentelemetry import _logs, metrics, trace
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import (
        BatchLogRecordProcessor,
        LogRecordExporter,
        LogRecordExportResult,
    )
    from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
    from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Spans(SpanExporter):
        exported = 0

        def export(self, spans: Any) -> SpanExportResult:
            Spans.exported += len(spans)
            return SpanExportResult.SUCCESS

    class Logs(LogRecordExporter):
        def export(self, batch: Any) -> LogRecordExportResult:
            return LogRecordExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

        def force_flush(self, timeout_millis: int = 30_000) -> bool:
            return True

    resource = Resource.create({"service.name": "bench"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(Spans()))
    reader = InMemoryMetricReader(  # DELTA and explicit buckets, as init()'s exporter asks
        preferred_temporality=dict.fromkeys((Counter, Histogram), AggregationTemporality.DELTA),
        preferred_aggregation={Histogram: ExplicitBucketHistogramAggregation()},
    )
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(Logs()))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    _logs.set_logger_provider(logger_provider)
    tracer_provider.exported = Spans  # type: ignore[attr-defined]
    return tracer_provider, meter_provider, reader


@dataclass
class _Replay:
    """The SDK calls that make what one instrumented call made: the floor."""

    spans: list[tuple[str, Any, dict[str, Any], dict[str, Any]]]
    records: list[tuple[Callable[..., None], float, dict[str, Any]]]

    def __call__(self, tracer: Any) -> None:
        for name, kind, start, end in self.spans:
            span = tracer.start_span(name, kind=kind, attributes=start)
            span.set_attributes(end)
            span.end()
        for record, value, attributes in self.records:
            record(value, attributes)


def _capture(scenario: Scenario, call: Callable[[bool], Any], providers: tuple[Any, Any, Any]) -> _Replay:
    """Make one instrumented call and note its spans (attributes at start and at end) and records."""
    from opentelemetry.sdk.trace import SpanProcessor

    from genai_observe._core.metrics import METRICS
    from genai_observe._core.modes import CaptureMode

    tracer_provider, meter_provider, reader = providers
    started: dict[int, dict[str, Any]] = {}
    spans: list[tuple[str, Any, dict[str, Any], dict[str, Any]]] = []

    class Capture(SpanProcessor):
        def on_start(self, span: Any, parent_context: Any = None) -> None:
            started[span.context.span_id] = dict(span.attributes or {})

        def on_end(self, span: Any) -> None:
            if span.instrumentation_scope.name != "genai_observe":
                return
            start = started.pop(span.context.span_id, {})
            end = {k: v for k, v in (span.attributes or {}).items() if k not in start}
            spans.append((span.name, span.kind, start, end))

    capture = Capture()
    tracer_provider.add_span_processor(capture)
    reader.get_metrics_data()  # start from empty (DELTA)
    instrumentor = scenario.instrumentor()
    instrumentor.instrument(
        tracer_provider=tracer_provider, meter_provider=meter_provider, capture=CaptureMode.SPAN_ONLY
    )
    try:
        _once(scenario, call, True)
    finally:
        instrumentor.uninstrument()
    METRICS.drain()
    data = reader.get_metrics_data()
    capture.on_start = lambda *a, **k: None  # type: ignore[method-assign]
    capture.on_end = lambda *a, **k: None  # type: ignore[method-assign]
    meter = meter_provider.get_meter("floor")
    records: list[tuple[Callable[..., None], float, dict[str, Any]]] = []
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            if scope_metrics.scope.name != "genai_observe":
                continue
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    attributes = dict(point.attributes or {})
                    bounds = getattr(point, "explicit_bounds", None)
                    if bounds is not None:
                        histogram = meter.create_histogram(
                            metric.name, unit=metric.unit, explicit_bucket_boundaries_advisory=list(bounds)
                        )
                        value = point.sum / point.count if point.count else 0.0
                        records += [(histogram.record, value, attributes)] * point.count
                    elif point.value:
                        counter = meter.create_counter(metric.name, unit=metric.unit)
                        records.append((counter.add, point.value, attributes))
    if not spans:
        raise RuntimeError(f"{scenario.name}: the instrumented call made no span")
    return _Replay(spans, records)


def _once(scenario: Scenario, call: Callable[[bool], Any], instrumented: bool) -> None:
    result = call(instrumented)
    if scenario.chunks:
        consume(result)


# Valgrind runs the child about 50 times slower than natively, so timers fire about 50 times as
# often per call: the GIL's forced hand-over between threads (every 5 ms) and the metrics worker's
# wake-up (every 100 ms). Both are scaled by that factor in every child, so the counts hold the
# work itself, with about as many hand-overs and wake-ups per call as a native run has.
SLOWDOWN = 50


def _scale_timers() -> None:
    from genai_observe._core.metrics import METRICS

    sys.setswitchinterval(sys.getswitchinterval() * SLOWDOWN)
    METRICS.INTERVAL_S = METRICS.INTERVAL_S * SLOWDOWN  # type: ignore[misc]


def child(name: str, side: str, calls: int) -> dict[str, Any]:
    """Make ``calls`` calls of scenario ``name`` on ``side`` (after WARMUP more); flush everything."""
    _scale_timers()
    scenario = find_scenario(name)
    call = scenario.setup()
    providers: tuple[Any, Any, Any] | None = None
    replay: _Replay | None = None
    tracer: Any = None
    if side == "floor":
        providers = _providers()
        replay = _capture(scenario, call, providers)
        tracer = providers[0].get_tracer("floor")
    elif side == "ours":
        import genai_observe

        _discard_otlp_exports()
        handle = genai_observe.init(
            service_name="bench",
            endpoint="http://127.0.0.1:9",  # never reached: the OTLP exporters discard
            capture_content=True,
            instrumentations=[scenario.instrumentation],
            metric_export_interval_ms=3_600_000,
        )
    instrumented = side == "ours"
    for _ in range(WARMUP + calls):
        _once(scenario, call, instrumented)
        if replay is not None:
            replay(tracer)
    out: dict[str, Any] = {"scenario": name, "side": side, "calls": calls}
    if providers is not None:
        from genai_observe._core.metrics import METRICS

        # Everything the calls left to background threads is done inside the counted run.
        providers[0].force_flush()
        METRICS.drain()
        providers[2].get_metrics_data()
        out["spans"] = providers[0].exported.exported
    elif side == "ours":
        handle.force_flush()  # spans, the metric collection (and the worker's drain), events
        out["spans"] = _DISCARDED["spans"]
    return out


_DISCARDED = {"spans": 0}


def _discard_otlp_exports() -> None:
    """``ours`` runs init()'s own pipeline (batch processors, the periodic metric reader, the
    in-process time_per_output_chunk aggregation) up to the OTLP exporters, which discard what
    they are given: export encoding and HTTP are left out, as on the floor side."""
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs.export import LogRecordExportResult
    from opentelemetry.sdk.metrics.export import MetricExportResult
    from opentelemetry.sdk.trace.export import SpanExportResult

    def spans(self: Any, batch: Any, *args: Any, **kwargs: Any) -> SpanExportResult:
        _DISCARDED["spans"] += len(batch)
        return SpanExportResult.SUCCESS

    OTLPSpanExporter.export = spans  # type: ignore[method-assign]
    OTLPMetricExporter.export = lambda *a, **k: MetricExportResult.SUCCESS  # type: ignore[method-assign]
    OTLPLogExporter.export = lambda *a, **k: LogRecordExportResult.SUCCESS  # type: ignore[method-assign]


# --- the parent ------------------------------------------------------------------------------


def callgrind_total(command: Sequence[str], out: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``command`` under callgrind; its instruction total (every thread) and its stdout."""
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-line=no", *command],
        env=env,
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{command}: exit {done.returncode}\n{done.stderr.decode()[-3000:]}")
    try:
        with open(out, "rb") as f:
            return parse_total(f.read()), done.stdout.decode()
    finally:
        os.unlink(out)


def count(name: str, side: str, calls: int, workdir: str) -> int:
    """Total instructions of a child making ``calls`` calls, every thread counted."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.getcwd(), env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "benchmarks._instructions", name, side, str(calls)]
    out = os.path.join(workdir, f"{name}.{side}.{calls}.callgrind")
    total, stdout = callgrind_total(command, out, env)
    report = json.loads(stdout.strip().splitlines()[-1])
    if side != "bare" and report["spans"] < calls:
        raise RuntimeError(f"{name} {side}: {report['spans']} spans for {calls} calls")
    return total


def measure(
    names: Sequence[str],
    calls: tuple[int, int],
    stream_calls: tuple[int, int],
    *,
    jobs: int = 1,
    progress: Callable[[str], None] = lambda _: None,
) -> list[dict[str, Any]]:
    """One row per scenario: instructions per call for each side, and what ours and the floor add."""
    from concurrent.futures import ThreadPoolExecutor

    plans = {name: find_scenario(name) for name in names}
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as workdir, ThreadPoolExecutor(jobs) as pool:
        totals = {
            (name, side, k): pool.submit(count, name, side, k, workdir)
            for name, scenario in plans.items()
            for side in SIDES
            for k in (stream_calls if scenario.chunks else calls)
        }
        rows: list[dict[str, Any]] = []
        for name, scenario in plans.items():
            n, m = stream_calls if scenario.chunks else calls
            cost = {
                side: per_call(n, totals[name, side, n].result(), m, totals[name, side, m].result())
                for side in SIDES
            }
            rows.append(row(name, scenario.chunks, cost, (n, m)))
            progress(json.dumps(rows[-1]))  # as each row completes: a long run's rows survive an abort
    return rows


def row(name: str, chunks: int, cost: dict[str, float], calls: tuple[int, int]) -> dict[str, Any]:
    bare, ours, floor = cost["bare"], cost["ours"], cost["floor"]
    out: dict[str, Any] = {
        "case": name,
        "calls": f"{calls[0]},{calls[1]}",
        "bare_instr": round(bare),
        "ours_added": round(ours - bare),
        "ours_ratio": round(ours / bare, 3),
        "floor_added": round(floor - bare),
        "ours_above_floor": round(ours - floor),
    }
    if chunks:
        out["chunks"] = chunks
        out["ours_added_per_chunk"] = round((ours - bare) / chunks)
        out["floor_added_per_chunk"] = round((floor - bare) / chunks)
    return out


def main(argv: list[str]) -> int:
    name, side, calls = argv
    print(json.dumps(child(name, side, int(calls))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
