"""The in-process metrics (_core/local_metrics.py): the same points the SDK's explicit-bucket
histograms and counters would make, DELTA, bounded, and forgotten by a forked child."""

from __future__ import annotations

import itertools
import os
import random

import pytest
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader, MetricsData
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation
from opentelemetry.sdk.resources import Resource

from genai_observe._core import local_metrics as ct
from genai_observe._core import semconv as sc
from genai_observe._pipeline.exporters import with_local_metrics

ATTRS = {sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_PROVIDER_NAME: "openai", sc.SERVER_PORT: 443}
RESOURCE = Resource.create({"service.name": "chunks"})
TPOC = ct.TIME_PER_OUTPUT_CHUNK


def times_of(gaps: list[float]) -> list[float]:
    out, now = [100.0], 100.0
    for gap in gaps:
        now += gap
        out.append(now)
    return out


def sdk_point(streams: list[list[float]]) -> object:
    """What the SDK makes of the same arrival times, recording each gap as the recorder would."""
    reader = InMemoryMetricReader(
        preferred_temporality={Histogram: AggregationTemporality.DELTA},
        preferred_aggregation={Histogram: ExplicitBucketHistogramAggregation()},
    )
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    histogram = provider.get_meter("genai_observe").create_histogram(
        sc.METRIC_TIME_PER_OUTPUT_CHUNK,
        unit=TPOC.unit,
        explicit_bucket_boundaries_advisory=list(sc.DURATION_BUCKETS),
    )
    for times in streams:
        for earlier, later in itertools.pairwise(times):
            histogram.record(later - earlier, ATTRS)
    data = reader.get_metrics_data()
    assert data is not None
    (point,) = data.resource_metrics[0].scope_metrics[0].metrics[0].data.data_points
    return point


def local_metric(local: ct.LocalMetrics) -> object:
    from opentelemetry.sdk.metrics.export import MetricsData

    data = with_local_metrics(MetricsData(resource_metrics=[]), local, RESOURCE)
    (resource_metrics,) = data.resource_metrics
    (scope_metrics,) = resource_metrics.scope_metrics
    assert scope_metrics.scope.name == "genai_observe"
    (metric,) = scope_metrics.metrics
    return metric


def test_the_point_equals_the_sdks_for_the_same_gaps() -> None:
    rng = random.Random(7)
    bounds = list(sc.DURATION_BUCKETS)
    # Values on every boundary (the SDK counts a boundary value in the bucket it closes), between
    # them, zero and beyond the last boundary.
    streams = [
        times_of([*bounds, 0.0, 0.005, 100.0]),
        times_of([rng.uniform(0, 90) for _ in range(200)]),
        times_of([rng.expovariate(50) for _ in range(500)]),
    ]
    local = ct.LocalMetrics()
    for times in streams:
        local.record_gaps("genai_observe", TPOC, ATTRS, times)
    metric = local_metric(local)
    assert metric.name == sc.METRIC_TIME_PER_OUTPUT_CHUNK and metric.unit == "s"
    assert metric.data.aggregation_temporality == AggregationTemporality.DELTA
    (ours,) = metric.data.data_points
    theirs = sdk_point(streams)
    assert ours.attributes == theirs.attributes
    assert list(ours.bucket_counts) == list(theirs.bucket_counts)
    assert list(ours.explicit_bounds) == list(theirs.explicit_bounds)
    assert ours.count == theirs.count == sum(len(t) - 1 for t in streams)
    assert ours.sum == pytest.approx(theirs.sum, rel=1e-12)
    assert (ours.min, ours.max) == (theirs.min, theirs.max)


def test_each_collect_holds_only_what_came_since_the_last() -> None:
    local = ct.LocalMetrics()
    local.record_gaps("genai_observe", TPOC, ATTRS, times_of([0.1, 0.2]))
    start1, end1, first = local.collect()
    assert [s.count for _, s in first] == [2]
    assert local.collect()[2] == []
    local.record_gaps("genai_observe", TPOC, ATTRS, times_of([0.3]))
    start2, end2, second = local.collect()
    assert [s.count for _, s in second] == [1] and second[0][1].sum == pytest.approx(0.3)
    assert start1 < end1 <= start2 < end2  # contiguous DELTA intervals


def test_fewer_than_two_chunks_make_no_value() -> None:
    local = ct.LocalMetrics()
    local.record_gaps("genai_observe", TPOC, ATTRS, [1.0])
    local.record_gaps("genai_observe", TPOC, ATTRS, [])
    assert local.collect()[2] == []


def test_attribute_sets_are_bounded_and_the_rest_overflow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ct, "MAX_SERIES", 3)
    local = ct.LocalMetrics()
    for i in range(10):
        local.record_gaps("genai_observe", TPOC, {**ATTRS, sc.GEN_AI_REQUEST_MODEL: f"m{i}"}, times_of([0.1]))
    _, _, series = local.collect()
    assert len(series) == 4  # three series and one overflow series
    overflow = [s for _, s in series if s.attributes == {sc.OTEL_METRIC_OVERFLOW: True}]
    assert len(overflow) == 1 and overflow[0].count == 7


def test_points_join_the_scope_the_sdk_already_exports() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    provider.get_meter("genai_observe", "1").create_counter("c").add(1)
    data = reader.get_metrics_data()
    local = ct.LocalMetrics()
    local.record_gaps("genai_observe", TPOC, ATTRS, times_of([0.1]))
    local.record_gaps("genai_observe.manual", TPOC, ATTRS, times_of([0.2]))
    merged = with_local_metrics(data, local, RESOURCE)
    (resource_metrics,) = merged.resource_metrics
    assert resource_metrics.resource is data.resource_metrics[0].resource
    scopes = {s.scope.name: [m.name for m in s.metrics] for s in resource_metrics.scope_metrics}
    assert scopes == {
        "genai_observe": ["c", sc.METRIC_TIME_PER_OUTPUT_CHUNK],
        "genai_observe.manual": [sc.METRIC_TIME_PER_OUTPUT_CHUNK],
    }


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_empty() -> None:
    local = ct.LocalMetrics()
    ct._ALL.add(local)
    local.record_gaps("genai_observe", TPOC, ATTRS, times_of([0.1]))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report how many series it inherited
        os.write(write, str(len(local.collect()[2])).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 16) == b"0"
    os.close(read)
    assert len(local.collect()[2]) == 1  # the parent's own are still there


@pytest.mark.parametrize(
    "spec", [ct.DURATION, ct.TOKENS, ct.TIME_TO_FIRST_CHUNK, ct.TIME_PER_OUTPUT_CHUNK], ids=lambda s: s.name
)
def test_single_values_make_the_sdks_point(spec: ct.HistogramSpec) -> None:
    """record(): every histogram the recorder keeps in process, values on and between its
    boundaries (ints for token counts, as the recorder passes them), against the SDK's point."""
    rng = random.Random(11)
    values: list[float] = [*spec.bounds, 0, spec.bounds[-1] * 3]
    values += [rng.uniform(0, spec.bounds[-1]) for _ in range(300)]
    if spec is ct.TOKENS:
        values = [int(v) for v in values]
    reader = InMemoryMetricReader(
        preferred_temporality={Histogram: AggregationTemporality.DELTA},
        preferred_aggregation={Histogram: ExplicitBucketHistogramAggregation()},
    )
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    sdk = provider.get_meter("genai_observe").create_histogram(
        spec.name, unit=spec.unit, explicit_bucket_boundaries_advisory=list(spec.bounds)
    )
    local = ct.LocalMetrics()
    for value in values:
        sdk.record(value, ATTRS)
        local.record("genai_observe", spec, value, ATTRS)
    data = reader.get_metrics_data()
    assert data is not None
    (theirs,) = data.resource_metrics[0].scope_metrics[0].metrics[0].data.data_points
    metric = local_metric(local)
    assert (metric.name, metric.unit, metric.description) == (spec.name, spec.unit, spec.description)
    (ours,) = metric.data.data_points
    assert ours.attributes == theirs.attributes
    assert list(ours.bucket_counts) == list(theirs.bucket_counts)
    assert list(ours.explicit_bounds) == list(theirs.explicit_bounds)
    assert ours.count == theirs.count == len(values)
    assert ours.sum == pytest.approx(theirs.sum, rel=1e-12)
    assert (ours.min, ours.max) == (theirs.min, theirs.max)


def test_each_histogram_is_bounded_on_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ct, "MAX_SERIES", 2)
    local = ct.LocalMetrics()
    for i in range(3):
        attrs = {**ATTRS, sc.GEN_AI_REQUEST_MODEL: f"m{i}"}
        local.record("genai_observe", ct.DURATION, 0.5, attrs)
        local.record("genai_observe", ct.TOKENS, 7, attrs)
    _, _, series = local.collect()
    by_name: dict[str, list[dict[str, object]]] = {}
    for _, s in series:
        by_name.setdefault(s.spec.name, []).append(s.attributes)
    for name in (ct.DURATION.name, ct.TOKENS.name):
        assert len(by_name[name]) == 3  # two series and the overflow series, each histogram
        assert {sc.OTEL_METRIC_OVERFLOW: True} in by_name[name]


@pytest.mark.parametrize("spec", [ct.CHOICES, ct.VECTOR_SIZE, ct.PROMPT_CACHING], ids=lambda s: s.name)
def test_counters_make_the_sdks_delta_sum(spec: ct.CounterSpec) -> None:
    from opentelemetry.sdk.metrics import Counter

    reader = InMemoryMetricReader(preferred_temporality={Counter: AggregationTemporality.DELTA})
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    sdk = provider.get_meter("genai_observe").create_counter(spec.name, unit=spec.unit)
    local = ct.LocalMetrics()
    other = {**ATTRS, sc.GEN_AI_REQUEST_MODEL: "other"}
    for value, attrs in ((1, ATTRS), (3, ATTRS), (1536, other), (2, ATTRS)):
        sdk.add(value, attrs)
        local.add("genai_observe", spec, value, attrs)
    data = reader.get_metrics_data()
    assert data is not None
    theirs = data.resource_metrics[0].scope_metrics[0].metrics[0].data
    (resource_metrics,) = with_local_metrics(
        MetricsData(resource_metrics=[]), local, RESOURCE
    ).resource_metrics
    (metric,) = resource_metrics.scope_metrics[0].metrics
    assert (metric.name, metric.unit, metric.description) == (spec.name, spec.unit, spec.description)
    ours = metric.data
    assert ours.is_monotonic and ours.aggregation_temporality == AggregationTemporality.DELTA
    assert theirs.is_monotonic and theirs.aggregation_temporality == AggregationTemporality.DELTA
    as_pairs = lambda points: sorted((sorted(p.attributes.items()), p.value) for p in points)  # noqa: E731
    assert as_pairs(ours.data_points) == as_pairs(theirs.data_points)
    assert local.collect()[2] == []  # DELTA: nothing twice
