"""Prometheus metrics of model servers and gateways (NVIDIA NIM, vLLM, Kong) into the OTLP pipeline.

Dynatrace ingests only DELTA sums and histograms; Prometheus counters and histograms are
cumulative. This module fetches each target's exposition, parses it with prometheus-client's
parsers (text format 0.0.4, or OpenMetrics when the server answers with it) and turns counters
and histograms into deltas, gauges into gauges. Names and labels stay as scraped, because the
NIM and Kong dashboards chart them by those names.

Design: :class:`PrometheusScraper` is what the OpenTelemetry specification calls a *metric
producer*, attached to the periodic reader ``init()`` built (SDK 1.45 has no producer API, so it
wraps the reader's collect callback: :meth:`PrometheusScraper.attach`). Every collection of that
reader (each export interval, ``force_flush()``) scrapes all targets in parallel, each within a
timeout, and the points go out in the same OTLP request as the app's own metrics: same resource,
token, retries and partial-success accounting. A thread of our own with a hand-over buffer was
the alternative; it was not taken because the reader already keeps the export interval, restarts
its thread in a forked child and stops on shutdown, and a second timer would add its own fork and
shutdown handling and export at other moments. The price: a collection waits for the slowest
target, at most the scrape timeout (half the export interval, between 1 and 10 seconds).

Series policy (docs/server-metrics.md):

* A counter or histogram seen for the first time is reported from its ``_created`` time when it
  was created after the previous successful scrape (or after ``init()`` for the first one).
  Without ``_created``, a new label set of a metric that the previous, complete scrape of the
  target had is reported in full (it did not exist then, so all of it is new); on the first scrape,
  or for a metric appearing as a whole, it is a baseline only.
* A value lower than the previous one, or a later ``_created``, is a restart: the new value is
  the delta. Deltas are never negative; zero deltas are not sent (as the SDK does for DELTA).
* A series that vanishes is forgotten. NaN and infinite values are skipped and counted.
* At most :data:`MAX_SERIES_PER_TARGET` series per target; the others are dropped and counted.

A forked child does not scrape: its parent (the gunicorn master, say) keeps doing it, and every
worker scraping the same targets would export each delta once per worker. Processes started
anew inherit :data:`ENV_SCRAPER` (the scraping process's id and its targets, hashed): while that
process lives, they leave its targets alone (uvicorn's spawned workers, a forkserver, a
subprocess bootstrapping from the same environment).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import os
import threading
import time
import urllib.error
import urllib.request
import weakref
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import unquote, urlsplit, urlunsplit

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from .._core import semconv as sc
from .._version import __version__

_log = logging.getLogger("genai_observe")

MAX_SERIES_PER_TARGET: Final = 2000
MAX_BODY_BYTES: Final = 16 * 1024 * 1024
MAX_SCRAPE_TIMEOUT_S: Final = 10.0  # Prometheus's own default scrape timeout
MIN_SCRAPE_TIMEOUT_S: Final = 1.0
WARN_EVERY_S: Final = 600.0
# The classic text format first: every exporter speaks it (Kong's plugin speaks nothing else).
_ACCEPT: Final = "text/plain;version=0.0.4;q=1.0,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1"
_NOT_EXPOSITION: Final = ("text/html", "application/json", "application/xml", "text/xml")
_CREATED: Final = "_created"
# "<pid>:<hash>,<hash>": which process scrapes which targets, for the processes it starts.
ENV_SCRAPER: Final = "GENAI_OBSERVE_PROMETHEUS_SCRAPER"

Labels = tuple[tuple[str, str], ...]
Parser = Callable[[str], Iterable[Any]]


class ScrapeError(Exception):
    """Why one scrape failed, in words fit for a log line (never a credential, never the body)."""

    def __init__(self, reason: str, *, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.timed_out = timed_out


@dataclass(frozen=True)
class Target:
    """One scrape URL: ``url`` is requested; ``label`` (no credentials, no query) is shown."""

    url: str
    label: str
    authorization: str | None = field(default=None, repr=False)


def parse_target(raw: str) -> Target:
    """A target from a URL; ``user:password@`` becomes Basic auth, an empty path ``/metrics``."""
    parts = urlsplit(raw.strip())
    netloc = parts.netloc.rsplit("@", 1)[-1]
    path = parts.path or "/metrics"  # Prometheus's default metrics_path
    authorization = None
    if parts.username is not None or parts.password is not None:
        credentials = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(credentials.encode()).decode("ascii")
    return Target(
        url=urlunsplit((parts.scheme, netloc, path, parts.query, "")),
        label=urlunsplit((parts.scheme, netloc, path, "", "")),
        authorization=authorization,
    )


# --- fetching ----------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A metrics endpoint does not redirect; following one would send Basic auth elsewhere."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirect())


def fetch(
    target: Target, timeout: float, opener: urllib.request.OpenerDirector, stop: threading.Event
) -> tuple[str, str]:
    """(Content-Type, body) of one scrape, within ``timeout`` seconds and :data:`MAX_BODY_BYTES`."""
    deadline = time.monotonic() + timeout
    headers = {
        "Accept": _ACCEPT,
        "Accept-Encoding": "gzip",
        "User-Agent": f"genai-observe/{__version__}",
    }
    if target.authorization:
        headers["Authorization"] = target.authorization
    request = urllib.request.Request(target.url, headers=headers)
    try:
        with opener.open(request, timeout=timeout) as response:
            content_type = str(response.headers.get("Content-Type", ""))
            gzipped = "gzip" in str(response.headers.get("Content-Encoding", "")).lower()
            body = _read(response, deadline, gzipped, stop)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise ScrapeError(f"HTTP status {exc.code}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise ScrapeError(f"no answer within {timeout:.1f}s", timed_out=True) from None
        raise ScrapeError(f"cannot connect ({_describe(exc.reason)})") from None
    except TimeoutError:
        raise ScrapeError(f"no answer within {timeout:.1f}s", timed_out=True) from None
    except (OSError, ValueError) as exc:  # reset connections, bad status lines, ...
        raise ScrapeError(f"connection failed ({type(exc).__name__})") from None
    return content_type, body.decode("utf-8", errors="replace")


def _describe(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return type(reason).__name__ if isinstance(reason, BaseException) else str(reason)[:100]


def _read(response: Any, deadline: float, gzipped: bool, stop: threading.Event) -> bytes:
    """The body, read chunk by chunk so that a server dripping bytes cannot hold us past ``deadline``."""
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None
    parts: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline or stop.is_set():
            raise ScrapeError("the body did not arrive in time", timed_out=True)
        chunk = response.read1(65536)
        if not chunk:
            break
        if inflate is not None:
            try:
                chunk = inflate.decompress(chunk, MAX_BODY_BYTES - size + 1)
            except zlib.error:
                raise ScrapeError("invalid gzip body") from None
            if inflate.unconsumed_tail:
                raise ScrapeError(f"body larger than {MAX_BODY_BYTES} bytes")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ScrapeError(f"body larger than {MAX_BODY_BYTES} bytes")
        parts.append(chunk)
    return b"".join(parts)


def load_parsers() -> tuple[Parser, Parser]:
    """prometheus-client's text and OpenMetrics parsers (ImportError without the extra)."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
    from prometheus_client.parser import text_string_to_metric_families as text

    return text, openmetrics


def parse(content_type: str, body: str, parsers: tuple[Parser, Parser]) -> list[Any]:
    """Metric families of an exposition; :class:`ScrapeError` for anything else (an HTML page)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media in _NOT_EXPOSITION or media.endswith(("+json", "+xml")):
        raise ScrapeError(f"not a Prometheus exposition (Content-Type {media})")
    parser = parsers[1] if media == "application/openmetrics-text" else parsers[0]
    try:
        return list(parser(body))
    except Exception as exc:  # the parsers raise ValueError and friends; never echo the body
        raise ScrapeError(f"not a Prometheus exposition ({type(exc).__name__} while parsing)") from None


# --- from families to series -----------------------------------------------------------------


@dataclass
class Series:
    """One scraped time series, normalised: a counter value, a histogram or a gauge value."""

    kind: str  # "sum" | "histogram" | "gauge"
    name: str
    labels: Labels
    description: str = ""
    unit: str = ""
    value: float = 0.0  # sum, gauge
    created: float | None = None  # seconds since the epoch (`_created`)
    bounds: tuple[float, ...] = ()  # histogram: the finite `le` values, ascending
    cumulative: tuple[float, ...] = ()  # histogram: cumulative count per bound, +Inf last
    count: float = 0.0
    total: float = 0.0  # histogram `_sum`


def _labels(labels: dict[str, str], *drop: str) -> Labels:
    # Prometheus treats an empty label value as an absent label (Kong exposes many).
    return tuple(sorted((k, v) for k, v in labels.items() if v != "" and k not in drop))


def to_series(families: Sequence[Any]) -> list[Series]:
    """Counters and summaries' ``_count``/``_sum`` as sums, histograms, everything else as gauges.

    In the text format prometheus-client exposes ``_created`` as gauge families of their own;
    they are read as creation times of the counter, histogram or summary they belong to.
    """
    kinds = {f.name: f.type for f in families}
    created: dict[tuple[str, Labels], float] = {}
    for family in families:
        base = family.name[: -len(_CREATED)]
        if family.name.endswith(_CREATED) and kinds.get(base) in ("counter", "histogram", "summary"):
            for sample in family.samples:
                created[(base, _labels(sample.labels))] = sample.value
        for sample in family.samples:
            if sample.name == family.name + _CREATED:  # OpenMetrics: inside the family
                created[(family.name, _labels(sample.labels))] = sample.value
    out: list[Series] = []
    for family in families:
        base = family.name[: -len(_CREATED)]
        if family.name.endswith(_CREATED) and kinds.get(base) in ("counter", "histogram", "summary"):
            continue
        text = (str(family.documentation or ""), str(getattr(family, "unit", "") or ""))
        if family.type == "histogram":
            out.extend(_histograms(family, created, text))
            continue
        for sample in family.samples:
            labels = _labels(sample.labels)
            suffix = sample.name[len(family.name) :]
            counted = suffix in ("_count", "_sum") if family.type == "summary" else suffix != _CREATED
            if family.type in ("counter", "summary") and counted:
                kind = "sum"
            elif family.type == "summary" and suffix == "":
                kind = "gauge"  # a quantile
            elif family.type not in ("counter", "summary"):
                kind = "gauge"  # gauge, unknown/untyped, info, stateset, gaugehistogram: as they are
            else:
                continue
            out.append(
                Series(
                    kind,
                    sample.name,
                    labels,
                    *text,
                    value=sample.value,
                    created=created.get((family.name, labels)) if kind == "sum" else None,
                )
            )
    return out


def _histograms(family: Any, created: dict[tuple[str, Labels], float], text: tuple[str, str]) -> list[Series]:
    buckets: dict[Labels, list[tuple[float, float]]] = {}
    counts: dict[Labels, float] = {}
    sums: dict[Labels, float] = {}
    for sample in family.samples:
        suffix = sample.name[len(family.name) :]
        if suffix == "_bucket":
            try:
                bound = float(sample.labels.get("le", ""))
            except ValueError:
                continue
            buckets.setdefault(_labels(sample.labels, "le"), []).append((bound, sample.value))
        elif suffix == "_count":
            counts[_labels(sample.labels)] = sample.value
        elif suffix == "_sum":
            sums[_labels(sample.labels)] = sample.value
    out = []
    for labels, pairs in buckets.items():
        pairs.sort()
        if pairs[-1][0] != math.inf:
            if labels not in counts:
                continue  # no +Inf bucket and no _count: not a histogram we can read
            pairs.append((math.inf, counts[labels]))
        out.append(
            Series(
                "histogram",
                family.name,
                labels,
                *text,
                created=created.get((family.name, labels)),
                bounds=tuple(b for b, _ in pairs[:-1]),
                cumulative=tuple(c for _, c in pairs),
                count=counts.get(labels, pairs[-1][1]),
                total=sums.get(labels, 0.0),
            )
        )
    return out


# --- from cumulative series to deltas ------------------------------------------------------------


@dataclass
class _Last:
    """What a series looked like at the previous scrape."""

    time_ns: int
    created: float | None
    value: float = 0.0
    bounds: tuple[float, ...] = ()
    buckets: tuple[float, ...] = ()  # per bucket, not cumulative
    count: float = 0.0
    total: float = 0.0


@dataclass
class Counts:
    """What ``Handle.stats()["prometheus"]`` shows."""

    scrapes: int = 0
    failed: int = 0
    timed_out: int = 0
    series_dropped: int = 0
    samples_skipped: int = 0


Point = tuple[Series, Any]  # the series (name, kind, texts) and its OTel data point


class DeltaConverter:
    """Turns the cumulative series of one target's successive scrapes into delta points."""

    def __init__(self, target_label: str, started_ns: int, max_series: int = MAX_SERIES_PER_TARGET) -> None:
        self.target_label = target_label
        self.max_series = max_series
        self._last: dict[tuple[str, str, Labels], _Last] = {}
        self._since_ns = started_ns  # the previous successful scrape, or when scraping began
        self._complete_before = False  # a previous scrape saw every series of the target
        self._names: frozenset[tuple[str, str]] = frozenset()  # (kind, name) in the previous scrape

    def __len__(self) -> int:
        return len(self._last)

    def convert(self, series: Sequence[Series], now_ns: int, counts: Counts) -> list[Point]:
        present = {(s.kind, s.name, s.labels) for s in series}
        room = self.max_series - len(present & self._last.keys())
        last: dict[tuple[str, str, Labels], _Last] = {}
        points: list[Point] = []
        dropped = 0
        for s in series:
            key = (s.kind, s.name, s.labels)
            if key in last:
                continue  # a duplicate line in the exposition
            prev = self._last.get(key)
            if prev is None:
                if room <= 0:
                    dropped += 1
                    continue
                room -= 1
            attributes = {**dict(s.labels), sc.PROMETHEUS_TARGET: self.target_label}
            if s.kind == "gauge":
                last[key] = _Last(now_ns, None)
                if math.isfinite(s.value):
                    points.append((s, NumberDataPoint(attributes, 0, now_ns, float(s.value))))
                else:
                    counts.samples_skipped += 1
            elif s.kind == "sum":
                point = self._sum(s, prev, now_ns, attributes, last, key, counts)
                if point is not None:
                    points.append((s, point))
            else:
                hist = self._histogram(s, prev, now_ns, attributes, last, key, counts)
                if hist is not None:
                    points.append((s, hist))
        counts.series_dropped += dropped
        self._last = last  # series that vanished are forgotten here
        self._since_ns = now_ns
        self._complete_before = dropped == 0
        self._names = frozenset((kind, name) for kind, name, _ in last)
        return points

    def _first_sight(self, s: Series) -> int | None:
        """The start of a new series' first delta, or None when it is only a baseline.

        Without ``_created``, a new label set of a metric the previous complete scrape had is new
        since then; a whole metric appearing is a baseline, so that an exposition that came back
        partial or empty once does not send every total again.
        """
        if s.created is not None and math.isfinite(s.created) and s.created > 0:
            created_ns = int(s.created * 1e9)
            return created_ns if created_ns >= self._since_ns else None
        known = (s.kind, s.name) in self._names
        return self._since_ns if self._complete_before and known else None

    @staticmethod
    def _restarted(prev: _Last, created: float | None) -> bool:
        return created is not None and prev.created is not None and created > prev.created

    @staticmethod
    def _restart_start(prev: _Last, created: float | None, now_ns: int) -> int:
        created_ns = int(created * 1e9) if created is not None and math.isfinite(created) else 0
        return max(prev.time_ns, min(created_ns, now_ns))

    def _sum(
        self,
        s: Series,
        prev: _Last | None,
        now_ns: int,
        attributes: dict[str, str],
        last: dict[tuple[str, str, Labels], _Last],
        key: tuple[str, str, Labels],
        counts: Counts,
    ) -> NumberDataPoint | None:
        if not math.isfinite(s.value) or s.value < 0:
            counts.samples_skipped += 1
            if prev is not None:
                last[key] = prev  # compare the next good value with the last good one
            return None
        last[key] = _Last(now_ns, s.created, value=s.value)
        if prev is None:
            start = self._first_sight(s)
            delta = s.value if start is not None else 0.0
        elif s.value < prev.value or self._restarted(prev, s.created):
            start, delta = self._restart_start(prev, s.created, now_ns), s.value
        else:
            start, delta = prev.time_ns, s.value - prev.value
        if start is None or delta <= 0:
            return None
        return NumberDataPoint(attributes, start, now_ns, float(delta))

    def _histogram(
        self,
        s: Series,
        prev: _Last | None,
        now_ns: int,
        attributes: dict[str, str],
        last: dict[tuple[str, str, Labels], _Last],
        key: tuple[str, str, Labels],
        counts: Counts,
    ) -> HistogramDataPoint | None:
        values = (*s.cumulative, s.count, s.total)
        buckets = tuple(c - p for c, p in zip(s.cumulative, (0.0, *s.cumulative[:-1]), strict=True))
        if not all(math.isfinite(v) for v in values) or any(b < 0 for b in buckets) or s.count < 0:
            counts.samples_skipped += 1
            if prev is not None:
                last[key] = prev
            return None
        last[key] = _Last(now_ns, s.created, bounds=s.bounds, buckets=buckets, count=s.count, total=s.total)
        full = (buckets, s.count, s.total)
        delta: tuple[Sequence[float], float, float] | None
        if prev is None:
            start = self._first_sight(s)
            delta = full if start is not None else None
        elif s.count < prev.count or self._restarted(prev, s.created):
            start, delta = self._restart_start(prev, s.created, now_ns), full
        elif s.bounds != prev.bounds:
            start, delta = None, None  # another bucket layout without a restart: a new baseline
        else:
            start = prev.time_ns
            diff = [c - p for c, p in zip(buckets, prev.buckets, strict=True)]
            delta = (diff, s.count - prev.count, s.total - prev.total)
            if any(d < 0 for d in diff):  # a bucket shrank: the histogram was reset
                delta = full
        if start is None or delta is None or delta[1] <= 0:
            return None
        return HistogramDataPoint(
            attributes=attributes,
            start_time_unix_nano=start,
            time_unix_nano=now_ns,
            count=round(delta[1]),
            sum=delta[2],
            bucket_counts=[round(b) for b in delta[0]],
            explicit_bounds=list(s.bounds),
            min=None,  # type: ignore[arg-type]  # unknown from buckets; optional in OTLP
            max=None,  # type: ignore[arg-type]
        )


def to_metrics(points: Iterable[Point]) -> list[Metric]:
    """One OTel metric per (name, kind), points of all targets together."""
    grouped: dict[tuple[str, str], tuple[Series, list[Any]]] = {}
    for series, point in points:
        grouped.setdefault((series.name, series.kind), (series, []))[1].append(point)
    metrics = []
    for (name, kind), (first, data_points) in grouped.items():
        data: Any
        if kind == "sum":
            data = Sum(data_points, AggregationTemporality.DELTA, is_monotonic=True)
        elif kind == "histogram":
            data = Histogram(data_points, AggregationTemporality.DELTA)
        else:
            data = Gauge(data_points)
        metrics.append(Metric(name=name, description=first.description, unit=first.unit, data=data))
    return metrics


# --- the producer --------------------------------------------------------------------------------


class _Job:
    """One scrape of one target on a short-lived daemon thread."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.series: list[Series] | None = None
        self.time_ns = 0
        self.error: ScrapeError | None = None

    def run(
        self,
        timeout: float,
        opener: urllib.request.OpenerDirector,
        parsers: tuple[Parser, Parser],
        stop: threading.Event,
    ) -> None:
        try:
            content_type, body = fetch(self.target, timeout, opener, stop)
            self.time_ns = time.time_ns()
            self.series = to_series(parse(content_type, body, parsers))
            if not self.series:  # a server starting up, or not an exporter: keep what we know
                raise ScrapeError("empty exposition (no samples)")
        except ScrapeError as exc:
            self.error = exc
        except Exception as exc:  # never let a scrape thread die with a traceback on stderr
            self.error = ScrapeError(f"unexpected {type(exc).__name__}")


class _TargetState:
    def __init__(self, target: Target, started_ns: int, max_series: int) -> None:
        self.target = target
        self.converter = DeltaConverter(target.label, started_ns, max_series)
        self.thread: threading.Thread | None = None
        self.failing = False
        self.unreported = 0
        self.last_warning = 0.0


class PrometheusScraper:
    """Scrapes the targets on every collection of the reader it is attached to (see module doc)."""

    def __init__(
        self,
        targets: Sequence[str],
        export_interval_ms: float,
        *,
        timeout: float | None = None,
        max_series: int = MAX_SERIES_PER_TARGET,
    ) -> None:
        started = time.time_ns()
        self._states = [_TargetState(parse_target(t), started, max_series) for t in dict.fromkeys(targets)]
        self.timeout = timeout or min(
            MAX_SCRAPE_TIMEOUT_S, max(MIN_SCRAPE_TIMEOUT_S, export_interval_ms / 2000)
        )
        self._parsers = load_parsers()
        self._opener = _opener()
        self._lock = threading.Lock()  # one scrape round at a time; guards the converters
        self._counts_lock = threading.Lock()
        self._counts = Counts()
        self._stop = threading.Event()
        self._in_child = False
        if hasattr(os, "register_at_fork"):
            ref = weakref.ref(self)

            def after_in_child() -> None:
                scraper = ref()
                if scraper is not None:
                    scraper._forget_after_fork()

            os.register_at_fork(after_in_child=after_in_child)

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(state.target.label for state in self._states)

    def _forget_after_fork(self) -> None:
        # Fresh locks (a parent thread may have held one at fork time) and no state; never scrape.
        self._in_child = True
        self._lock = threading.Lock()
        self._counts_lock = threading.Lock()
        self._counts = Counts()
        self._stop = threading.Event()
        self._states = []

    def stop(self) -> None:
        """No scrape from now on; a scrape under way ends within its timeout (its thread is a daemon)."""
        self._stop.set()
        if not self._in_child and os.environ.get(ENV_SCRAPER, "").startswith(f"{os.getpid()}:"):
            os.environ.pop(ENV_SCRAPER, None)  # processes started from now on may scrape again

    def stats(self) -> dict[str, int]:
        with self._counts_lock:
            return dict(vars(self._counts))

    # -- producing ------------------------------------------------------------------------

    def produce(self, budget_s: float) -> list[Metric]:
        """Scrape every target once, in parallel, and return the delta metrics; never raises."""
        if self._stop.is_set() or self._in_child or not self._states:
            return []
        if not self._lock.acquire(timeout=max(budget_s, 0.0)):
            return []  # another collection is scraping right now; the next one gets the deltas
        try:
            return self._round(min(self.timeout, max(budget_s, 0.05)))
        except Exception:
            _log.debug("genai_observe: Prometheus scrape round failed", exc_info=True)
            return []
        finally:
            self._lock.release()

    def _round(self, timeout: float) -> list[Metric]:
        jobs: list[tuple[_TargetState, _Job, threading.Thread]] = []
        for state in self._states:
            if state.thread is not None and state.thread.is_alive():
                self._failed(state, ScrapeError("the previous scrape is still running", timed_out=True))
                continue
            job = _Job(state.target)
            thread = threading.Thread(
                target=job.run,
                args=(timeout, self._opener, self._parsers, self._stop),
                name="genai-observe-scrape",
                daemon=True,
            )
            state.thread = thread
            thread.start()
            jobs.append((state, job, thread))
        deadline = time.monotonic() + timeout + 0.05
        for _, _, thread in jobs:
            thread.join(max(0.0, deadline - time.monotonic()))
        points: list[Point] = []
        counts = Counts()
        for state, job, thread in jobs:
            if thread.is_alive():
                self._failed(state, ScrapeError(f"no answer within {timeout:.1f}s", timed_out=True))
            elif job.error is not None or job.series is None:
                self._failed(state, job.error or ScrapeError("no result"))
            else:
                state.thread = None
                points.extend(state.converter.convert(job.series, job.time_ns, counts))
                counts.scrapes += 1
                if state.failing:
                    _log.info("genai_observe: scraping %s works again", state.target.label)
                state.failing = False
        self._add(counts)
        return to_metrics(points)

    def _add(self, counts: Counts) -> None:
        with self._counts_lock:
            for name, value in vars(counts).items():
                setattr(self._counts, name, getattr(self._counts, name) + value)

    def _failed(self, state: _TargetState, error: ScrapeError) -> None:
        """Count it; warn on the first failure and then at most every :data:`WARN_EVERY_S`."""
        self._add(Counts(failed=1, timed_out=int(error.timed_out)))
        now = time.monotonic()
        if state.failing and now - state.last_warning < WARN_EVERY_S:
            state.unreported += 1
            return
        since = f" ({state.unreported + 1} failed scrapes since the last warning)" if state.failing else ""
        _log.warning(
            "genai_observe: cannot scrape Prometheus metrics from %s: %s%s; trying again every export "
            "interval",
            state.target.label,
            error.reason,
            since,
        )
        state.failing = True
        state.last_warning = now
        state.unreported = 0

    # -- attaching ------------------------------------------------------------------------

    def attach(self, reader: Any, resource: Resource) -> bool:
        """Make every collection of ``reader`` carry the scraped metrics.

        SDK 1.45 has no metric producer API, so the collect callback the MeterProvider gave the
        reader is wrapped (the only SDK internal this module touches). False, with a warning,
        when an SDK release has no such callback.
        """
        original = getattr(reader, "_collect", None)
        if not callable(original):
            _log.warning(
                "genai_observe: this OpenTelemetry SDK release gives no way to add scraped metrics "
                "to its collections; the Prometheus targets are not scraped"
            )
            return False

        def collect(metric_reader: Any, timeout_millis: float = 10_000) -> MetricsData | None:
            data: MetricsData | None = original(metric_reader, timeout_millis=timeout_millis)
            try:
                return self.merge(data, resource, timeout_millis / 2000)
            except Exception:
                _log.debug("genai_observe: could not add scraped metrics", exc_info=True)
                return data

        reader._collect = collect
        return True

    def merge(self, data: MetricsData | None, resource: Resource, budget_s: float) -> MetricsData | None:
        """``data`` (the app's own metrics, or None when it recorded nothing) plus a scrape round."""
        metrics = self.produce(budget_s)
        if not metrics:
            return data
        scope = ScopeMetrics(
            scope=InstrumentationScope(sc.PROMETHEUS_SCOPE, __version__), metrics=metrics, schema_url=""
        )
        if data is None or not data.resource_metrics:
            return MetricsData(
                resource_metrics=[
                    ResourceMetrics(resource=resource, scope_metrics=[scope], schema_url=resource.schema_url)
                ]
            )
        first, *rest = data.resource_metrics
        merged = ResourceMetrics(
            resource=first.resource, scope_metrics=[*first.scope_metrics, scope], schema_url=first.schema_url
        )
        return MetricsData(resource_metrics=[merged, *rest])


def start(
    targets: Sequence[str], export_interval_ms: float, readers: Sequence[Any], resource: Resource
) -> PrometheusScraper | None:
    """The scraper attached to ``init()``'s metric reader, or None (with a warning) without one."""
    if not readers:
        _log.warning(
            "genai_observe: prometheus_targets are set, but genai-observe exports no metrics here (no "
            "endpoint, metrics turned off, or the application's own MeterProvider is used); nothing "
            "is scraped"
        )
        return None
    ancestor, taken = _scraped_elsewhere()
    mine = [t for t in targets if _digest(t) not in taken]
    if len(mine) < len(targets):
        _log.info(
            "genai_observe: process %d, which started this one, scrapes %d of the prometheus_targets; "
            "they are not scraped here again",
            ancestor,
            len(targets) - len(mine),
        )
    if not mine:
        return None
    scraper = PrometheusScraper(mine, export_interval_ms)
    if not scraper.attach(readers[0], resource):
        return None
    hashes = sorted(taken | {_digest(t) for t in mine})
    os.environ[ENV_SCRAPER] = f"{os.getpid()}:{','.join(hashes)}"
    return scraper


def _digest(target: str) -> str:
    return hashlib.sha256(parse_target(target).url.encode()).hexdigest()[:16]


def _scraped_elsewhere() -> tuple[int, set[str]]:
    """The live process (not this one) named by :data:`ENV_SCRAPER`, and the targets it scrapes."""
    pid_text, _, hashes = os.environ.get(ENV_SCRAPER, "").partition(":")
    try:
        pid = int(pid_text)
    except ValueError:
        return 0, set()
    if pid == os.getpid() or pid <= 0:
        return 0, set()  # our own mark: a second init() in this process scrapes again
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return 0, set()  # that process has ended: nobody scrapes its targets any more
    except OSError:
        pass  # it exists, under another user
    return pid, {h for h in hashes.split(",") if h}
