"""Fixtures shared by every test: a clean environment, in-memory telemetry, the test rig."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import genai_observe
from genai_observe._core import semconv as sc
from genai_observe._core.content import ContentPolicy
from genai_observe._core.modes import CaptureMode, Profile
from genai_observe._core.recorder import Recorder
from genai_observe._pipeline.exporters import DELTA_TEMPORALITY
from tests.rig.fixtures import bizevents_receiver, otlp_receiver
from tests.rig.fixtures_anthropic import anthropic_server, anthropic_server_session
from tests.rig.fixtures_bedrock import aws_env, bedrock_server, bedrock_server_session
from tests.rig.fixtures_ollama import ollama_server, ollama_server_session
from tests.rig.fixtures_openai import openai_server, openai_server_session

__all__ = [
    "anthropic_server",
    "anthropic_server_session",
    "aws_env",
    "bedrock_server",
    "bedrock_server_session",
    "bizevents_receiver",
    "ollama_server",
    "ollama_server_session",
    "openai_server",
    "openai_server_session",
    "otlp_receiver",
]

_PREFIXES = ("OTEL_", "DT_", "GENAI_OBSERVE_", "TRACELOOP_", "ANTHROPIC_OPEN_TELEMETRY")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's or CI's telemetry settings; init() is undone afterwards."""
    for name in list(os.environ):
        if name.startswith(_PREFIXES):
            monkeypatch.delenv(name)
    yield
    genai_observe.shutdown(timeout=2)


@dataclass
class Telemetry:
    """In-memory SDK providers for fast unit tests of the recorder and adapters."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider
    span_exporter: InMemorySpanExporter
    metric_reader: InMemoryMetricReader
    log_exporter: InMemoryLogRecordExporter

    def spans(self) -> list[ReadableSpan]:
        return list(self.span_exporter.get_finished_spans())

    def span(self) -> ReadableSpan:
        spans = self.spans()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def metrics(self) -> dict[str, list[Any]]:
        """Metric name -> data points, from one collection (DELTA: since the last collection)."""
        # No drain of our worker here: a collection must include every returned call by itself
        # (tests/core/test_metric_flush.py), and every test reading metrics relies on that.
        data = self.metric_reader.get_metrics_data()
        out: dict[str, list[Any]] = {}
        if data is None:
            return out
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    out.setdefault(metric.name, []).extend(metric.data.data_points)
        return out

    def metrics_agree_with(self, span_attributes: Any) -> dict[str, list[Any]]:
        """Reads one collection right away and checks it holds exactly the one call whose span
        has ``span_attributes``: one duration point, and token sums equal to the span's usage.
        Returns the points, for further checks (a second collection would be empty: DELTA)."""
        a = dict(span_attributes or {})
        points = self.metrics()
        assert sum(p.count for p in points.get(sc.METRIC_OPERATION_DURATION, [])) == 1, sorted(points)
        sums: dict[str, int] = {}
        for p in points.get(sc.METRIC_TOKEN_USAGE, []):
            kind = p.attributes[sc.GEN_AI_TOKEN_TYPE]
            sums[kind] = sums.get(kind, 0) + int(p.sum)
        expected = {
            kind: a[key]
            for kind, key in (
                (sc.TOKEN_TYPE_INPUT, sc.GEN_AI_USAGE_INPUT_TOKENS),
                (sc.TOKEN_TYPE_OUTPUT, sc.GEN_AI_USAGE_OUTPUT_TOKENS),
                (sc.TOKEN_TYPE_CACHE_READ, sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS),
                (sc.TOKEN_TYPE_CACHE_CREATION, sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS),
            )
            # cache points are recorded only for calls that touched the cache
            if a.get(key) is not None and (a[key] or kind in (sc.TOKEN_TYPE_INPUT, sc.TOKEN_TYPE_OUTPUT))
        }
        assert sums == expected, (sums, expected)
        return points

    def logs(self) -> list[Any]:
        return [r.log_record for r in self.log_exporter.get_finished_logs()]

    def recorder(
        self,
        *,
        capture: CaptureMode = CaptureMode.SPAN_ONLY,
        profile: Profile = Profile.DYNATRACE,
        content: ContentPolicy | None = None,
    ) -> Recorder:
        return Recorder(
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
            logger_provider=self.logger_provider,
            capture=capture,
            profile=profile,
            content=content,
        )

    def instrument_kwargs(self, **extra: Any) -> dict[str, Any]:
        return {
            "tracer_provider": self.tracer_provider,
            "meter_provider": self.meter_provider,
            "logger_provider": self.logger_provider,
            **extra,
        }

    @contextmanager
    def instrumenting(self, instrumentor: Any, **defaults: Any) -> Iterator[Callable[..., Any]]:
        """``instrumentor`` on, recording here; yields ``apply(**options)``, which re-instruments
        with other options (``defaults`` under them). Off again afterwards."""

        def apply(**options: Any) -> Any:
            if instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.uninstrument()
            instrumentor.instrument(**self.instrument_kwargs(**{**defaults, **options}))
            return instrumentor

        apply()
        try:
            yield apply
        finally:
            if instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.uninstrument()


def attrs(telemetry: Telemetry) -> dict[str, Any]:
    """The attributes of the one span ``telemetry`` holds."""
    return dict(telemetry.span().attributes or {})


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader(preferred_temporality=dict(DELTA_TEMPORALITY))
    meter_provider = MeterProvider(metric_readers=[reader])
    logs = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    yield Telemetry(tracer_provider, meter_provider, logger_provider, spans, reader, logs)
    tracer_provider.shutdown()
    meter_provider.shutdown()
    logger_provider.shutdown()
