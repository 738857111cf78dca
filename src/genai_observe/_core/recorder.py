"""The one place that turns an :class:`LLMCall` into a span, metrics and an optional log event.

Provider adapters never touch OpenTelemetry; they fill an LLMCall and hand it here. Everything in
this module is defensive: a failure while recording is logged once at debug level and swallowed,
because the host application must never see an exception of ours.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import Logger, LoggerProvider, get_logger_provider
from opentelemetry.metrics import Histogram, Meter, MeterProvider, get_meter_provider
from opentelemetry.trace import Span, SpanKind, TracerProvider

from .._version import __version__
from . import guardrails
from . import local_metrics as _lm
from . import semconv as sc
from .agent_context import attribute_call
from .attributes import SpanAttributes, is_flat_content
from .content import ContentPolicy
from .diagnostics import report_internal_error
from .errors import error_type_of, record_error
from .metrics import METRICS, MetricSnapshot
from .modes import CaptureMode, Profile
from .observers import OBSERVERS
from .record import LLMCall, Usage

_log = logging.getLogger("genai_observe")

_SCOPE: Final = "genai_observe"
# Inter-chunk gaps kept per stream for time_per_output_chunk; bounded so a runaway stream
# cannot grow memory without limit. A stream keeps its chunks' arrival times (one more than gaps).
_MAX_CHUNK_GAPS: Final = 8192
MAX_CHUNK_TIMES: Final = _MAX_CHUNK_GAPS + 1
_SUPPRESS_KEY: Final = otel_context._SUPPRESS_INSTRUMENTATION_KEY
_ACTIVE_KEY: Final = otel_context.create_key("genai_observe.active_recorder")
# A framework's model run that may wrap a provider call (see Invocation.yielding_context).
_YIELD_KEY: Final = otel_context.create_key("genai_observe.yielding_invocation")


def instrumentation_suppressed() -> bool:
    """True inside our own exporters and wherever the user suppressed instrumentation."""
    return bool(otel_context.get_value(_SUPPRESS_KEY))


class Recorder(SpanAttributes):
    """Holds the tracer, the instruments and the content settings for one instrumentation."""

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        logger_provider: LoggerProvider | None = None,
        capture: CaptureMode = CaptureMode.SPAN_ONLY,
        profile: Profile = Profile.DYNATRACE,
        content: ContentPolicy | None = None,
        scope: str = _SCOPE,
    ) -> None:
        self.capture = capture
        self.profile = profile
        self.content = content or ContentPolicy()
        self._legacy = profile is Profile.DYNATRACE
        self.tracer = trace.get_tracer(scope, __version__, tracer_provider)
        meter: Meter = (meter_provider or get_meter_provider()).get_meter(scope, __version__)
        # init()'s own pipeline aggregates these histograms and counters in process
        # (_core/local_metrics.py: an SDK record costs ~112 k instructions); with any other
        # MeterProvider, they are SDK records.
        self._local = _lm.of(meter_provider or get_meter_provider())
        self._sdk_histograms = _lm.sdk_histograms(
            meter, (_lm.DURATION, _lm.TOKENS, _lm.TIME_TO_FIRST_CHUNK, _lm.TIME_PER_OUTPUT_CHUNK)
        )
        # gen_ai.prompt.caching is recorded in the dynatrace profile only (see _record_caching);
        # an instrument nothing is recorded into exports nothing.
        self._sdk_counters = _lm.sdk_counters(meter, (_lm.CHOICES, _lm.VECTOR_SIZE, _lm.PROMPT_CACHING))
        self._guardrails = guardrails.instruments(meter)
        # Reports nothing; its callback records our queued points before each collection. The SDK
        # keeps the first registration per meter, so one hook serves every Recorder of a provider.
        meter.create_observable_gauge(
            sc.METRIC_FLUSH_HOOK,
            callbacks=[METRICS.observe],
            unit="{point}",
            description="Never reported: records queued GenAI metric points before a collection.",
        )
        self._scope = scope
        self._logger_provider = logger_provider
        self._logger: Logger | None = None
        if capture.on_event:
            self._logger = (logger_provider or get_logger_provider()).get_logger(scope, __version__)

    def configure(self, *, capture: CaptureMode, profile: Profile, content: ContentPolicy) -> None:
        """New content settings, applied in place: the patched SDK methods keep this recorder.

        A later ``init()`` (the app's own, after the zero-code bootstrap's) changes what is
        captured from the next call on; a call in flight ends with the new settings.
        """
        logger = self._logger
        if capture.on_event and logger is None:
            logger = (self._logger_provider or get_logger_provider()).get_logger(self._scope, __version__)
        self._logger = logger if capture.on_event else None  # no event at all without content
        self.content = content
        self.profile = profile
        self._legacy = profile is Profile.DYNATRACE
        self.capture = capture

    # --- entry points used by adapters ---------------------------------------------------------

    def start(self, call: LLMCall, parent: otel_context.Context | None = None) -> Invocation | None:
        """Start the span for ``call``; None when suppressed or when our own code failed.

        ``parent``: the context to start under, for frameworks that track their own run tree
        (callback handlers know the parent run, not the current context); default: current.
        """
        if instrumentation_suppressed():
            return None
        try:
            # The framework agent the call runs for (an agent step's context): gen_ai.agent.name.
            attribute_call(call.request_attributes, parent)
            name = f"{call.operation} {call.request_model}" if call.request_model else call.operation
            span = self.tracer.start_span(
                name, context=parent, kind=SpanKind.CLIENT, attributes=self._start_attributes(call)
            )
            if call.operation != sc.OP_EMBEDDINGS:
                outer = otel_context.get_value(_YIELD_KEY)
                if isinstance(outer, Invocation):
                    outer.yielded = True
            return Invocation(self, call, span)
        except Exception as exc:
            report_internal_error("recorder.start", exc)
            return None

    def start_from(self, build: Callable[[], LLMCall]) -> Invocation | None:
        """Build the record with the adapter's function, tolerating adapter bugs.

        None inside another operation of this same recorder: an SDK method that calls another
        instrumented method of the same SDK (openai 1.x ``beta...parse`` calls ``create``) is one
        LLM call, not two, and must not count its tokens twice.
        """
        if instrumentation_suppressed() or otel_context.get_value(_ACTIVE_KEY) is self:
            return None
        try:
            call = build()
        except Exception as exc:
            reader = getattr(build, "func", build)  # a functools.partial names the reader it calls
            report_internal_error(f"adapter.request:{getattr(reader, '__qualname__', '?')}", exc)
            return None
        return self.start(call)

    # --- metrics and events --------------------------------------------------------------------

    def _histogram(self, spec: _lm.HistogramSpec, value: float, attributes: dict[str, Any]) -> None:
        local = self._local
        if local is not None:
            local.record(self._scope, spec, value, attributes)
        else:
            self._sdk_histograms[spec.name].record(value, attributes)

    def _counter(self, spec: _lm.CounterSpec, value: float, attributes: dict[str, Any]) -> None:
        local = self._local
        if local is not None:
            local.add(self._scope, spec, value, attributes)
        else:
            self._sdk_counters[spec.name].add(value, attributes)

    def _record_metrics(
        self, call: MetricSnapshot, duration: float, ttfc: float | None, times: Sequence[float] | None
    ) -> None:
        """Runs on the metrics worker thread (see MetricsWorker), never on the app's.

        ``times``: the chunks' arrival times; each gap between consecutive ones is one
        time_per_output_chunk value (computed here, off the app's thread).
        """
        attrs = self.metric_attributes(call)
        histogram = self._histogram
        tokens = _lm.TOKENS
        histogram(_lm.DURATION, duration, attrs)
        u = call.usage
        if u is not None:
            if u.input_tokens is not None:
                histogram(tokens, u.input_tokens, {**attrs, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_INPUT})
            if u.output_tokens is not None:
                histogram(tokens, u.output_tokens, {**attrs, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_OUTPUT})
            # Only calls that touched the cache get a point, so a point's count is the number of
            # cache hits (or writes), and calls without caching add no series.
            if u.cache_read_input_tokens:
                histogram(
                    tokens,
                    u.cache_read_input_tokens,
                    {**attrs, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_CACHE_READ},
                )
            if u.cache_creation_input_tokens:
                histogram(
                    tokens,
                    u.cache_creation_input_tokens,
                    {**attrs, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_CACHE_CREATION},
                )
            if self._legacy:
                self._record_caching(u, attrs)
        if call.choices:
            self._counter(_lm.CHOICES, call.choices, attrs)
        if call.embedding_vector_size is not None:
            self._counter(_lm.VECTOR_SIZE, call.embedding_vector_size, attrs)
        if call.guardrail_id is not None or call.guardrail_assessments:
            instruments = self._guardrails
            for name, value, point in guardrails.metric_points(
                call.guardrail_id, call.guardrail_intervened, call.guardrail_assessments, attrs
            ):
                instrument = instruments[name]
                if isinstance(instrument, Histogram):
                    instrument.record(value, point)
                else:
                    instrument.add(value, point)
        if ttfc is not None:
            histogram(_lm.TIME_TO_FIRST_CHUNK, ttfc, attrs)
        if times:
            local = self._local
            if local is not None:
                local.record_gaps(self._scope, _lm.TIME_PER_OUTPUT_CHUNK, attrs, times)
            else:
                record = self._sdk_histograms[sc.METRIC_TIME_PER_OUTPUT_CHUNK].record
                last = times[0]
                for now in times[1:]:
                    record(now - last, attrs)
                    last = now

    def _record_caching(self, u: Usage, attrs: dict[str, Any]) -> None:
        """``gen_ai.prompt.caching`` (dynatrace profile): a point per cache type the call touched.

        Zero counts record nothing, like the cache token points: a point then means a cache hit
        (or write), and calls that never touch the cache add no series.
        """
        if u.cache_read_input_tokens:
            self._counter(
                _lm.PROMPT_CACHING,
                u.cache_read_input_tokens,
                {**attrs, sc.GEN_AI_CACHE_TYPE: sc.CACHE_TYPE_READ},
            )
        if u.cache_creation_input_tokens:
            self._counter(
                _lm.PROMPT_CACHING,
                u.cache_creation_input_tokens,
                {**attrs, sc.GEN_AI_CACHE_TYPE: sc.CACHE_TYPE_WRITE},
            )

    def _emit_event(self, inv: Invocation, span_attributes: dict[str, Any]) -> None:
        logger = self._logger
        if logger is None:
            return
        call = inv.call
        policy = self.content
        # The event stands alone (a backend may keep it without the span): request and response
        # attributes, with content only in the v1.41.0 JSON form.
        attrs: dict[str, Any] = {
            k: v
            for k, v in {**self._start_attributes(call, content=False), **span_attributes}.items()
            if not is_flat_content(k)
        }
        if call.input_messages:
            attrs[sc.GEN_AI_INPUT_MESSAGES] = policy.input_messages(call.input_messages)
        if call.system_instructions:
            attrs[sc.GEN_AI_SYSTEM_INSTRUCTIONS] = policy.system_instructions(call.system_instructions)
        if call.tool_definitions:
            attrs[sc.GEN_AI_TOOL_DEFINITIONS] = policy.tool_definitions(call.tool_definitions)
        if call.choices and sc.GEN_AI_OUTPUT_MESSAGES not in attrs:  # else already on the span
            attrs[sc.GEN_AI_OUTPUT_MESSAGES] = policy.output_messages(call.choices)
        logger.emit(
            event_name=sc.EVENT_INFERENCE_DETAILS,
            attributes=attrs,
            context=trace.set_span_in_context(inv.span),
        )


class Invocation:
    """One operation in flight: the span, its timing, and the record being filled in."""

    __slots__ = (
        "_ended",
        "_token",
        "call",
        "chunk_times",
        "recorder",
        "span",
        "started",
        "yielded",
    )

    def __init__(self, recorder: Recorder, call: LLMCall, span: Span) -> None:
        self.recorder = recorder
        self.call = call
        self.span = span
        self.started = time.perf_counter()
        # perf_counter() at each chunk's arrival, the first MAX_CHUNK_TIMES of them: the stream
        # proxies append to it directly (per chunk, so no method call); gaps are taken off-thread.
        # A list only once something streams (streaming_times()): most calls never do.
        self.chunk_times: list[float] | tuple[()] = ()
        self._ended = False
        self._token: object | None = None
        # Set when another LLM call was recorded under yielding_context(): that one counts.
        self.yielded = False

    def yielding_context(self, base: otel_context.Context | None = None) -> otel_context.Context:
        """``base`` (default: current) with this span current, for a framework's model run that
        may be a wrapper around another LLM call: a non-embeddings call recorded while this
        context is current (a provider SDK call, or a nested framework model run) sets
        :attr:`yielded`, and this invocation then ends without usage attributes and records no
        metrics, so the call is counted once, by the innermost span."""
        return otel_context.set_value(_YIELD_KEY, self, trace.set_span_in_context(self.span, base))

    # Make the span current while the provider call runs, so HTTP-client spans nest under it.
    def activate(self) -> None:
        try:
            ctx = trace.set_span_in_context(self.span)
            self._token = otel_context.attach(otel_context.set_value(_ACTIVE_KEY, self.recorder, ctx))
        except Exception as exc:
            report_internal_error("invocation.activate", exc)

    def deactivate(self) -> None:
        token, self._token = self._token, None
        if token is not None:
            try:
                otel_context.detach(token)  # type: ignore[arg-type]
            except Exception as exc:
                report_internal_error("invocation.deactivate", exc)

    @property
    def ended(self) -> bool:
        return self._ended

    def streaming_times(self) -> list[float]:
        """The list chunk arrival times go into, made on first use."""
        times = self.chunk_times
        if isinstance(times, tuple):
            times = self.chunk_times = []
        return times

    def chunk(self) -> None:
        """Note the arrival of one streamed chunk (cheap: called per chunk)."""
        times = self.streaming_times()
        if len(times) < MAX_CHUNK_TIMES:
            times.append(time.perf_counter())

    @property
    def chunk_gaps(self) -> list[float] | None:
        """The time_per_output_chunk values: None before the first chunk."""
        times = self.chunk_times
        if not times:
            return None
        return [later - earlier for earlier, later in pairwise(times)]

    def finish(self, fill: Callable[[LLMCall], None] | None = None, *, end_reason: str | None = None) -> None:
        """Complete the record with ``fill`` (the adapter's response reader) and end everything."""
        if self._ended:
            return
        self._ended = True
        duration = time.perf_counter() - self.started
        if fill is not None:
            try:
                fill(self.call)
            except Exception as exc:
                report_internal_error(f"adapter.response:{getattr(fill, '__qualname__', '?')}", exc)
        self._end(duration, end_reason, None)

    def fail(self, exc: BaseException, fill: Callable[[LLMCall], None] | None = None) -> None:
        """End with an error; ``exc`` is the exception the caller is about to see."""
        if self._ended:
            return
        self._ended = True
        duration = time.perf_counter() - self.started
        if fill is not None:
            try:
                fill(self.call)
            except Exception as err:
                report_internal_error(f"adapter.partial:{getattr(fill, '__qualname__', '?')}", err)
        if self.call.error_type is None:  # an adapter may know better (e.g. a code from the body)
            self.call.error_type = error_type_of(exc)
        self._end(duration, "error", exc)

    def _end(self, duration: float, end_reason: str | None, exc: BaseException | None) -> None:
        recorder = self.recorder
        span = self.span
        attrs: dict[str, Any] = {}
        try:
            if self.yielded:
                self.call.usage = None  # counted by the call recorded inside this one
            elif self.call.usage is not None:
                self.call.usage = self.call.usage.checked()  # provider counts, checked once here
        except Exception as err:
            report_internal_error("recorder.usage", err)
            self.call.usage = None
        try:
            attrs = recorder._end_attributes(self.call)
            if end_reason is not None and self.call.stream:
                attrs[sc.STREAM_END_REASON] = end_reason
            if span.is_recording():
                span.set_attributes(attrs)
                if exc is not None:
                    record_error(span, exc, content=recorder.capture.on_span)
        except Exception as err:
            report_internal_error("recorder.end_span", err)
        finally:
            try:
                span.end()
            except Exception as err:
                report_internal_error("recorder.span_end", err)
        times = self.chunk_times
        if not self.yielded:
            METRICS.submit(
                recorder._record_metrics,
                MetricSnapshot.of(self.call),
                duration,
                times[0] - self.started if times else None,
                times or None,
            )
        if recorder._logger is not None:
            try:
                recorder._emit_event(self, attrs)
            except Exception as err:
                report_internal_error("recorder.event", err)
        # Whoever watches finished calls (the business events of the export pipeline).
        observer = OBSERVERS.llm_end
        if observer is not None:
            observer(self, attrs, duration)
