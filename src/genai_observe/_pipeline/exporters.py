"""The export pipeline Dynatrace needs, built from the OTel SDK's own exporters and processors.

What we add on top of the SDK, and why:

* DELTA temporality and explicit-bucket histograms, set in code: Dynatrace rejects cumulative
  monotonic sums and loses exponential buckets, and an environment variable is too easy to miss.
* OTLP partial success: the SDK treats every 2xx as success, but Dynatrace reports rejected spans,
  data points and log records inside an HTTP 200. A ``requests`` response hook on the exporter's
  session decodes that body and logs the rejection (rate-limited), and :class:`ExportStats`
  counts it.
* Retries of 429/502/503/504 honouring ``Retry-After`` within the export timeout are done by the
  SDK's exporter (opentelemetry-exporter-otlp-proto-http >= 1.45); tests pin that behaviour.
* Queue drops: the SDK's batch processors drop on a full queue and log one warning per item. A
  logging filter counts those drops and turns them into one rate-limited summary.
* Refused exports: the SDK's exporters log an error per failed request; against a backend that
  refuses everything, :class:`FailedExportLimiter` lets one through per signal a minute, counted.
* Export failures: the SDK's OTLP exporter logs a warning per retry and an error per batch it
  gives up on; with a backend down that is a stream of lines. :class:`ExportLogSummary` turns them
  into one rate-limited line, and at shutdown into none (``shutdown()`` says it in one line).
* The OTLP exporters are built on their first use (the first export, flush or shutdown, normally
  on the SDK's export threads), not in ``init()``: importing them with ``requests``, ``urllib3`` and
  the protobuf encoders is about a third of ``init()``'s time (docs/performance.md).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any, Final, Generic, TypeVar

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    PeriodicExportingMetricReader,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.metrics.export import Histogram as HistogramData
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from .._core import local_metrics as _local_metrics
from .._core import semconv as sc
from .._version import __version__
from .settings import Settings

if TYPE_CHECKING:
    import requests

_log = logging.getLogger("genai_observe")

# Counters and histograms DELTA (Dynatrace accepts nothing else for them); up-down counters and
# gauges stay CUMULATIVE, which Dynatrace ingests as gauges.
DELTA_TEMPORALITY: Final[dict[type, AggregationTemporality]] = {
    Counter: AggregationTemporality.DELTA,
    Histogram: AggregationTemporality.DELTA,
    ObservableCounter: AggregationTemporality.DELTA,
    UpDownCounter: AggregationTemporality.CUMULATIVE,
    ObservableUpDownCounter: AggregationTemporality.CUMULATIVE,
    ObservableGauge: AggregationTemporality.CUMULATIVE,
}

_COMPRESSION: Final = {
    "gzip": Compression.Gzip,
    "deflate": Compression.Deflate,
    "none": Compression.NoCompression,
}
_REPORT_EVERY_S: Final = 60.0


class ExportStats:
    """Counts of what did not make it, for ``Handle.stats()`` and rate-limited warnings."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rejected: dict[str, int] = {"traces": 0, "metrics": 0, "logs": 0}
        self.dropped: dict[str, int] = {"traces": 0, "metrics": 0, "logs": 0}
        self._last_report: dict[str, float] = {}
        self._unreported: dict[str, int] = {}
        # Export failures while shutting down: summed up by shutdown() in one line instead.
        self._holding = False
        self.failed_at_shutdown: dict[str, int] = {}
        self.last_error: str | None = None

    def add_rejected(self, signal: str, count: int, message: str) -> None:
        with self._lock:
            self.rejected[signal] = self.rejected.get(signal, 0) + count
        self._report(
            f"rejected:{signal}",
            count,
            "genai_observe: the OTLP endpoint rejected %d %s item(s)%s: %s",
            signal,
            message or "(no message)",
        )

    def add_dropped(self, signal: str, count: int = 1) -> None:
        with self._lock:
            self.dropped[signal] = self.dropped.get(signal, 0) + count
        if signal == "metrics":
            queue = "metric recording queue"
            hint = "the process records more points than its metrics thread keeps up with"
        else:
            queue = "export queue"
            hint = "raise OTEL_BSP_MAX_QUEUE_SIZE / OTEL_BLRP_MAX_QUEUE_SIZE or check the endpoint"
        self._report(
            f"dropped:{signal}",
            count,
            f"genai_observe: {queue} full, dropped %d %s item(s)%s: %s",
            signal,
            hint,
        )

    def add_failed(self, signal: str, error: str | None) -> None:
        """A batch the exporter gave up on (backend unreachable or failing past the export timeout)."""
        with self._lock:
            if error:
                self.last_error = error
            error = self.last_error
            if self._holding:
                self.failed_at_shutdown[signal] = self.failed_at_shutdown.get(signal, 0) + 1
                return
        self._report(
            "failed",
            1,
            "genai_observe: %d export(s) to the OTLP endpoint failed and were dropped (latest: %s)%s: %s",
            signal,
            error or "timeout or retries exhausted",
        )

    def hold_failures(self) -> None:
        """From now on failures are only counted, for the one line ``shutdown()`` writes."""
        with self._lock:
            self._holding = True

    def _report(self, key: str, count: int, fmt: str, signal: str, detail: str) -> None:
        now = time.monotonic()
        with self._lock:
            pending = self._unreported.get(key, 0) + count
            last = self._last_report.get(key)
            if last is not None and now - last < _REPORT_EVERY_S:
                self._unreported[key] = pending
                return
            self._last_report[key] = now
            self._unreported[key] = 0
        since = f" (in the last {_REPORT_EVERY_S:.0f}s)" if last is not None else ""
        _log.warning(fmt, pending, signal, since, detail)

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {"rejected": dict(self.rejected), "dropped": dict(self.dropped)}


def _partial_success_hook(signal: str, stats: ExportStats) -> Any:
    """A ``requests`` response hook that decodes OTLP partial success from a 2xx body."""
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    message_type: Any
    field: str
    if signal == "traces":
        message_type, field = trace_service_pb2.ExportTraceServiceResponse, "rejected_spans"
    elif signal == "metrics":
        message_type, field = metrics_service_pb2.ExportMetricsServiceResponse, "rejected_data_points"
    else:
        message_type, field = logs_service_pb2.ExportLogsServiceResponse, "rejected_log_records"

    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        try:
            if not 200 <= response.status_code < 300 or not response.content:
                return
            if "protobuf" not in response.headers.get("content-type", "application/x-protobuf"):
                return
            parsed = message_type()
            parsed.ParseFromString(response.content)
            if not parsed.HasField("partial_success"):
                return
            rejected = int(getattr(parsed.partial_success, field))
            message = str(parsed.partial_success.error_message)[:500]
            if rejected or message:
                stats.add_rejected(signal, rejected, message)
        except Exception:  # an odd body must not break the export
            _log.debug("genai_observe: could not decode the OTLP response body", exc_info=True)

    return hook


def _session(signal: str, stats: ExportStats) -> requests.Session:
    import requests

    session = requests.Session()
    session.hooks["response"].append(_partial_success_hook(signal, stats))
    return session


def _common(settings: Settings, signal: str, stats: ExportStats) -> dict[str, Any]:
    assert settings.endpoints is not None
    url = settings.endpoints.for_signal(signal) or ""
    return {
        "endpoint": url,
        "headers": dict(settings.headers.get(signal, {})),
        "timeout": settings.timeout_for(signal),
        "compression": _COMPRESSION[settings.compression_for(url, signal)],
        "session": _session(signal, stats),
    }


# Dynatrace refuses trace requests over 8 MB and log requests over 4 MB (uncompressed, per
# request). Batches are split well below that by an estimate in characters, so that one batch
# of large prompts cannot make a whole export be rejected.
TRACES_REQUEST_BUDGET: Final = 4_000_000
LOGS_REQUEST_BUDGET: Final = 2_000_000
_ITEM_OVERHEAD: Final = 300


def _estimate(attributes: Any) -> int:
    size = _ITEM_OVERHEAD
    for key, value in (attributes or {}).items():
        size += len(key) + (
            len(value) if isinstance(value, str) else 16 * (len(value) if isinstance(value, tuple) else 1)
        )
    return size


def split_by_size(items: Sequence[Any], budget: int, size_of: Any) -> list[Sequence[Any]]:
    """Consecutive groups of ``items`` whose estimated sizes stay within ``budget`` each."""
    groups: list[Sequence[Any]] = []
    start, total = 0, 0
    for index, item in enumerate(items):
        size = size_of(item)
        if index > start and total + size > budget:
            groups.append(items[start:index])
            start, total = index, 0
        total += size
    groups.append(items[start:])
    return groups


def _span_size(span: ReadableSpan) -> int:
    return _estimate(span.attributes) + sum(_estimate(e.attributes) for e in span.events)


_T = TypeVar("_T")

# Set while one of our exporters runs the SDK's: its log lines are ours to summarise, while the
# lines of an OTLP exporter the application runs itself, on the same loggers, are left alone.
_OURS = threading.local()


class _Ours:
    """``with _Ours():`` marks the calling thread as running one of our exporters."""

    def __enter__(self) -> None:
        self._outer = getattr(_OURS, "active", False)
        _OURS.active = True

    def __exit__(self, *exc: object) -> None:
        _OURS.active = self._outer


FORK_WAIT_S: Final = 5.0  # how long a fork waits for an exporter being built (see _Deferred)


class _Deferred(Generic[_T]):
    """A value built once, on first :meth:`get`, by whichever thread asks first."""

    def __init__(self, build: Callable[[], _T]) -> None:
        self._build = build
        self._value: _T | None = None
        self._closed = False
        self._lock = threading.Lock()
        if hasattr(os, "register_at_fork"):
            # Building imports the OTLP exporter (requests, urllib3, protobuf: ~150 ms) on an export
            # thread. A fork in the middle (gunicorn forking workers while the master's first
            # periodic export builds) would leave the child with the import system's per-module
            # locks held by a thread it does not have: its first import of one of those modules
            # hangs for ever. So a fork waits (at most FORK_WAIT_S) for a build in progress, and
            # the child gets a fresh lock. Weak: a shut down pipeline is not kept alive by the hooks.
            ref = weakref.ref(self)
            held: list[bool] = []

            def before() -> None:
                deferred = ref()
                if deferred is not None and deferred._value is None:
                    held.append(deferred._lock.acquire(timeout=FORK_WAIT_S))

            def after_in_parent() -> None:
                deferred = ref()
                if held and held.pop() and deferred is not None:
                    deferred._lock.release()

            def after_in_child() -> None:
                held.clear()
                deferred = ref()
                if deferred is not None:
                    deferred._lock = threading.Lock()

            os.register_at_fork(before=before, after_in_parent=after_in_parent, after_in_child=after_in_child)

    def get(self) -> _T:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._build()
                value = self._value
        return value

    @property
    def built(self) -> _T | None:
        """The value if it was built; flush and shutdown never build one just to close it."""
        return self._value

    def close(self, close: Callable[[_T], object]) -> None:
        """``close(value)`` once, if it was built: shutdown and an abort at the shutdown deadline
        may both ask, and the SDK's exporters warn on a second shutdown."""
        with self._lock:
            value, self._closed = (None if self._closed else self._value), True
        if value is not None:
            with _Ours():
                close(value)


class SizeBoundedSpanExporter(SpanExporter):
    """Sends a batch as several requests when it would be too large for one.

    ``build`` makes the real exporter, on the first export (see the module docstring).
    """

    def __init__(self, build: Callable[[], SpanExporter], budget: int = TRACES_REQUEST_BUDGET) -> None:
        self._inner = _Deferred(build)
        self.budget = budget

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        inner = self._inner.get()
        result = SpanExportResult.SUCCESS
        for group in split_by_size(spans, self.budget, _span_size):
            with _Ours():
                if inner.export(group) is not SpanExportResult.SUCCESS:
                    result = SpanExportResult.FAILURE
        return result

    def shutdown(self) -> None:
        self._inner.close(lambda inner: inner.shutdown())

    def abort(self) -> None:
        """Shut the real exporter down now: a retry it is waiting for is given up at once."""
        self.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        inner = self._inner.built
        return True if inner is None else bool(inner.force_flush(timeout_millis))


def span_exporter(settings: Settings, stats: ExportStats) -> SpanExporter:
    def build() -> SpanExporter:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(**_common(settings, "traces", stats))

    return SizeBoundedSpanExporter(build)


def _metric_preferences() -> dict[str, Any]:
    return {
        "preferred_temporality": dict(DELTA_TEMPORALITY),
        "preferred_aggregation": {Histogram: ExplicitBucketHistogramAggregation()},
    }


def with_local_metrics(
    data: MetricsData, local: _local_metrics.LocalMetrics, resource: Resource
) -> MetricsData:
    """``data`` plus the points aggregated in process since the last export (one DELTA point per
    scope, metric and attribute set; see ``_core/local_metrics.py``)."""
    start, end, series = local.collect()
    if not series:
        return data
    by_scope: dict[str, dict[str, tuple[Any, list[Any]]]] = {}
    for scope, s in series:
        spec = s.spec
        points = by_scope.setdefault(scope, {}).setdefault(spec.name, (spec, []))[1]
        if isinstance(s, _local_metrics.Sum):
            points.append(
                NumberDataPoint(
                    attributes=s.attributes, start_time_unix_nano=start, time_unix_nano=end, value=s.value
                )
            )
        else:
            points.append(
                HistogramDataPoint(
                    attributes=s.attributes,
                    start_time_unix_nano=start,
                    time_unix_nano=end,
                    count=s.count,
                    sum=s.sum,
                    bucket_counts=list(s.buckets),
                    explicit_bounds=list(s.spec.bounds),
                    min=s.min,
                    max=s.max,
                )
            )
    resource_metrics = list(data.resource_metrics)
    if resource_metrics:
        first = resource_metrics[0]
    else:
        first = ResourceMetrics(resource=resource, scope_metrics=[], schema_url=resource.schema_url)
    scopes = list(first.scope_metrics)
    for scope, by_name in by_scope.items():
        metrics = [_metric(spec, points) for spec, points in by_name.values()]
        for i, found in enumerate(scopes):
            if found.scope.name == scope:
                scopes[i] = ScopeMetrics(
                    scope=found.scope, metrics=[*found.metrics, *metrics], schema_url=found.schema_url
                )
                break
        else:
            scopes.append(
                ScopeMetrics(scope=InstrumentationScope(scope, __version__), metrics=metrics, schema_url="")
            )
    merged = ResourceMetrics(resource=first.resource, scope_metrics=scopes, schema_url=first.schema_url)
    return MetricsData(resource_metrics=[merged, *resource_metrics[1:]])


def _metric(spec: Any, points: list[Any]) -> Metric:
    delta = AggregationTemporality.DELTA
    if isinstance(spec, _local_metrics.HistogramSpec):
        data: Any = HistogramData(data_points=points, aggregation_temporality=delta)
    else:
        data = Sum(data_points=points, aggregation_temporality=delta, is_monotonic=True)
    return Metric(name=spec.name, description=spec.description, unit=spec.unit, data=data)


class DeferredMetricExporter(MetricExporter):
    """Carries the DELTA temporality and explicit buckets the reader reads when it is built, and
    builds the real OTLP exporter on the first export.

    With ``local`` (init()'s own MeterProvider), each export also carries the metric points
    aggregated in process since the previous one (``_core/local_metrics.py``).
    """

    def __init__(
        self,
        build: Callable[[], MetricExporter],
        local: tuple[_local_metrics.LocalMetrics, Resource] | None = None,
    ) -> None:
        super().__init__(**_metric_preferences())
        self._inner = _Deferred(build)
        self._local = local

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        if self._local is not None:
            try:
                metrics_data = with_local_metrics(metrics_data, *self._local)
            except Exception:  # never lose the SDK's own points over ours
                _log.debug("in-process metrics not added", exc_info=True)
        inner = self._inner.get()
        with _Ours():
            return inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        inner = self._inner.built
        return True if inner is None else bool(inner.force_flush(timeout_millis))

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._inner.close(lambda inner: inner.shutdown(timeout_millis=timeout_millis, **kwargs))

    def abort(self) -> None:
        """Shut the real exporter down now: a retry it is waiting for is given up at once."""
        self.shutdown(timeout_millis=0)


class LocalMetricsReader(PeriodicExportingMetricReader):
    """The periodic reader of ``init()``'s own MeterProvider, which also exports when only the
    in-process metrics have points: the SDK skips the export of a collection that found nothing,
    and with our GenAI metrics aggregated in process that is every collection of a plain app."""

    def __init__(self, exporter: MetricExporter, local: _local_metrics.LocalMetrics, **kwargs: Any) -> None:
        super().__init__(exporter, **kwargs)
        self._local = local
        self._received = threading.local()

    # MetricReader.collect is typed final; this override only adds a call to _receive_metrics
    # (the method every reader implements) after the SDK's own collect, which runs unchanged.
    def collect(self, timeout_millis: float = 10_000) -> None:  # type: ignore[misc]
        self._received.seen = False
        super().collect(timeout_millis=timeout_millis)
        if not self._received.seen and self._local.pending():
            self._receive_metrics(MetricsData(resource_metrics=[]), timeout_millis=timeout_millis)

    def _receive_metrics(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> None:
        self._received.seen = True
        super()._receive_metrics(metrics_data, timeout_millis=timeout_millis, **kwargs)


def metric_exporter(
    settings: Settings,
    stats: ExportStats,
    local: tuple[_local_metrics.LocalMetrics, Resource] | None = None,
) -> MetricExporter:
    def build() -> MetricExporter:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(**_common(settings, "metrics", stats), **_metric_preferences())

    return DeferredMetricExporter(build, local)


class SizeBoundedLogExporter(LogRecordExporter):
    """The log-record twin of :class:`SizeBoundedSpanExporter` (events carry the content JSON)."""

    def __init__(self, build: Callable[[], LogRecordExporter], budget: int = LOGS_REQUEST_BUDGET) -> None:
        self._inner = _Deferred(build)
        self.budget = budget

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        inner = self._inner.get()
        result = LogRecordExportResult.SUCCESS
        for group in split_by_size(batch, self.budget, lambda r: _estimate(r.log_record.attributes)):
            with _Ours():
                if inner.export(group) is not LogRecordExportResult.SUCCESS:
                    result = LogRecordExportResult.FAILURE
        return result

    def shutdown(self) -> None:
        self._inner.close(lambda inner: inner.shutdown())  # type: ignore[no-untyped-call]

    def abort(self) -> None:
        """Shut the real exporter down now: a retry it is waiting for is given up at once."""
        self.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        inner = self._inner.built
        return True if inner is None else bool(inner.force_flush(timeout_millis))


def log_exporter(settings: Settings, stats: ExportStats) -> LogRecordExporter:
    def build() -> LogRecordExporter:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

        return OTLPLogExporter(**_common(settings, "logs", stats))

    return SizeBoundedLogExporter(build)


class DropCounter(logging.Filter):
    """Counts the SDK's per-item "Queue full, dropping ..." warnings and silences them.

    The summary goes out through :class:`ExportStats` (one warning a minute at most).
    """

    LOGGER: Final = "opentelemetry.sdk._shared_internal"

    def __init__(self, stats: ExportStats) -> None:
        super().__init__()
        self.stats = stats
        # Installed and removed with this filter: the SDK's other per-export error line.
        self.failed_exports = FailedExportLimiter()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "Queue full, dropping %s.":
            kind = str(record.args[0]) if isinstance(record.args, tuple) and record.args else ""
            self.stats.add_dropped("logs" if kind.lower().startswith("log") else "traces")
            return False
        return True

    def install(self) -> None:
        # First in line: the SDK's own duplicate filter would otherwise hide repeats from us.
        logger = logging.getLogger(self.LOGGER)
        if self not in logger.filters:
            logger.filters.insert(0, self)
        self.failed_exports.install()

    def remove(self) -> None:
        logging.getLogger(self.LOGGER).removeFilter(self)
        self.failed_exports.remove()


class FailedExportLimiter(logging.Filter):
    """Rate-limits the SDK exporters' "Failed to export ... code: ..." error lines.

    A backend refusing every request (400, 413, a wrong path) makes each export, of each signal,
    log one such line: dozens in seconds for as long as it lasts. The first line of a signal goes
    through; the next one only after :attr:`every_s` seconds, with the count of those held back
    meanwhile. The lines are the SDK's own (status and reason, never a header), unchanged.
    Retryable failures ("Transient error ...") are summarised elsewhere.
    """

    # The exporters log through their own module's logger; older releases through these too.
    LOGGERS: Final = (
        "opentelemetry.exporter.otlp.proto.http.trace_exporter",
        "opentelemetry.exporter.otlp.proto.http.metric_exporter",
        "opentelemetry.exporter.otlp.proto.http._log_exporter",
        "opentelemetry.exporter.otlp.common.http",
    )
    every_s: float = _REPORT_EVERY_S

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg
        if not (isinstance(msg, str) and msg.startswith("Failed to export") and "code:" in msg):
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        # 1.45+: "Failed to export %s batch code: ..." names the signal; before: one logger each.
        key = str(args[0]) if msg.startswith("Failed to export %s") and args else record.name
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.every_s:
                self._held[key] = self._held.get(key, 0) + 1
                return False
            self._last[key] = now
            held = self._held.pop(key, 0)
        if held:
            record.msg = f"{msg} (and %d more such failure(s) in the last %.0fs)"
            record.args = (*args, held, self.every_s)
        return True

    def install(self) -> None:
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            if self not in logger.filters:
                logger.addFilter(self)

    def remove(self) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).removeFilter(self)


_SIGNAL_OF_KIND: Final = {"spans": "traces", "span": "traces", "metrics": "metrics", "logs": "logs"}


class ExportLogSummary(logging.Filter):
    """Silences the SDK OTLP exporter's per-retry and per-failure lines; reports a summary.

    The exporter logs "Transient error ... retrying in N s" for every retry and "Failed to export
    ... due to timeout, max retries or shutdown." for every batch it drops: with an unreachable
    backend that is a line a second. Each dropped batch becomes one count in
    :meth:`ExportStats.add_failed` (one warning a minute at most, none at shutdown), with the last
    retry's error as the detail. Only these lines, and only while one of our exporters runs
    (``_Ours``): an OTLP exporter the application runs itself logs as before, and so do our
    exporters' other lines (a 4xx "Failed to export ... code: 400"). One instance, installed once:
    the SDK's export threads can outlive a ``shutdown()`` that timed out, and must not print then
    either.
    """

    LOGGERS: Final = (
        "opentelemetry.exporter.otlp.proto.http.trace_exporter",
        "opentelemetry.exporter.otlp.proto.http.metric_exporter",
        "opentelemetry.exporter.otlp.proto.http._log_exporter",
        "opentelemetry.exporter.otlp.common.http",  # the client's own logger, when given none
    )

    def __init__(self) -> None:
        super().__init__()
        self.stats: ExportStats | None = None
        self._errors: dict[str, str] = {}  # signal -> the error of its last retry
        self._retrying: dict[int | None, str] = {}  # thread -> the signal it is retrying

    def filter(self, record: logging.LogRecord) -> bool:
        stats = self.stats
        if stats is None or not getattr(_OURS, "active", False):
            return True
        msg = record.msg if isinstance(record.msg, str) else ""
        args = record.args if isinstance(record.args, tuple) else ()
        if msg.startswith("Transient error"):
            if len(args) >= 2:
                from .._core.content import mask_credentials

                signal = _SIGNAL_OF_KIND.get(str(args[1]), str(args[1]))
                self._errors[signal] = mask_credentials(str(args[0]))[:300]
                self._retrying[record.thread] = signal
            return False
        if msg.startswith("Shutdown in progress, aborting retry"):
            # Our shutdown ended a retry wait at its deadline: that batch is dropped.
            signal = self._retrying.pop(record.thread, "telemetry")
            stats.add_failed(signal, self._errors.pop(signal, None))
            return False
        if msg.startswith("Failed to export") and "due to timeout" in msg:
            signal = _SIGNAL_OF_KIND.get(str(args[0]), str(args[0])) if args else "telemetry"
            self._retrying.pop(record.thread, None)
            stats.add_failed(signal, self._errors.pop(signal, None))
            return False
        if msg.startswith("Exporter already shutdown, ignoring batch"):
            stats.add_failed("telemetry", None)  # an export after an aborted shutdown
            return False
        return not msg.startswith("OTLP client already shutdown")

    @classmethod
    def attach(cls, stats: ExportStats) -> None:
        """Report to ``stats`` from now on (the filters are put in place on first use)."""
        _EXPORT_LOG_SUMMARY.stats = stats
        for name in cls.LOGGERS:
            logger = logging.getLogger(name)
            if _EXPORT_LOG_SUMMARY not in logger.filters:
                logger.filters.insert(0, _EXPORT_LOG_SUMMARY)

    @classmethod
    def detach(cls, stats: ExportStats) -> None:
        """Stop summarising for ``stats`` (a later ``init()`` may have attached another already)."""
        if _EXPORT_LOG_SUMMARY.stats is stats:
            _EXPORT_LOG_SUMMARY.stats = None


_EXPORT_LOG_SUMMARY: Final = ExportLogSummary()


class ConsoleSpanExporter(SpanExporter):
    """The no-endpoint default: one compact, readable line per GenAI operation on stderr."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self._out = out

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        out = self._out or sys.stderr
        try:
            for span in spans:
                line = format_span(span)
                if line:
                    out.write(line + "\n")
            out.flush()
        except Exception:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


# Characters a terminal acts on rather than shows: C0/C1 controls (ANSI escapes, newlines,
# carriage returns), line and paragraph separators, and bidirectional overrides.
_UNPRINTABLE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CONSOLE_FIELD_MAX: Final = 200


def _printable(value: Any) -> str:
    """``value`` safe to print: provider strings (model names, error codes) come from the network,
    and raw they could colour the terminal or forge log lines; controls are shown escaped."""
    text = str(value)
    if len(text) > _CONSOLE_FIELD_MAX:
        text = text[:_CONSOLE_FIELD_MAX] + "…"
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def format_span(span: ReadableSpan) -> str | None:
    """One line per operation; every string from the provider is escaped (see _printable)."""
    attrs = span.attributes or {}
    operation = attrs.get(sc.GEN_AI_OPERATION_NAME)
    if operation is None:
        return None
    model = attrs.get(sc.GEN_AI_RESPONSE_MODEL) or attrs.get(sc.GEN_AI_REQUEST_MODEL) or "?"
    provider = attrs.get(sc.GEN_AI_PROVIDER_NAME, "?")
    parts = [f"genai-observe: {_printable(operation)} {_printable(model)} [{_printable(provider)}]"]
    tokens_in = attrs.get(sc.GEN_AI_USAGE_INPUT_TOKENS)
    tokens_out = attrs.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS)
    if tokens_in is not None or tokens_out is not None:
        parts.append(
            f"tokens in={_printable(tokens_in) if tokens_in is not None else '-'} "
            f"out={_printable(tokens_out) if tokens_out is not None else '-'}"
        )
    if span.end_time is not None and span.start_time is not None:
        parts.append(f"{(span.end_time - span.start_time) / 1e9:.3f}s")
    if attrs.get(sc.GEN_AI_REQUEST_STREAM):
        parts.append("stream")
    error = attrs.get(sc.ERROR_TYPE)
    parts.append(f"error={_printable(error)}" if error else "ok")
    return "  ".join(parts)
