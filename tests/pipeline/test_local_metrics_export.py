"""init()'s own pipeline exports its GenAI histograms (duration, token usage, time to first chunk,
time per output chunk) from the in-process aggregation (_core/local_metrics.py): what a real OTLP
receiver decodes, for real SDK calls and streams."""

from __future__ import annotations

from typing import Any

import genai_observe
from genai_observe._core import local_metrics as ct
from genai_observe._core import semconv as sc
from tests.rig.openai_server import OpenAIMockServer
from tests.rig.otlp_receiver import OTLPReceiver

DELTA = 1


def start(receiver: OTLPReceiver, **kwargs: Any) -> genai_observe.Handle:
    return genai_observe.init(
        service_name="svc-chunks",
        endpoint=receiver.url,
        metric_export_interval_ms=60_000,
        instrumentations=["openai"],
        **kwargs,
    )


def stream_once(server: OpenAIMockServer, text: str) -> int:
    """One streamed chat call read to its end; the chunks the application iterated."""
    server.script(content=text)
    stream = server.client().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    return sum(1 for _ in stream)


def per_chunk_points(receiver: OTLPReceiver) -> list[Any]:
    metrics = receiver.metrics(sc.METRIC_TIME_PER_OUTPUT_CHUNK)
    for metric in metrics:
        assert metric.kind == "histogram" and metric.temporality == DELTA and metric.unit == "s"
        assert metric.scope_name == "genai_observe"
    return [p for m in metrics for p in m.data_points]


def test_streams_gaps_arrive_once_each_with_the_metric_attributes(
    otlp_receiver: OTLPReceiver, openai_server: OpenAIMockServer
) -> None:
    handle = start(otlp_receiver)
    assert ct.of(handle.meter_provider) is not None  # the in-process path, not an SDK record per chunk
    chunks = [stream_once(openai_server, "one two three four five"), stream_once(openai_server, "six seven")]
    handle.force_flush()
    first = per_chunk_points(otlp_receiver)
    assert len(first) == 1
    (point,) = first
    assert point.count == sum(c - 1 for c in chunks)
    assert sum(point.bucket_counts) == point.count
    assert 0 <= point.min <= point.max and point.sum >= point.max
    assert point.attributes[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert point.attributes[sc.GEN_AI_OPERATION_NAME] == "chat"
    assert tuple(point.explicit_bounds) == tuple(float(b) for b in sc.DURATION_BUCKETS)
    duration = otlp_receiver.metrics(sc.METRIC_OPERATION_DURATION)
    assert sum(p.count for m in duration for p in m.data_points) == 2

    # DELTA: the next export holds only the next stream's gaps.
    more = stream_once(openai_server, "eight nine ten")
    handle.shutdown()
    points = per_chunk_points(otlp_receiver)
    assert [p.count for p in points] == [point.count, more - 1]
    assert points[1].start_time_ns >= point.time_ns


def test_every_histogram_of_a_call_and_a_stream_arrives_once(
    otlp_receiver: OTLPReceiver, openai_server: OpenAIMockServer
) -> None:
    handle = start(otlp_receiver)
    assert ct.of(handle.meter_provider) is not None
    openai_server.script(content="hello there")
    openai_server.client().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    openai_server.script(content="one two three", include_usage=True)
    stream = openai_server.client().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = sum(1 for _ in stream)
    handle.force_flush()
    specs = (ct.DURATION, ct.TOKENS, ct.TIME_TO_FIRST_CHUNK, ct.TIME_PER_OUTPUT_CHUNK)
    found: dict[str, list[Any]] = {}
    for spec in specs:
        (metric,) = otlp_receiver.metrics(spec.name)  # one metric per name, from one path only
        assert metric.kind == "histogram" and metric.temporality == DELTA
        assert (metric.unit, metric.scope_name) == (spec.unit, "genai_observe")
        found[spec.name] = metric.data_points
    for point in (p for points in found.values() for p in points):
        assert point.attributes[sc.GEN_AI_OPERATION_NAME] == "chat"
        assert point.attributes[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
        assert sum(point.bucket_counts) == point.count
    (duration,) = found[sc.METRIC_OPERATION_DURATION]  # a call and a stream: one attribute set
    assert duration.count == 2 and 0 < duration.min <= duration.max < 60
    tokens = {p.attributes[sc.GEN_AI_TOKEN_TYPE]: p for p in found[sc.METRIC_TOKEN_USAGE]}
    # (the server also reports a cache read)
    assert {sc.TOKEN_TYPE_INPUT, sc.TOKEN_TYPE_OUTPUT} <= set(tokens)
    assert [tokens[t].count for t in (sc.TOKEN_TYPE_INPUT, sc.TOKEN_TYPE_OUTPUT)] == [2, 2]
    assert tuple(tokens[sc.TOKEN_TYPE_INPUT].explicit_bounds) == tuple(
        float(b) for b in sc.TOKEN_USAGE_BUCKETS
    )
    (ttfc,) = found[sc.METRIC_TIME_TO_FIRST_CHUNK]
    assert ttfc.count == 1 and ttfc.sum <= duration.max
    (tpoc,) = found[sc.METRIC_TIME_PER_OUTPUT_CHUNK]
    assert tpoc.count == chunks - 1
    handle.shutdown()


def test_a_stream_without_a_second_chunk_adds_no_point(
    otlp_receiver: OTLPReceiver, openai_server: OpenAIMockServer
) -> None:
    handle = start(otlp_receiver)
    openai_server.script(content="x")
    client = openai_server.client()
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    handle.shutdown()
    assert per_chunk_points(otlp_receiver) == []
    assert otlp_receiver.metrics(sc.METRIC_OPERATION_DURATION)


def test_the_apps_own_meter_provider_records_each_gap_through_the_sdk(
    openai_server: OpenAIMockServer,
) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from genai_observe.instrumentation.openai import OpenAIInstrumentor

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    assert ct.of(provider) is None
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(meter_provider=provider)
    try:
        chunks = stream_once(openai_server, "one two three")
    finally:
        instrumentor.uninstrument()
    data = reader.get_metrics_data()
    assert data is not None
    (point,) = [
        p
        for rm in data.resource_metrics
        for s in rm.scope_metrics
        for m in s.metrics
        if m.name == sc.METRIC_TIME_PER_OUTPUT_CHUNK
        for p in m.data.data_points
    ]
    assert point.count == chunks - 1


def test_with_metrics_off_nothing_aggregates(otlp_receiver: OTLPReceiver) -> None:
    handle = start(otlp_receiver, metrics=False)
    assert ct.of(handle.meter_provider) is None
    handle.shutdown()
