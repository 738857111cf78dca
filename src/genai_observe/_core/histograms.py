"""``gen_ai.client.operation.time_per_output_chunk`` aggregated in process, for our own pipeline.

The conventions want one histogram value per chunk after the first. Through the SDK that is one
``Histogram.record()`` per chunk, and SDK 1.45 spends about 40 k instructions on a record without
attributes and 112 k with the metric's seven (it cleans and hashes every attribute of every
measurement): five times what the rest of a chunk costs us. The SDK has no way to hand it a
pre-aggregated histogram (no metric producer API, no observable histogram), so when ``init()``
owns the MeterProvider and its exporter, a stream's gaps are aggregated here, into the same
explicit buckets the SDK would use, and the exporter adds one DELTA data point per attribute set
to each export (``_pipeline/exporters.py``). Elsewhere (the app's own providers, under
``opentelemetry-instrument``) the recorder records each gap through the SDK as before.

Bounded like the SDK's storage: at most :data:`MAX_SERIES` attribute sets per export interval,
the rest folded into one overflow point (``otel.metric.overflow=true``).
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from itertools import pairwise
from time import time_ns
from typing import Any, Final

from . import semconv as sc

MAX_SERIES: Final = 2000  # the SDK's default cardinality limit
UNIT: Final = "s"
DESCRIPTION: Final = "Time between consecutive chunks of a streamed response."
_OVERFLOW: Final[tuple[tuple[str, Any], ...]] = ((sc.OTEL_METRIC_OVERFLOW, True),)


class _Series:
    __slots__ = ("attributes", "buckets", "count", "max", "min", "sum")

    def __init__(self, attributes: dict[str, Any], buckets: int) -> None:
        self.attributes = attributes
        self.buckets = [0] * buckets
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf


class ChunkTimes:
    """The time-per-output-chunk histogram of one MeterProvider, by scope and attribute set."""

    def __init__(self, bounds: Sequence[float] = sc.DURATION_BUCKETS) -> None:
        self.bounds: tuple[float, ...] = tuple(bounds)
        self._lock = threading.Lock()
        self._series: dict[tuple[str, frozenset[tuple[str, Any]]], _Series] = {}
        self._start_ns = time_ns()

    def add(self, scope: str, attributes: dict[str, Any], times: Sequence[float]) -> None:
        """The gaps between consecutive arrival ``times`` as values (called on the metrics worker)."""
        if len(times) < 2:
            return
        gaps = [later - earlier for earlier, later in pairwise(times)]
        bounds = self.bounds
        key = (scope, frozenset(attributes.items()))
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._new_series(scope, key, attributes)
            buckets = series.buckets
            for gap in gaps:
                buckets[bisect_left(bounds, gap)] += 1
            series.count += len(gaps)
            series.sum += sum(gaps)
            series.min = min(series.min, *gaps)
            series.max = max(series.max, *gaps)

    def _new_series(
        self, scope: str, key: tuple[str, frozenset[tuple[str, Any]]], attributes: dict[str, Any]
    ) -> _Series:
        """Under the lock: a series for ``key``, or the scope's overflow series past the limit."""
        if len(self._series) >= MAX_SERIES:
            key, attributes = (scope, frozenset(_OVERFLOW)), dict(_OVERFLOW)
            found = self._series.get(key)
            if found is not None:
                return found
        series = self._series[key] = _Series(dict(attributes), len(self.bounds) + 1)
        return series

    def collect(self) -> tuple[int, int, list[tuple[str, _Series]]]:
        """Everything since the last collect (DELTA): (start ns, end ns, [(scope, series)])."""
        now = time_ns()
        with self._lock:
            series, self._series = self._series, {}
            start, self._start_ns = self._start_ns, now
        return start, now, [(scope, s) for (scope, _), s in series.items()]

    def _after_fork(self) -> None:
        """A forked child exports its own chunks only."""
        self._lock = threading.Lock()
        self._series = {}
        self._start_ns = time_ns()


# The ChunkTimes of each MeterProvider whose exporter adds them to its exports (set by init()).
_BY_PROVIDER: weakref.WeakKeyDictionary[Any, ChunkTimes] = weakref.WeakKeyDictionary()
_ALL: weakref.WeakSet[ChunkTimes] = weakref.WeakSet()


def attach(meter_provider: Any, chunk_times: ChunkTimes) -> None:
    """Recorders built for ``meter_provider`` from now on aggregate their chunk gaps in ``chunk_times``."""
    _BY_PROVIDER[meter_provider] = chunk_times
    _ALL.add(chunk_times)


def of(meter_provider: Any) -> ChunkTimes | None:
    """The in-process aggregation ``meter_provider``'s exporter reads, or None (record via the SDK)."""
    try:
        return _BY_PROVIDER.get(meter_provider)
    except TypeError:  # a provider that cannot be weakly referenced is never attached
        return None


def _forget_after_fork(items: Iterable[ChunkTimes]) -> None:
    for chunk_times in list(items):
        chunk_times._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _forget_after_fork(_ALL))


__all__ = ["DESCRIPTION", "MAX_SERIES", "UNIT", "ChunkTimes", "attach", "of"]
