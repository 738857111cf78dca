"""``init()`` and ``shutdown()``: settings in, providers, exporters and instrumentors out."""

from __future__ import annotations

import atexit
import copy
import functools
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
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from . import _config, _export, _instrumentors, _signals
from ._config import CaptureMode, Profile, Settings, load_settings
from ._content import ContentPolicy
from ._recorder import METRICS
from ._resource import build_resource

_log = logging.getLogger("genai_observe")

_CONSOLE_NOTICE = (
    "genai_observe: no OTLP endpoint configured; GenAI operations are printed to stderr and "
    "nothing is being shipped. Set DT_ENDPOINT and DT_API_TOKEN (or OTEL_EXPORTER_OTLP_ENDPOINT) "
    "to export.\n"
)


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
        exporters: tuple[Any, ...] = (),
    ) -> None:
        self.settings = settings
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.logger_provider = logger_provider
        self._owned = owned  # providers we built (and so must flush and shut down)
        self._instrumentors = dict(instrumentors or {})
        self._stats = stats or _export.ExportStats()
        self._drop_counter = drop_counter
        self._exporters = exporters  # ours, with abort(): given up at the shutdown deadline
        self._closed = False
        self._closer: int | None = None  # the thread running shutdown()
        self._shut_down = threading.Event()

    @property
    def enabled(self) -> bool:
        return not self.settings.disabled

    @property
    def instrumented(self) -> tuple[str, ...]:
        """Names of the instrumentations that are active."""
        return tuple(sorted(self._instrumentors))

    def stats(self) -> dict[str, dict[str, int]]:
        """Items the backend rejected (OTLP partial success) and items dropped on full queues."""
        return self._stats.snapshot()

    def force_flush(self, timeout: float | None = None) -> bool:
        millis = int((timeout if timeout is not None else self.settings.shutdown_timeout) * 1000)
        METRICS.drain()
        ok = True
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
        for instrumentor in self._instrumentors.values():
            try:
                instrumentor.uninstrument()
            except Exception:
                _log.debug("genai_observe: uninstrument failed", exc_info=True)
        self._instrumentors.clear()
        METRICS.drain()  # points still queued for the worker go out with the final export
        millis = int((timeout if timeout is not None else self.settings.shutdown_timeout) * 1000)
        _shutdown_within(self._owned, millis, self._exporters, self._stats)
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
        providers = [p for p in (self.tracer_provider, self.meter_provider, self.logger_provider) if p]

        def flush(provider: Any) -> None:
            if provider is self.meter_provider:
                METRICS.drain()
            provider.force_flush(millis)

        _call_within([functools.partial(flush, p) for p in providers], millis)

    def __repr__(self) -> str:
        return f"<genai_observe.Handle instrumented={list(self.instrumented)} settings={self.settings!r}>"


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
    metric_export_interval_ms: int | None = None,
    shutdown_timeout: float | None = None,
    traces: bool | None = None,
    metrics: bool | None = None,
    logs: bool | None = None,
    reuse_existing_providers: bool | None = None,
    disabled: bool | None = None,
) -> Handle:
    """Set up export and instrumentation in one call; see docs/configuration.md.

    Every argument also has an environment variable; an explicit argument wins. Raises
    :class:`genai_observe.ConfigurationError` on a bad value, before anything is set up. A second
    call while initialised returns the same handle (nothing is instrumented or exported twice).
    """
    global _current, _atexit_registered
    settings = load_settings(
        service_name=service_name,
        service_version=service_version,
        deployment_environment=deployment_environment,
        resource_attributes=resource_attributes,
        endpoint=endpoint,
        traces_endpoint=traces_endpoint,
        metrics_endpoint=metrics_endpoint,
        logs_endpoint=logs_endpoint,
        api_token=api_token,
        headers=headers,
        compression=compression,
        export_timeout=export_timeout,
        instrumentations=instrumentations,
        disabled_instrumentations=disabled_instrumentations,
        capture_content=capture_content,
        max_content_length=max_content_length,
        redact=redact,
        profile=profile,
        metric_export_interval_ms=metric_export_interval_ms,
        shutdown_timeout=shutdown_timeout,
        traces=traces,
        metrics=metrics,
        logs=logs,
        reuse_existing_providers=reuse_existing_providers,
        disabled=disabled,
    )
    with _lock:
        if _current is not None and not _current._closed:
            if settings != _current.settings:
                _log.warning(
                    "genai_observe: init() called again with different settings; keeping the first "
                    "setup (call genai_observe.shutdown() first to re-initialise)"
                )
            return _current
        handle = _build(settings)
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


def _build(settings: Settings) -> Handle:
    if settings.disabled:
        return Handle(settings)
    stats = _export.ExportStats()
    owned: list[Any] = []
    exporters: list[Any] = []
    resource = build_resource(settings)
    console = settings.endpoints is None
    console_output = False

    tracer_provider = _existing(trace.get_tracer_provider(), trace.ProxyTracerProvider, settings)
    if tracer_provider is None:
        # shutdown_on_exit=False, here and below: our atexit hook shuts them down, once. The SDK's
        # own hook would call shutdown a second time ("can only be called once") whenever ours
        # had not finished yet, as after shutdown(timeout=0).
        tracer_provider = TracerProvider(resource=resource, sampler=_sampler_plugin(), shutdown_on_exit=False)
        if console and settings.traces:
            console_output = True
            tracer_provider.add_span_processor(
                BatchSpanProcessor(_export.ConsoleSpanExporter(), schedule_delay_millis=200)
            )
        elif settings.traces and settings.endpoints and settings.endpoints.traces:
            queue, batch = settings.batch_sizes("traces")
            exporters.append(_export.span_exporter(settings, stats))
            tracer_provider.add_span_processor(
                BatchSpanProcessor(exporters[-1], max_queue_size=queue, max_export_batch_size=batch)
            )
        owned.append(tracer_provider)
        _set_global(trace.set_tracer_provider, tracer_provider, trace.get_tracer_provider)

    meter_provider = _existing(metrics.get_meter_provider(), _proxy_type(metrics), settings)
    if meter_provider is None:
        readers = []
        if not console and settings.metrics and settings.endpoints and settings.endpoints.metrics:
            exporters.append(_export.metric_exporter(settings, stats))
            readers.append(
                PeriodicExportingMetricReader(
                    exporters[-1],
                    export_interval_millis=settings.metric_export_interval_ms,
                )
            )
        meter_provider = MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False)
        _forget_parent_metrics_after_fork(meter_provider)
        owned.append(meter_provider)
        _set_global(metrics.set_meter_provider, meter_provider, metrics.get_meter_provider)

    logger_provider = _existing(_logs.get_logger_provider(), _proxy_type(_logs), settings)
    if logger_provider is None:
        logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
        if not console and settings.logs and settings.endpoints and settings.endpoints.logs:
            exporters.append(_export.log_exporter(settings, stats))
            logger_provider.add_log_record_processor(
                BatchLogRecordProcessor(
                    exporters[-1],
                    max_queue_size=settings.batch_sizes("logs")[0],
                    max_export_batch_size=settings.batch_sizes("logs")[1],
                )
            )
        owned.append(logger_provider)
        _set_global(_logs.set_logger_provider, logger_provider, _logs.get_logger_provider)

    drop_counter = _export.DropCounter(stats)
    drop_counter.install()
    if exporters:
        _export.ExportLogSummary.attach(stats)
    METRICS.on_drop = stats.add_dropped
    if console_output:
        sys.stderr.write(_CONSOLE_NOTICE)

    content = ContentPolicy(settings.max_content_length, settings.redact)
    instrumentors: dict[str, Any] = {}
    for name in sorted(settings.instrumentations):
        try:
            instrumentor = _instrumentors.load(name)
            if instrumentor is None:
                continue
            instrumentor.instrument(
                tracer_provider=tracer_provider,
                meter_provider=meter_provider,
                logger_provider=logger_provider,
                capture=settings.capture,
                profile=settings.profile,
                content=content,
                stream_usage=settings.openai_stream_usage,
                skip_dep_check=True,  # absent SDKs are simply never imported, so never patched
            )
            instrumentors[name] = instrumentor
        except Exception:
            _log.warning("genai_observe: could not enable the %s instrumentation", name, exc_info=True)
    return Handle(
        settings,
        tracer_provider,
        meter_provider,
        logger_provider,
        owned=tuple(owned),
        instrumentors=instrumentors,
        stats=stats,
        drop_counter=drop_counter,
        exporters=tuple(exporters),
    )


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
