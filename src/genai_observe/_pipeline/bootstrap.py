"""``init()`` and ``shutdown()``: settings in, providers, exporters and instrumentors out."""

from __future__ import annotations

import atexit
import copy
import dataclasses
import functools
import itertools
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import wrapt
from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from .._core import local_metrics as _local_metrics
from .._core import semconv as sc
from .._core.content import ContentPolicy
from .._core.metrics import METRICS
from .._core.modes import CaptureMode, Profile
from ..instrumentation._kit import registry as _instrumentors
from . import bizevents as _bizevents
from . import exporters as _export
from . import logmask as _logmask
from . import settings as _config
from . import signals as _signals
from .resource import build_resource
from .settings import Settings, load_settings
from .switch import SwitchableLogRecordProcessor, SwitchableSpanProcessor

_log = logging.getLogger("genai_observe")

_CONSOLE_NOTICE = (
    "genai_observe: no OTLP endpoint configured; GenAI operations are printed to stderr and "
    "nothing is being shipped. Set DT_ENDPOINT and DT_API_TOKEN (or OTEL_EXPORTER_OTLP_ENDPOINT) "
    "to export.\n"
)


@dataclasses.dataclass
class _Pipeline:
    """Where the providers ``init()`` built send their data; replaced by a later ``init()``.

    ``None`` for a signal recorded into a provider the application set up itself.
    """

    spans: SwitchableSpanProcessor | None = None
    logs: SwitchableLogRecordProcessor | None = None
    meter_provider: MeterProvider | None = None
    reader: MetricReader | None = None
    # Every OTLP exporter built for this handle (a later init() adds its own): told to give up
    # near the shutdown deadline, so a retry wait cannot hold the exit (see _shutdown_within).
    exporters: list[Any] = dataclasses.field(default_factory=list)
    # Streams' time_per_output_chunk, aggregated in process for meter_provider's exports.
    local_metrics: _local_metrics.LocalMetrics = dataclasses.field(
        default_factory=_local_metrics.LocalMetrics
    )


_HANDLE_SERIALS = itertools.count(1)


class Handle:
    """What ``init()`` set up. ``shutdown()`` flushes and stops it; the atexit hook does too."""

    def __init__(
        self,
        settings: Settings,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        logger_provider: Any = None,
        owned: tuple[Any, ...] = (),
        instrumentors: Mapping[str, Any] | None = None,
        stats: _export.ExportStats | None = None,
        drop_counter: _export.DropCounter | None = None,
        pipeline: _Pipeline | None = None,
        automatic: bool = False,
        scraper: Any = None,
    ) -> None:
        self.settings = settings
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.logger_provider = logger_provider
        self._owned = owned  # providers we built (and so must flush and shut down)
        self._instrumentors = dict(instrumentors or {})
        # Instrumentors are process-wide singletons: anyone may uninstrument one (honoured) or
        # instrument it again for their own providers. The recorder each got from init() tells
        # whether the instrumentation is still this handle's.
        self._recorders = {name: getattr(i, "recorder", None) for name, i in self._instrumentors.items()}
        self._stats = stats or _export.ExportStats()
        self._drop_counter = drop_counter
        self._scraper = scraper  # _prometheus.PrometheusScraper when prometheus_targets are set
        self._closed = False
        self._pipeline = pipeline or _Pipeline()
        # Built by the zero-code bootstrap from the environment alone: the app's own init()
        # then applies its settings to it (see _apply).
        self._automatic = automatic
        self._generation = 0  # bumped whenever settings change in place (llm_call's recorder)
        # Unique for the process's lifetime, unlike id(): a new handle can get a shut down one's
        # address, and llm_call() must not take it for the old one (its recorder's providers).
        self._serial = next(_HANDLE_SERIALS)
        self._closer: int | None = None  # the thread running shutdown()
        self._shut_down = threading.Event()
        self._events: _bizevents.EventPipeline | None = None  # business events and usage logs

    @property
    def enabled(self) -> bool:
        return not self.settings.disabled

    @property
    def instrumented(self) -> tuple[str, ...]:
        """Names of the instrumentations that are active: set up, and their SDK imported."""
        return tuple(name for name, state in self.instrumentation_status().items() if state == "active")

    @property
    def pending(self) -> tuple[str, ...]:
        """Names of the instrumentations set up but waiting for the app to import their SDK.

        Patching happens on import, so an SDK that is not installed (or never imported) stays
        here; nothing of it is loaded.
        """
        return tuple(name for name, state in self.instrumentation_status().items() if state == "pending")

    def instrumentation_status(self) -> dict[str, str]:
        """Each instrumentation ``init()`` set up: ``active``, ``pending`` (SDK not imported yet)
        or ``removed`` (someone called the instrumentor's ``uninstrument()``)."""
        status: dict[str, str] = {}
        for name, instrumentor in sorted(self._instrumentors.items()):
            if not self._owns(name):
                status[name] = "removed"
            elif getattr(instrumentor, "module", "") in sys.modules:
                status[name] = "active"
            else:
                status[name] = "pending"
        return status

    def _adopt(self, name: str, instrumentor: Any) -> None:
        """``instrumentor`` (instrumented or configured by ``init()``) is this handle's from now on."""
        self._instrumentors[name] = instrumentor
        self._recorders[name] = getattr(instrumentor, "recorder", None)

    def _owns(self, name: str) -> bool:
        """False once someone else uninstrumented (and maybe re-instrumented) ``name``."""
        instrumentor = self._instrumentors.get(name)
        return (
            instrumentor is not None
            and bool(getattr(instrumentor, "is_instrumented_by_opentelemetry", False))
            and getattr(instrumentor, "recorder", None) is self._recorders.get(name)
        )

    def stats(self) -> dict[str, dict[str, int]]:
        """Items the backend rejected (OTLP partial success) and items dropped on full queues;
        with prometheus_targets also scrapes done, failed and timed out, series and samples dropped."""
        snapshot = self._stats.snapshot()
        if self._scraper is not None:
            snapshot["prometheus"] = self._scraper.stats()
        if self._events is not None:
            snapshot["events"] = self._events.stats()
        return snapshot

    def force_flush(self, timeout: float | None = None) -> bool:
        millis = int((timeout if timeout is not None else self.settings.shutdown_timeout) * 1000)
        METRICS.drain()
        ok = True
        if self._events is not None:  # first: it may emit OTLP log records the providers flush
            ok = self._events.force_flush(millis / 2000)
        for provider in self._owned:
            try:
                ok = bool(provider.force_flush(millis)) and ok
            except Exception:
                ok = False
        return ok

    def shutdown(self, timeout: float | None = None) -> None:
        """Uninstrument, flush what is queued, stop export threads. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._closer = threading.get_ident()
        try:
            self._shutdown(timeout)
        finally:
            self._shut_down.set()
            if _signal_handle is self:
                # Last: a SIGTERM during the shutdown waited for it (or was deferred until now).
                _uninstall_signal_flush()

    def _shutdown(self, timeout: float | None) -> None:
        for name, instrumentor in self._instrumentors.items():
            if not self._owns(name):  # removed by someone else: nothing of ours left to remove
                continue
            try:
                instrumentor.uninstrument()
            except Exception:
                _log.debug("genai_observe: uninstrument failed", exc_info=True)
        self._instrumentors.clear()
        if self._scraper is not None:
            self._scraper.stop()  # the final collection goes out without waiting for a scrape
        METRICS.drain()  # points still queued for the worker go out with the final export
        millis = int((timeout if timeout is not None else self.settings.shutdown_timeout) * 1000)
        if self._events is not None:  # half the budget at most: a dead events endpoint cannot
            started = time.monotonic()  # cost the spans, metrics and logs their final export
            self._events.shutdown(millis / 2000)
            millis = max(0, millis - int((time.monotonic() - started) * 1000))
        _shutdown_within(self._owned, millis, tuple(self._pipeline.exporters), self._stats)
        if self._drop_counter is not None:
            self._drop_counter.remove()
        if METRICS.on_drop == self._stats.add_dropped:
            METRICS.on_drop = None

    def _flush_before_signal_exit(self) -> None:
        """Export everything recorded so far, within ``shutdown_timeout``; the process dies next.

        Flushes rather than shuts down: a process the signal does not end after all (PID 1) keeps
        working. The providers are flushed even when they are the application's own: ours record
        into them, and nothing else flushes them before the signal's default action.
        """
        millis = int(self.settings.shutdown_timeout * 1000)
        if self._closed or millis <= 0:
            return
        if self._events is not None:  # business events first, within half the budget
            started = time.monotonic()
            self._events.force_flush(millis / 2000)
            millis = max(1, millis - int((time.monotonic() - started) * 1000))
        providers = [p for p in (self.tracer_provider, self.meter_provider, self.logger_provider) if p]

        def flush(provider: Any) -> None:
            if provider is self.meter_provider:
                METRICS.drain()
            provider.force_flush(millis)

        _call_within([functools.partial(flush, p) for p in providers], millis)

    def __repr__(self) -> str:
        return (
            f"<genai_observe.Handle instrumented={list(self.instrumented)} pending={list(self.pending)} "
            f"settings={self.settings!r}>"
        )


def _call_within(
    calls: list[Callable[[], object]], millis: int, near_deadline: Callable[[], object] | None = None
) -> bool:
    """Run ``calls`` in parallel daemon threads, waiting at most ``millis`` in all; True if all
    finished in time.

    Threads: a call stuck on a lock the interrupted thread holds, or in an export to a dead
    backend, cannot hold the caller past the deadline, and does not keep the process alive.
    ``near_deadline`` runs shortly before the deadline if calls are still running, to end them.
    """
    threads = []
    for call in calls:

        def run(call: Callable[[], object] = call) -> None:
            try:
                call()
            except Exception:
                _log.debug("genai_observe: flush or shutdown failed", exc_info=True)

        thread = threading.Thread(target=run, name="genai-observe-shutdown", daemon=True)
        thread.start()
        threads.append(thread)
    deadline = time.monotonic() + millis / 1000
    if near_deadline is not None:
        # Leave a tenth of the budget (at most 0.25 s) for the calls to end after being told to.
        soon = deadline - min(0.25, millis / 10_000)
        for thread in threads:
            thread.join(max(0.0, soon - time.monotonic()))
        if any(t.is_alive() for t in threads):
            try:
                near_deadline()
            except Exception:
                _log.debug("genai_observe: aborting the final exports failed", exc_info=True)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return not any(t.is_alive() for t in threads)


def _shutdown_within(
    providers: tuple[Any, ...],
    millis: int,
    exporters: tuple[Any, ...] = (),
    stats: _export.ExportStats | None = None,
) -> None:
    """Shut the providers down in parallel, never waiting longer than ``millis`` in total.

    A dead backend can hold each provider's final export for its export timeout, retries
    included; shutting them down one after the other would add those up. Near the deadline the
    exporters are shut down, which ends a retry wait at once. Whatever went wrong is said in one
    line: export failures are held back from the rate-limited reports meanwhile.
    """
    if stats is not None:
        stats.hold_failures()

    def shut(provider: Any) -> None:
        if isinstance(provider, MeterProvider):
            provider.shutdown(timeout_millis=max(millis, 1))
        else:
            provider.shutdown()

    def abort() -> None:
        for exporter in exporters:
            exporter.abort()

    finished = _call_within([functools.partial(shut, p) for p in providers], millis, abort)
    if millis <= 0:  # "do not wait": nothing to say either
        return
    failed = sorted(stats.failed_at_shutdown) if stats is not None else []
    error = stats.last_error if stats is not None else None
    if not finished:
        _log.warning(
            "genai_observe: shutdown did not finish within %.1fs; unsent telemetry dropped%s",
            millis / 1000,
            f" (last export error: {error})" if error else "",
        )
    elif failed:
        _log.warning(
            "genai_observe: the final export of %s failed; the telemetry is dropped: %s",
            ", ".join(failed),
            error or "timeout or retries exhausted",
        )
    if finished and stats is not None:
        _export.ExportLogSummary.detach(stats)


_lock = threading.RLock()
_built: weakref.WeakSet[Any] = weakref.WeakSet()  # providers init() created, never "the app's own"
_current: Handle | None = None
_signal_handle: Handle | None = None  # the handle the SIGTERM/SIGINT stand-in flushes
_atexit_registered = False


def init(
    *,
    service_name: str | None = None,
    service_version: str | None = None,
    deployment_environment: str | None = None,
    resource_attributes: Mapping[str, Any] | None = None,
    endpoint: str | None = None,
    traces_endpoint: str | None = None,
    metrics_endpoint: str | None = None,
    logs_endpoint: str | None = None,
    api_token: str | None = None,
    headers: Mapping[str, str] | None = None,
    compression: str | None = None,
    export_timeout: float | None = None,
    instrumentations: Iterable[str] | str | None = None,
    disabled_instrumentations: Iterable[str] | str | None = None,
    capture_content: bool | str | CaptureMode | None = None,
    max_content_length: int | None = None,
    redact: Callable[[str], str] | None = None,
    profile: str | Profile | None = None,
    legacy_content: bool | None = None,
    metric_export_interval_ms: int | None = None,
    shutdown_timeout: float | None = None,
    traces: bool | None = None,
    metrics: bool | None = None,
    logs: bool | None = None,
    reuse_existing_providers: bool | None = None,
    disabled: bool | None = None,
    allow_insecure_token: bool | None = None,
    prometheus_targets: Iterable[str] | str | None = None,
    audit_events: bool | None = None,
    usage_logs: bool | None = None,
    bizevents_endpoint: str | None = None,
    app_name: str | None = None,
    api_endpoint: str | None = None,
    disable_batch: bool | None = None,
) -> Handle:
    """Set up export and instrumentation in one call; see docs/configuration.md.

    Every argument also has an environment variable; an explicit argument wins. Raises
    :class:`genai_observe.ConfigurationError` on a bad value, before anything is set up. A second
    call while initialised returns the same handle (nothing is instrumented or exported twice):
    after the zero-code bootstrap's setup its settings apply; after another ``init()`` in code the
    first setup stays, except that turning content capture off always applies.

    ``app_name``, ``api_endpoint``, ``disable_batch`` and an ``Authorization: Api-Token`` entry
    of ``headers`` are Traceloop's spellings, so its setup code works with only the import
    changed (docs/migrating-from-openllmetry.md).
    """
    # The keywords are options.OPTIONS' argument names (a test holds them equal); forwarded as
    # given, so that the table is the one place that knows what each means.
    arguments = dict(locals())
    settings = load_settings(**arguments)
    return _start(settings, automatic=False)


def init_automatic(**kwargs: Any) -> Handle:
    """``init()`` for the zero-code bootstrap and the ``opentelemetry-instrument`` configurator.

    The setup it builds gives way to the application's own ``init()`` call, if there is one.
    """
    return _start(load_settings(**kwargs), automatic=True)


def _start(settings: Settings, *, automatic: bool) -> Handle:
    global _current, _atexit_registered
    with _lock:
        current = _current
        if current is not None and not current._closed:
            if settings == current.settings:
                current._automatic = current._automatic and automatic
                return current
            if current._automatic and not automatic:
                return _take_over(current, settings)
            _keep_first(current, settings)
            return current
        handle = _build(settings)
        handle._automatic = automatic
        _current = handle
        if handle.enabled:
            _install_signal_flush(handle)
        if not _atexit_registered:
            atexit.register(_shutdown_at_exit)
            # Lazily: an app that never imports multiprocessing does not pay for importing it.
            wrapt.register_post_import_hook(_flush_multiprocessing_children, "multiprocessing.util")
            _atexit_registered = True
        return handle


def shutdown(timeout: float | None = None) -> None:
    """Flush and stop what ``init()`` set up. Safe to call when nothing was set up."""
    global _current
    with _lock:
        handle, _current = _current, None
    if handle is not None:
        handle.shutdown(timeout)


def _take_over(current: Handle, settings: Settings) -> Handle:
    """The app's ``init()`` after the zero-code bootstrap's: the app's settings apply.

    Its explicit arguments win over the environment the bootstrap read, as everywhere. The
    providers stay the same objects (they are the global ones, and tracers handed out from them
    must keep working): their resource, exporters and the instrumentations' content settings
    change in place. Only a change of ``disabled`` builds anew or tears down.
    """
    global _current
    if settings.disabled or current.settings.disabled:
        current.shutdown()
        handle = _build(settings)
        _current = handle
        return handle
    try:
        _apply(current, settings)
    except Exception:  # never raise into the app: keep what the bootstrap built
        _log.warning("genai_observe: could not apply init()'s settings to the zero-code setup", exc_info=True)
    current._automatic = False
    return current


def _keep_first(current: Handle, settings: Settings) -> None:
    """A second ``init()`` in code keeps the first setup, except that content can be turned off.

    Exporters switching mid-run because two parts of an app both call ``init()`` would surprise
    more than they help; but a call asking for no content is a privacy decision and always wins.
    """
    if not settings.capture.any and current.settings.capture.any:
        _apply_content(current, dataclasses.replace(current.settings, capture=settings.capture))
        _log.warning(
            "genai_observe: init() called again with content capture off; content capture is now off"
        )
    if settings != current.settings:
        _log.warning(
            "genai_observe: init() called again with different settings; keeping the first "
            "setup (call genai_observe.shutdown() first to re-initialise)"
        )


_RETIRE_WAIT_S = 2.0
_CONTENT_FIELDS = frozenset(
    {"capture", "profile", "max_content_length", "redact", "legacy_content", "instrumentations"}
)


def _apply(handle: Handle, settings: Settings) -> None:
    """Give ``handle`` the ``settings``: resource and exporters replaced, instrumentations updated."""
    old = handle.settings
    export_changed = any(
        getattr(old, f.name) != getattr(settings, f.name)
        for f in dataclasses.fields(Settings)
        if f.name not in _CONTENT_FIELDS
    )
    if export_changed:
        _logmask.protect(_secrets(settings))
        resource = build_resource(settings)
        for provider in handle._owned:
            update = getattr(provider, "_update_resource", None)  # what the SDK calls after a fork
            if callable(update):
                update(resource)
        pipeline, stats = handle._pipeline, handle._stats
        retired: list[Any] = []
        if pipeline.spans is not None:
            retired.append(pipeline.spans.swap(_span_processor(settings, stats, pipeline.exporters)))
        if pipeline.logs is not None:
            retired.append(pipeline.logs.swap(_log_processor(settings, stats, pipeline.exporters)))
        if handle._events is not None:  # business events: the new endpoint and switches
            handle._events.shutdown(min(settings.shutdown_timeout, _RETIRE_WAIT_S))
            handle._events = _start_events(settings, handle.logger_provider, resource)
        if pipeline.meter_provider is not None:
            METRICS.drain()  # points of calls made before this init() belong to the old setup
            reader = _metric_reader(settings, stats, pipeline.exporters, (pipeline.local_metrics, resource))
            _replace_reader(pipeline.meter_provider, pipeline.reader, reader)
            pipeline.reader = reader
            if reader is not None:
                _local_metrics.attach(pipeline.meter_provider, pipeline.local_metrics)
            # The scraper feeds the reader's collections: a new reader gets a new scraper.
            if handle._scraper is not None:
                handle._scraper.stop()
            handle._scraper = _start_scraper(settings, [reader] if reader is not None else [], resource)
        if pipeline.exporters:
            _export.ExportLogSummary.attach(stats)  # idempotent; a console setup had none
        # The app's init() waits for the old pipeline's last export at most this long; a dead
        # old backend finishes (or not) on a daemon thread.
        _close_within([r for r in retired if r is not None], min(settings.shutdown_timeout, _RETIRE_WAIT_S))
    _apply_content(handle, settings)


def _start_events(settings: Settings, logger_provider: Any, resource: Any) -> _bizevents.EventPipeline:
    """The business events pipeline (audit trail, evaluation results, usage logs); idle until used."""
    service = str(resource.attributes.get(sc.SERVICE_NAME) or "unknown_service")
    return _bizevents.start(settings, logger_provider, service)


def _start_scraper(settings: Settings, readers: list[Any], resource: Any) -> Any:
    """The Prometheus scraper feeding ``readers``, when targets are set (else None)."""
    if not settings.prometheus_targets:
        return None
    from . import prometheus as _prometheus  # imports prometheus-client: only when targets are set

    interval = settings.metric_export_interval_ms
    return _prometheus.start(settings.prometheus_targets, interval, readers, resource)


def _replace_reader(provider: MeterProvider, old: MetricReader | None, new: MetricReader | None) -> None:
    """Swap a metric reader of ``provider``; the old one exports what it holds first.

    The old one goes first, so that no point is exported twice. The SDK's add/remove_metric_reader
    leave out the list its ``force_flush()`` and ``shutdown()`` walk (SDK 1.45), so that list is
    kept in step here; without that the new reader would never get its final export.
    """
    if old is not None:
        provider.remove_metric_reader(old)
    if new is not None:
        provider.add_metric_reader(new)
    readers: Any = getattr(provider, "_metric_readers", None)
    if isinstance(readers, (tuple, list)):
        kept = [r for r in readers if r is not old and r is not new]
        provider._metric_readers = (*kept, *([new] if new is not None else []))


def _apply_content(handle: Handle, settings: Settings) -> None:
    """Instrumentations on or off as ``settings`` say; content settings changed in place."""
    content = content_policy(settings)
    for name in [n for n in handle._instrumentors if n not in settings.instrumentations]:
        try:
            handle._instrumentors.pop(name).uninstrument()
        except Exception:
            _log.debug("genai_observe: uninstrument failed", exc_info=True)
    for name in sorted(settings.instrumentations):
        try:
            instrumentor = handle._instrumentors.get(name) or _instrumentors.load(name)
            if instrumentor is None:
                continue
            if instrumentor.is_instrumented_by_opentelemetry:
                # Ours, or instrumented by opentelemetry-instrument (instrumentors are singletons).
                instrumentor.configure(capture=settings.capture, profile=settings.profile, content=content)
            else:
                _instrument(instrumentor, settings, handle, content)
            handle._adopt(name, instrumentor)
        except Exception:
            _log.warning("genai_observe: could not enable the %s instrumentation", name, exc_info=True)
    handle.settings = settings
    handle._generation += 1


def _close_within(processors: list[Any], timeout: float) -> None:
    """Shut the replaced processors down (flushing what they hold), waiting at most ``timeout``."""
    threads = [threading.Thread(target=_quietly(p.shutdown), daemon=True) for p in processors]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


def _quietly(function: Callable[[], Any]) -> Callable[[], None]:
    def run() -> None:
        try:
            function()
        except Exception:
            _log.debug("genai_observe: shutting down a replaced processor failed", exc_info=True)

    return run


def current() -> Handle | None:
    """The live handle; a handle shut down through ``Handle.shutdown()`` no longer counts."""
    handle = _current
    return handle if handle is not None and not handle._closed else None


class _ForkedChildren:
    """Anchor for multiprocessing's after-fork registry (it holds its objects weakly)."""


_FORKED_CHILDREN = _ForkedChildren()


def _flush_multiprocessing_children(util: Any) -> None:
    """A fork-started ``multiprocessing`` child flushes its telemetry when it ends.

    Such a child ends with ``os._exit()``, which skips ``atexit``; it does run multiprocessing's
    own finalizers, but clears those inherited from the parent first. Its after-fork callbacks run
    after that clearing, so one of them registers ``shutdown`` as a finalizer of the child. A
    ``Pool`` ended with ``terminate()`` sends its workers SIGTERM: that is the stand-in's (_signals).
    """
    try:
        util.register_after_fork(
            _FORKED_CHILDREN, lambda _anchor: util.Finalize(None, _shutdown_at_exit, exitpriority=10)
        )
    except Exception as exc:
        _log.debug("genai_observe: cannot flush multiprocessing children: %r", exc)


def _before_signal_default_action() -> bool:
    """What the SIGTERM/SIGINT stand-in runs before the signal's default action.

    True asks the stand-in to hold the signal back: this very thread was running ``shutdown()``
    when the signal came (an ``atexit`` or multiprocessing exit hook), which re-raises it once the
    flush is done. A shutdown under way in another thread is waited for.
    """
    handle = _signal_handle
    if handle is None:
        return False
    if not handle._closed:
        handle._flush_before_signal_exit()
        return False
    if handle._closer == threading.get_ident():
        return True
    handle._shut_down.wait(handle.settings.shutdown_timeout)
    return False


def _install_signal_flush(handle: Handle) -> None:
    global _signal_handle
    try:
        _signals.install(_before_signal_default_action)
        _signal_handle = handle
    except Exception as exc:  # never stop init(); the atexit flush still works
        _log.debug("genai_observe: cannot flush on SIGTERM/SIGINT: %r", exc)


def _uninstall_signal_flush() -> None:
    global _signal_handle
    _signal_handle = None
    try:
        _signals.uninstall()  # re-raises a signal held back during the shutdown
    except Exception as exc:
        _log.debug("genai_observe: cannot restore the signal handlers: %r", exc)


def _shutdown_at_exit() -> None:
    modules = len(sys.modules)
    try:
        shutdown()
    except Exception:
        pass
    if len(sys.modules) != modules and getattr(sys, "last_type", None) is KeyboardInterrupt:
        _keep_keyboard_interrupt_exit()


def _keep_keyboard_interrupt_exit() -> None:
    """Keep an exit by an unhandled KeyboardInterrupt an exit by SIGINT.

    CPython ends such a process by re-raising SIGINT, so that its parent (a shell, a supervisor)
    sees it die from the signal; but a module imported after the main module has ended (the
    exporters, built on their first export, and what they import) clears the interpreter's note of
    it, and the process exits with status 1 instead. Evaluating ``raise KeyboardInterrupt`` through
    ``PyRun_StringFlags``, the C API function that keeps that note, sets it again.
    """
    try:
        import ctypes

        run = ctypes.pythonapi.PyRun_StringFlags
        run.restype = ctypes.py_object
        run.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.py_object, ctypes.py_object, ctypes.c_void_p]
        run(b"raise KeyboardInterrupt", 257, {}, {}, None)  # 257: Py_file_input
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # no ctypes, another interpreter: status 1, as it would be anyway
        _log.debug("genai_observe: cannot keep the SIGINT exit: %r", exc)


# Each builder appends the OTLP exporter it makes to ``exporters`` (the handle's pipeline).


def _span_processor(
    settings: Settings, stats: _export.ExportStats, exporters: list[Any]
) -> SpanProcessor | None:
    if not settings.traces:
        return None
    if settings.endpoints is None:  # console mode
        return BatchSpanProcessor(_export.ConsoleSpanExporter(), schedule_delay_millis=200)
    if not settings.endpoints.traces:
        return None
    queue, batch = settings.batch_sizes("traces")
    exporters.append(_export.span_exporter(settings, stats))
    return BatchSpanProcessor(
        exporters[-1],
        max_queue_size=queue,
        max_export_batch_size=batch,
        schedule_delay_millis=_delay(settings),
    )


def _log_processor(
    settings: Settings, stats: _export.ExportStats, exporters: list[Any]
) -> BatchLogRecordProcessor | None:
    if not (settings.logs and settings.endpoints and settings.endpoints.logs):
        return None
    queue, batch = settings.batch_sizes("logs")
    exporters.append(_export.log_exporter(settings, stats))
    return BatchLogRecordProcessor(
        exporters[-1],
        max_queue_size=queue,
        max_export_batch_size=batch,
        schedule_delay_millis=_delay(settings),
    )


def _delay(settings: Settings) -> float | None:
    """The batch processors' schedule delay: prompt with ``disable_batch``, else the SDK's (its variable).

    Traceloop's ``disable_batch=True`` means a synchronous processor: every span end waits for its
    export. That would block the app on the backend, which this library never does; a short delay
    on the batch processor's own thread gives the promptness people use it for.
    """
    return _config.PROMPT_EXPORT_DELAY_MS if settings.disable_batch else None


def _metric_reader(
    settings: Settings,
    stats: _export.ExportStats,
    exporters: list[Any],
    local: tuple[_local_metrics.LocalMetrics, Any],
) -> MetricReader | None:
    if not (settings.metrics and settings.endpoints and settings.endpoints.metrics):
        return None
    exporters.append(_export.metric_exporter(settings, stats, local))
    interval = settings.metric_export_interval_ms
    return _export.LocalMetricsReader(exporters[-1], local[0], export_interval_millis=interval)


def _build(settings: Settings) -> Handle:
    if settings.disabled:
        return Handle(settings)
    stats = _export.ExportStats()
    owned: list[Any] = []
    pipeline = _Pipeline()
    resource = build_resource(settings)

    tracer_provider = _existing(trace.get_tracer_provider(), trace.ProxyTracerProvider, settings)
    if tracer_provider is None:
        tracer_provider = TracerProvider(resource=resource, sampler=_sampler_plugin(), shutdown_on_exit=False)
        pipeline.spans = SwitchableSpanProcessor(_span_processor(settings, stats, pipeline.exporters))
        tracer_provider.add_span_processor(pipeline.spans)
        owned.append(tracer_provider)
        _set_global(trace.set_tracer_provider, tracer_provider, trace.get_tracer_provider)

    meter_provider = _existing(metrics.get_meter_provider(), _proxy_type(metrics), settings)
    readers: list[MetricReader] = []
    if meter_provider is None:
        local = (pipeline.local_metrics, resource)
        pipeline.reader = _metric_reader(settings, stats, pipeline.exporters, local)
        meter_provider = MeterProvider(
            resource=resource,
            metric_readers=[pipeline.reader] if pipeline.reader is not None else [],
            shutdown_on_exit=False,
        )
        pipeline.meter_provider = meter_provider
        if pipeline.reader is not None:
            _local_metrics.attach(meter_provider, pipeline.local_metrics)
            readers.append(pipeline.reader)
        _forget_parent_metrics_after_fork(meter_provider)
        owned.append(meter_provider)
        _set_global(metrics.set_meter_provider, meter_provider, metrics.get_meter_provider)
    scraper = _start_scraper(settings, readers, resource)

    logger_provider = _existing(_logs.get_logger_provider(), _proxy_type(_logs), settings)
    if logger_provider is None:
        logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
        pipeline.logs = SwitchableLogRecordProcessor(_log_processor(settings, stats, pipeline.exporters))
        logger_provider.add_log_record_processor(pipeline.logs)
        owned.append(logger_provider)
        _set_global(_logs.set_logger_provider, logger_provider, _logs.get_logger_provider)

    _logmask.protect(_secrets(settings))
    drop_counter = _export.DropCounter(stats)
    drop_counter.install()
    if pipeline.exporters:
        _export.ExportLogSummary.attach(stats)
    METRICS.on_drop = stats.add_dropped
    if pipeline.spans is not None and pipeline.spans.inner is not None and settings.endpoints is None:
        sys.stderr.write(_CONSOLE_NOTICE)

    handle = Handle(
        settings,
        tracer_provider,
        meter_provider,
        logger_provider,
        owned=tuple(owned),
        stats=stats,
        drop_counter=drop_counter,
        pipeline=pipeline,
        scraper=scraper,
    )
    handle._events = _start_events(settings, logger_provider, resource)
    content = content_policy(settings)
    for name in sorted(settings.instrumentations):
        try:
            instrumentor = _instrumentors.load(name)
            if instrumentor is None:
                continue
            _instrument(instrumentor, settings, handle, content)
            handle._adopt(name, instrumentor)
        except Exception:
            _log.warning("genai_observe: could not enable the %s instrumentation", name, exc_info=True)
    return handle


def content_policy(settings: Settings) -> ContentPolicy:
    """The content policy ``settings`` describe: cap, redaction hook, content forms."""
    return ContentPolicy(settings.max_content_length, settings.redact, legacy_form=settings.legacy_content)


def _instrument(instrumentor: Any, settings: Settings, handle: Handle, content: ContentPolicy) -> None:
    instrumentor.instrument(
        tracer_provider=handle.tracer_provider,
        meter_provider=handle.meter_provider,
        logger_provider=handle.logger_provider,
        capture=settings.capture,
        profile=settings.profile,
        content=content,
        stream_usage=settings.openai_stream_usage,
        skip_dep_check=True,  # absent SDKs are simply never imported, so never patched
    )


def _secrets(settings: Settings) -> list[str]:
    """The token and credential header values: what no log line may show."""
    values = [settings.token.reveal()] if settings.token is not None else []
    for headers in settings.headers.values():
        values += [v for k, v in headers.items() if _config.is_credential_header(k)]
    return values


def _forget_parent_metrics_after_fork(provider: MeterProvider) -> None:
    """A forked child starts with empty metric storage instead of the parent's unexported totals.

    The SDK re-creates its span and log queues and the metric reader's thread in a child, but not
    the metric aggregations: with DELTA temporality every gunicorn or multiprocessing worker would
    export, on its first collection, everything its parent recorded since the parent's last export,
    which the parent exports as well. The SDK has no public reset, so the child swaps each reader's
    storage for an empty copy (never touching a lock a parent thread may have held at fork time).
    Weakly referenced: a provider shut down and collected is left alone.
    """
    if not hasattr(os, "register_at_fork"):
        return
    ref = weakref.ref(provider)

    def after_in_child() -> None:
        current = ref()
        if current is None:
            return
        try:
            consumer: Any = current._measurement_consumer
            storages: dict[Any, Any] = consumer._reader_storages
            consumer._lock = threading.Lock()
            for reader, storage in list(storages.items()):
                fresh = copy.copy(storage)
                fresh._lock = threading.RLock()
                fresh._instrument_view_instrument_matches = {}
                storages[reader] = fresh
        except Exception as exc:  # an SDK release with other internals: export as the SDK would
            _log.debug("genai_observe: could not reset metric state after fork: %r", exc)

    os.register_at_fork(after_in_child=after_in_child)


def _sampler_plugin() -> Any:
    """A sampler registered by a package under OTEL_TRACES_SAMPLER's name, else None.

    The SDK's TracerProvider only knows its built-in samplers; plugins (validated in _config) are
    loaded here. None lets the SDK read OTEL_TRACES_SAMPLER/_ARG itself.
    """
    import os
    from importlib.metadata import entry_points

    name = os.environ.get("OTEL_TRACES_SAMPLER", "").strip()
    if not name or name.lower() in _config._KNOWN_SAMPLERS:
        return None
    for ep in entry_points(group="opentelemetry_traces_sampler"):
        if ep.name == name:
            return ep.load()(os.environ.get("OTEL_TRACES_SAMPLER_ARG"))
    return None


def _proxy_type(module: Any) -> type:
    # The API modules expose their proxy providers only privately; resolve them defensively.
    for name in ("_ProxyMeterProvider", "ProxyLoggerProvider", "_ProxyLoggerProvider"):
        found = getattr(module, name, None) or getattr(getattr(module, "_internal", None), name, None)
        if isinstance(found, type):
            return found
    return type(None)


def _existing(provider: Any, proxy_type: type, settings: Settings) -> Any | None:
    """The application's own provider when it set one and we may reuse it; else None."""
    if isinstance(provider, proxy_type) or not settings.reuse_existing_providers or provider in _built:
        return None
    if type(provider).__name__.startswith(("NoOp", "_NoOp", "Proxy", "_Proxy")):
        return None
    return provider


def _set_global(setter: Callable[[Any], None], provider: Any, getter: Callable[[], Any]) -> None:
    """Install as the global provider when none is set yet (OTel allows setting it only once).

    After ``shutdown()`` and a new ``init()`` the globals stay the first (shut down) providers;
    our instrumentors always receive the new providers explicitly, so they keep working.
    """
    _built.add(provider)
    if type(getter()).__name__.startswith(("Proxy", "_Proxy", "NoOp", "_NoOp")):
        setter(provider)
