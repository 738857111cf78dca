"""Metric points, recorded off the app's thread: the neutral snapshot a point needs and the
bounded background worker that records it (drained by every collection; see MetricsWorker)."""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry.metrics import CallbackOptions, Observation

from .diagnostics import report_internal_error
from .record import GuardrailAssessment, LLMCall, Usage


@dataclass(slots=True)
class MetricSnapshot:
    """The few fields metrics need, so a queued point never holds a call's messages."""

    operation: str
    provider: str
    system: str | None
    request_model: str | None
    response_model: str | None
    server_address: str | None
    server_port: int | None
    error_type: str | None
    usage: Usage | None
    choices: int  # a count: the choices themselves stay behind
    embedding_vector_size: int | None
    guardrail_id: str | None
    guardrail_intervened: bool | None
    guardrail_assessments: list[GuardrailAssessment] | None  # bounded by the provider code

    @classmethod
    def of(cls, call: LLMCall) -> MetricSnapshot:
        return cls(
            call.operation,
            call.provider,
            call.system,
            call.request_model,
            call.response_model,
            call.server_address,
            call.server_port,
            call.error_type,
            call.usage,
            len(call.choices),
            call.embedding_vector_size,
            call.guardrail_id,
            call.guardrail_intervened,
            call.guardrail_assessments,
        )


class MetricsWorker:
    """Records metric points on a background thread, like the batch processors export spans.

    An SDK ``record()`` costs ~10 us with our attributes and a streamed call makes one per chunk,
    so recording on the application thread would put most of our cost on the caller. The queue is
    bounded (drops are counted) and a fork gets a fresh thread.

    Standard flush semantics: every MeterProvider a Recorder records into gets an observable gauge
    whose callback is :meth:`observe`; the SDK runs it at the start of each collection (a periodic
    export, ``force_flush()``, ``shutdown()``, ``InMemoryMetricReader.get_metrics_data()``), so the
    points of every call that has returned are recorded into the storage before it is read. Drains
    are serialised by a lock, so a collection also waits for the point the worker thread has taken
    off the queue but not yet recorded.
    """

    MAX_PENDING: Final = 20_000  # a few MB of snapshots at most
    WAKE_AT: Final = 512  # drain early under load instead of letting the queue grow
    INTERVAL_S: Final = 0.1

    def __init__(self) -> None:
        self._queue: deque[tuple[Callable[..., None], tuple[Any, ...]]] = deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        # Held while points are taken off the queue and recorded. Reentrant: a drain that runs
        # inside a drain (an SDK call that collects while recording) must not deadlock.
        self._drain_lock = threading.RLock()
        self._pid = 0
        self.dropped = 0
        # Told of each drop (init() points it at its handle's stats); only called when dropping.
        self.on_drop: Callable[[str], None] | None = None

    def submit(self, fn: Callable[..., None], *args: Any) -> None:
        if len(self._queue) >= self.MAX_PENDING:
            self.dropped += 1
            on_drop = self.on_drop
            if on_drop is not None:
                try:
                    on_drop("metrics")
                except Exception:
                    pass
            return
        self._queue.append((fn, args))
        if sys.is_finalizing():
            # Threads cannot start while the interpreter shuts down (Thread.start() would block
            # forever): record now, on this thread (e.g. a stream collected at exit).
            self.drain()
        elif self._pid != os.getpid():
            if not self._start():
                self.drain()  # no thread can start (the interpreter is exiting): record here
        elif len(self._queue) >= self.WAKE_AT:
            self._wake.set()

    def _after_fork(self) -> None:
        """In a forked child: drop the parent's points, fresh locks; the thread starts on submit."""
        self._queue.clear()
        self._lock = threading.Lock()
        self._drain_lock = threading.RLock()
        self._wake = threading.Event()
        self._pid = 0

    def _start(self) -> bool:
        """Start this process's worker thread; False when none can start.

        Python 3.12+ refuses new threads once interpreter shutdown has begun, atexit hooks
        included (a stream ended at exit may make the first point of a process).
        """
        with self._lock:
            if self._pid == os.getpid():
                return True
            try:
                threading.Thread(target=self._run, name="genai-observe-metrics", daemon=True).start()
            except RuntimeError:
                return False
            self._pid = os.getpid()
            return True

    def _run(self) -> None:
        while True:
            self._wake.wait(self.INTERVAL_S)
            self._wake.clear()
            self.drain()

    def drain(self) -> None:
        """Record everything pending, now, on the calling thread (collections, flush, shutdown)."""
        queue = self._queue
        with self._drain_lock:
            while True:
                try:
                    fn, args = queue.popleft()
                except IndexError:
                    return
                try:
                    fn(*args)
                except Exception as exc:
                    report_internal_error("metrics.record", exc)

    def observe(self, _options: CallbackOptions) -> Iterable[Observation]:
        """The flush hook's callback, run by the SDK at the start of every collection."""
        try:
            self.drain()
        except Exception as exc:
            report_internal_error("metrics.observe", exc)
        return ()


METRICS = MetricsWorker()
if hasattr(os, "register_at_fork"):
    # A forked worker (gunicorn, multiprocessing) must not record its parent's pending points
    # again; its own worker thread starts on its first submit (pid check).
    os.register_at_fork(after_in_child=METRICS._after_fork)
# Registered after the SDK's own provider atexit hooks (imported first), so it runs before them.
atexit.register(METRICS.drain)
