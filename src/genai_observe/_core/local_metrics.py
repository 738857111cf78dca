"""Our GenAI metrics aggregated in process, for the pipeline ``init()`` builds.

Through the SDK every value is one ``Histogram.record()`` or ``Counter.add()``, and SDK 1.45
spends about 40 k instructions on one without attributes and 112 k with a GenAI point's seven: it
cleans and hashes every attribute of every measurement before the aggregation (a ``bisect`` or an
addition under a lock) runs. That was most of what a call cost us (duration, input and output
tokens, choices, time to first chunk) and five times the rest of a streamed chunk (one record per
gap). The SDK has no way to hand it pre-aggregated points (no metric producer API, no observable
histogram), so when ``init()`` owns the MeterProvider and its exporter, the values go here, into
the same explicit buckets (or sums) the SDK would make, and the exporter adds one DELTA data point
per scope, metric and attribute set to each export (``_pipeline/exporters.py``). Elsewhere (the
app's own providers, under ``opentelemetry-instrument``) the recorder records through the SDK as
before; the guardrail family, recorded only for guarded Bedrock calls, always does.

Bounded like the SDK's storage: at most :data:`MAX_SERIES` attribute sets per metric and export
interval, the rest folded into one overflow point (``otel.metric.overflow=true``).
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from time import time_ns
from typing import Any, Final

from opentelemetry.metrics import Counter, Histogram, Meter

from . import semconv as sc

MAX_SERIES: Final = 2000  # the SDK's default cardinality limit, per histogram
_OVERFLOW: Final[tuple[tuple[str, Any], ...]] = ((sc.OTEL_METRIC_OVERFLOW, True),)


@dataclass(frozen=True, slots=True)
class HistogramSpec:
    """One histogram we record: the SDK instrument and the in-process one are made from this."""

    name: str
    unit: str
    description: str
    bounds: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class CounterSpec:
    """One (monotonic) counter we record, in process a DELTA sum."""

    name: str
    unit: str
    description: str


DURATION: Final = HistogramSpec(
    sc.METRIC_OPERATION_DURATION, "s", "GenAI operation duration.", sc.DURATION_BUCKETS
)
TOKENS: Final = HistogramSpec(
    sc.METRIC_TOKEN_USAGE, "{token}", "Number of input and output tokens used.", sc.TOKEN_USAGE_BUCKETS
)
TIME_TO_FIRST_CHUNK: Final = HistogramSpec(
    sc.METRIC_TIME_TO_FIRST_CHUNK,
    "s",
    "Time to receive the first chunk of a streamed response.",
    sc.DURATION_BUCKETS,
)
TIME_PER_OUTPUT_CHUNK: Final = HistogramSpec(
    sc.METRIC_TIME_PER_OUTPUT_CHUNK,
    "s",
    "Time between consecutive chunks of a streamed response.",
    sc.DURATION_BUCKETS,
)

CHOICES: Final = CounterSpec(sc.METRIC_GENERATION_CHOICES, "{choice}", "Number of choices returned.")
VECTOR_SIZE: Final = CounterSpec(
    sc.METRIC_EMBEDDINGS_VECTOR_SIZE, "{element}", "Size of returned embedding vectors."
)
PROMPT_CACHING: Final = CounterSpec(
    sc.METRIC_PROMPT_CACHING,
    "{token}",
    "Input tokens read from or written to the provider's prompt cache.",
)


def sdk_histograms(meter: Meter, specs: Iterable[HistogramSpec]) -> dict[str, Histogram]:
    """The SDK instrument of each histogram spec, by name (the recorder's and the guardrails')."""
    return {
        spec.name: meter.create_histogram(
            spec.name,
            unit=spec.unit,
            description=spec.description,
            explicit_bucket_boundaries_advisory=list(spec.bounds),
        )
        for spec in specs
    }


def sdk_counters(meter: Meter, specs: Iterable[CounterSpec]) -> dict[str, Counter]:
    """The SDK instrument of each counter spec, by name."""
    return {
        spec.name: meter.create_counter(spec.name, unit=spec.unit, description=spec.description)
        for spec in specs
    }


_SeriesKey = tuple[str, str, frozenset[tuple[str, Any]]]  # (scope, metric name, attributes)


class _Series:
    __slots__ = ("attributes", "buckets", "count", "max", "min", "spec", "sum")

    def __init__(self, spec: HistogramSpec, attributes: dict[str, Any]) -> None:
        self.spec = spec
        self.attributes = attributes
        self.buckets = [0] * (len(spec.bounds) + 1)
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf


class Sum:
    """A counter's DELTA sum for one attribute set (the exporter tells it from a histogram's)."""

    __slots__ = ("attributes", "spec", "value")

    def __init__(self, spec: CounterSpec, attributes: dict[str, Any]) -> None:
        self.spec = spec
        self.attributes = attributes
        self.value: float = 0


class LocalMetrics:
    """One MeterProvider's GenAI histograms and counters, by scope, metric and attribute set."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[_SeriesKey, _Series | Sum] = {}
        self._sizes: dict[tuple[str, str], int] = {}  # series per (scope, metric)
        self._start_ns = time_ns()

    def add(self, scope: str, spec: CounterSpec, value: float, attributes: Mapping[str, Any]) -> None:
        """As ``Counter.add(value, attributes)`` would (called on the metrics worker)."""
        key = (scope, spec.name, frozenset(attributes.items()))
        with self._lock:
            found = self._series.get(key) or self._new_series(key, spec, attributes)
            if isinstance(found, Sum):
                found.value += value

    def record(self, scope: str, spec: HistogramSpec, value: float, attributes: Mapping[str, Any]) -> None:
        """One value, as ``Histogram.record(value, attributes)`` would (called on the metrics worker)."""
        key = (scope, spec.name, frozenset(attributes.items()))
        with self._lock:
            series = self._series.get(key) or self._new_series(key, spec, attributes)
            if not isinstance(series, _Series):
                return
            series.buckets[bisect_left(spec.bounds, value)] += 1
            series.count += 1
            series.sum += value
            series.min = min(series.min, value)
            series.max = max(series.max, value)

    def record_gaps(
        self, scope: str, spec: HistogramSpec, attributes: Mapping[str, Any], times: Sequence[float]
    ) -> None:
        """The gaps between consecutive arrival ``times``, one value each."""
        if len(times) < 2:
            return
        gaps = [later - earlier for earlier, later in pairwise(times)]
        bounds = spec.bounds
        key = (scope, spec.name, frozenset(attributes.items()))
        with self._lock:
            series = self._series.get(key) or self._new_series(key, spec, attributes)
            if not isinstance(series, _Series):
                return
            buckets = series.buckets
            for gap in gaps:
                buckets[bisect_left(bounds, gap)] += 1
            series.count += len(gaps)
            series.sum += sum(gaps)
            series.min = min(series.min, *gaps)
            series.max = max(series.max, *gaps)

    def _new_series(
        self, key: _SeriesKey, spec: HistogramSpec | CounterSpec, attributes: Mapping[str, Any]
    ) -> _Series | Sum:
        """Under the lock: a series for ``key``, or the metric's overflow series past the limit."""
        scope = key[0]
        size = self._sizes.get((scope, spec.name), 0)
        if size >= MAX_SERIES:
            key, attributes = (scope, spec.name, frozenset(_OVERFLOW)), dict(_OVERFLOW)
            found = self._series.get(key)
            if found is not None:
                return found
        series: _Series | Sum = (
            _Series(spec, dict(attributes))
            if isinstance(spec, HistogramSpec)
            else Sum(spec, dict(attributes))
        )
        self._series[key] = series
        self._sizes[(scope, spec.name)] = size + 1
        return series

    def pending(self) -> bool:
        """Whether anything was recorded since the last collect."""
        return bool(self._series)

    def collect(self) -> tuple[int, int, list[tuple[str, _Series | Sum]]]:
        """Everything since the last collect (DELTA): (start ns, end ns, [(scope, series)])."""
        now = time_ns()
        with self._lock:
            series, self._series, self._sizes = self._series, {}, {}
            start, self._start_ns = self._start_ns, now
        return start, now, [(key[0], s) for key, s in series.items()]

    def _after_fork(self) -> None:
        """A forked child exports its own values only."""
        self._lock = threading.Lock()
        self._series = {}
        self._sizes = {}
        self._start_ns = time_ns()


# The LocalMetrics of each MeterProvider whose exporter adds them to its exports (set by init()).
_BY_PROVIDER: weakref.WeakKeyDictionary[Any, LocalMetrics] = weakref.WeakKeyDictionary()
_ALL: weakref.WeakSet[LocalMetrics] = weakref.WeakSet()


def attach(meter_provider: Any, local: LocalMetrics) -> None:
    """Recorders built for ``meter_provider`` from now on record their metrics in ``local``."""
    _BY_PROVIDER[meter_provider] = local
    _ALL.add(local)


def of(meter_provider: Any) -> LocalMetrics | None:
    """The in-process metrics ``meter_provider``'s exporter reads, or None (record via the SDK)."""
    try:
        return _BY_PROVIDER.get(meter_provider)
    except TypeError:  # a provider that cannot be weakly referenced is never attached
        return None


def _forget_after_fork(items: Iterable[LocalMetrics]) -> None:
    for local in list(items):
        local._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _forget_after_fork(_ALL))


__all__ = [
    "CHOICES",
    "DURATION",
    "MAX_SERIES",
    "PROMPT_CACHING",
    "TIME_PER_OUTPUT_CHUNK",
    "TIME_TO_FIRST_CHUNK",
    "TOKENS",
    "VECTOR_SIZE",
    "CounterSpec",
    "HistogramSpec",
    "LocalMetrics",
    "Sum",
    "attach",
    "of",
    "sdk_counters",
    "sdk_histograms",
]
