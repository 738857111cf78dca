"""What the OpenTelemetry SDK's own calls cost with genai-observe's attributes, and our content pass.

These size the floor under the per-call targets: any instrumentation that emits these signals
through the SDK pays them. Each figure is the best of several ``timeit`` repeats, in µs.
"""

from __future__ import annotations

import json
import timeit
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from genai_observe._core import semconv as sc
from genai_observe._core.content import ContentPolicy
from genai_observe._core.modes import CaptureMode
from genai_observe.instrumentation.openai import OpenAIInstrumentor

from .bench_openai import LONG_MESSAGES, MESSAGES, _handler

# The attributes of a real instrumented OpenAI chat span (dynatrace profile, content on), split
# as the recorder sets them: request attributes at start, response attributes at end.
_END_PREFIXES = ("gen_ai.response", "gen_ai.usage", "llm.usage", "gen_ai.completion", "gen_ai.openai.system")


def _best_us(fn: Any, number: int, repeat: int = 5) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def _chat_span_attributes() -> dict[str, Any]:
    import httpx2
    import openai

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(
        tracer_provider=provider, meter_provider=MeterProvider(), capture=CaptureMode.SPAN_ONLY
    )
    try:
        client = openai.OpenAI(
            api_key="bench",
            base_url="https://api.openai.com/v1",
            max_retries=0,
            http_client=httpx2.Client(transport=httpx2.MockTransport(_handler)),
        )
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    finally:
        instrumentor.uninstrument()
    return dict(exporter.get_finished_spans()[0].attributes or {})


def measure() -> list[dict[str, Any]]:
    attributes = _chat_span_attributes()
    start = {k: v for k, v in attributes.items() if not k.startswith(_END_PREFIXES)}
    end = {k: v for k, v in attributes.items() if k not in start}
    provider = TracerProvider()
    finished = InMemorySpanExporter()
    provider.add_span_processor(
        BatchSpanProcessor(finished, max_queue_size=1_000_000, schedule_delay_millis=10**9)
    )
    tracer = provider.get_tracer("bench")

    def span_with_attributes() -> None:
        span = tracer.start_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=start)
        span.set_attributes(end)
        span.end()

    def bare_span() -> None:
        tracer.start_span("chat gpt-4o-mini", kind=SpanKind.CLIENT).end()

    rows: list[dict[str, Any]] = [
        {
            "case": "sdk.span (start with request attributes, set response attributes, end)",
            "attributes": f"{len(start)} + {len(end)}",
            "us": round(_best_us(span_with_attributes, 2000), 1),
        },
        {"case": "sdk.span, no attributes", "us": round(_best_us(bare_span, 2000), 1)},
    ]
    point = {
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.GEN_AI_PROVIDER_NAME: "openai",
        sc.GEN_AI_SYSTEM: "openai",
        sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
        sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
        sc.SERVER_ADDRESS: "api.openai.com",
        sc.SERVER_PORT: 443,
    }
    meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
    histogram = meters.get_meter("bench").create_histogram(
        sc.METRIC_OPERATION_DURATION, explicit_bucket_boundaries_advisory=list(sc.DURATION_BUCKETS)
    )
    rows.append(
        {
            "case": "sdk.histogram.record (on the metrics thread: one per point, one per chunk gap)",
            "attributes": len(point),
            "us": round(_best_us(lambda: histogram.record(0.5, point), 5000), 1),
        }
    )
    resource = Resource.create({"service.name": "bench", "host.name": "bench-host"})
    provider.force_flush()
    spans = [s for s in finished.get_finished_spans() if s.attributes][:512]  # one export batch
    if spans:
        rows.append(
            {
                "case": "otlp.encode_spans per span (protobuf, before gzip)",
                "spans": len(spans),
                "us": round(_best_us(lambda: encode_spans(spans).SerializeToString(), 3, 3) / len(spans), 1),
            }
        )
    rows.append(
        {
            "case": "sdk Resource.__hash__ (the encoder hashes it once per span)",
            "us": round(_best_us(lambda: hash(resource), 5000), 2),
        }
    )
    policy = ContentPolicy()
    prompt = json.dumps(LONG_MESSAGES)
    rows.append(
        {
            "case": "content: mask and cap one 7 KB prompt (ContentPolicy.text)",
            "chars": len(prompt),
            "us": round(_best_us(lambda: policy.text(prompt), 500), 1),
        }
    )
    provider.shutdown()
    return rows
