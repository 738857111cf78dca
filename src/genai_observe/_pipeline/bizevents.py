"""Business events: the audit trail, evaluation results and usage logs.

Dynatrace's AI Observability app reads its audit-trail and evaluation views from business events,
not spans (shared/spec/dynatrace-app-contract.md, "Business events"). This module builds those
events and ships them without costing the application anything it would notice:

* On the caller's thread, at span end, only a flat dict is built from the neutral record and the
  attributes the recorder computed anyway (content, when captured, through the recorder's
  ContentPolicy: masked and capped). :meth:`EventPipeline.submit` appends it to a bounded deque.
* A background thread (started on first use, per process: a forked child starts fresh) turns
  batches into CloudEvents JSON and POSTs them to the Business Events API, retrying 429/502/503/504
  within the export timeout (honouring ``Retry-After``); or, towards a collector, emits them as
  OTLP log records through the logger provider ``init()`` built; or, with no endpoint, prints one
  line each. A full queue drops and counts (``Handle.stats()["events"]``).

Nothing here raises into the caller; failures are logged once at debug level, export problems as
rate-limited warnings that never show a header, a token or a response body.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import IO, TYPE_CHECKING, Any, Final

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext

from .._core import semconv as sc
from .._core.diagnostics import report_internal_error
from .._core.observers import OBSERVERS
from .._version import __version__

if TYPE_CHECKING:
    from opentelemetry._logs import Logger, LoggerProvider

    from .._core.recorder import Invocation
    from .._core.steps import Step
    from .settings import Settings

_log = logging.getLogger("genai_observe")

AUDIT: Final = "audit"
EVALUATION: Final = "evaluation"
USAGE: Final = "usage"

_CONTENT_TYPE: Final = "application/cloudevent-batch+json"
_RETRYABLE: Final = frozenset({429, 502, 503, 504})
_MAX_ATTEMPTS: Final = 6
_MAX_RETRY_WAIT_S: Final = 30.0
# Dynatrace accepts up to a few MB per Business Events request; batches stay well below.
_REQUEST_BUDGET: Final = 1_000_000
_REPORT_EVERY_S: Final = 60.0


# --- response id -> span, for record_evaluation(response_id=...) ------------------------------


class ResponseIndex:
    """The span of each recent response id, so an evaluation made later can find its span.

    Bounded (oldest forgotten first); filled at every LLM span end, whatever is enabled.
    """

    MAX: Final = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: OrderedDict[str, tuple[SpanContext, str | None, str | None]] = OrderedDict()

    def remember(
        self, response_id: str, context: SpanContext, provider: str | None, model: str | None
    ) -> None:
        with self._lock:
            self._spans[response_id] = (context, provider, model)
            self._spans.move_to_end(response_id)
            while len(self._spans) > self.MAX:
                self._spans.popitem(last=False)

    def find(self, response_id: str) -> tuple[SpanContext, str | None, str | None] | None:
        with self._lock:
            return self._spans.get(response_id)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._spans = OrderedDict()


RESPONSES = ResponseIndex()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=RESPONSES._after_fork)


# --- the events --------------------------------------------------------------------------------


class Item:
    """One queued event: its kind, the flat fields, the span it belongs to, when it happened."""

    __slots__ = ("context", "fields", "kind", "time_ns")

    def __init__(self, kind: str, fields: dict[str, Any], context: SpanContext | None, time_ns: int) -> None:
        self.kind = kind
        self.fields = fields
        self.context = context
        self.time_ns = time_ns


def _ids(fields: dict[str, Any], context: SpanContext | None) -> None:
    if context is not None and context.is_valid:
        fields[sc.TRACE_ID] = format(context.trace_id, "032x")
        fields[sc.SPAN_ID] = format(context.span_id, "016x")


def _times(span: Any, duration: float | None) -> tuple[int, int]:
    """(start, end) in ns since the epoch: the SDK span's own, else derived from the duration."""
    end = getattr(span, "end_time", None)
    start = getattr(span, "start_time", None)
    if not isinstance(end, int):
        end = time.time_ns()
    if not isinstance(start, int):
        start = end - int((duration or 0.0) * 1e9)
    return start, end


def _span_attribute(span: Any, key: str) -> Any:
    attributes = getattr(span, "attributes", None)
    try:
        return attributes.get(key) if attributes is not None else None
    except Exception:
        return None


_USAGE_KEYS: Final = (
    sc.GEN_AI_USAGE_INPUT_TOKENS,
    sc.GEN_AI_USAGE_OUTPUT_TOKENS,
    sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
)


def on_llm_end(inv: Invocation, attrs: Mapping[str, Any], duration: float) -> None:
    """Invocation._end's hook: remember the response id; the audit event and usage log when on."""
    try:
        if inv.yielded:  # a framework run around a call recorded inside it: that one counts
            return
        call = inv.call
        span = inv.span
        context = span.get_span_context()
        if call.response_id and context.is_valid:
            RESPONSES.remember(
                call.response_id, context, call.provider, call.response_model or call.request_model
            )
        pipeline = _active
        if pipeline is None:
            return
        start, end = _times(span, duration)
        base: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: call.operation,
            sc.GEN_AI_PROVIDER_NAME: call.provider,
        }
        if call.request_model is not None:
            base[sc.GEN_AI_REQUEST_MODEL] = call.request_model
        if call.response_model is not None:
            base[sc.GEN_AI_RESPONSE_MODEL] = call.response_model
        for key in _USAGE_KEYS:
            value = attrs.get(key)
            if value is not None:
                base[key] = value
        if call.error_type is not None:
            base[sc.ERROR_TYPE] = call.error_type
        if pipeline.usage:
            usage = dict(base)
            if call.server_address is not None:
                usage[sc.SERVER_ADDRESS] = call.server_address
            pipeline.submit(Item(USAGE, usage, context, end))
        if pipeline.audit:
            pipeline.submit(
                Item(AUDIT, _llm_audit(pipeline, inv, attrs, base, context, start, end), context, end)
            )
    except Exception as exc:
        report_internal_error("bizevents.llm_end", exc)


def _llm_audit(
    pipeline: EventPipeline,
    inv: Invocation,
    attrs: Mapping[str, Any],
    base: dict[str, Any],
    context: SpanContext,
    start: int,
    end: int,
) -> dict[str, Any]:
    call = inv.call
    span = inv.span
    fields = pipeline.header(sc.EVENT_TYPE_AUDIT)
    fields.update(base)
    fields[sc.GEN_AI_MODEL] = call.response_model or call.request_model or ""
    if call.response_id is not None:
        fields[sc.GEN_AI_RESPONSE_ID] = call.response_id
    if call.server_address is not None:
        fields[sc.SERVER_ADDRESS] = call.server_address
    reasons = attrs.get(sc.GEN_AI_RESPONSE_FINISH_REASONS)
    if reasons:
        fields[sc.GEN_AI_RESPONSE_FINISH_REASONS] = list(reasons)
    for key in (sc.GEN_AI_AGENT_NAME, sc.GEN_AI_CONVERSATION_ID):
        value = call.request_attributes.get(key) or _span_attribute(span, key)
        if value is not None:
            fields[key] = value
    _outcome(fields, start, end, call.error_type)
    recorder = inv.recorder
    if recorder.capture.any:  # content: masked and capped by the recorder's policy
        policy = recorder.content
        # Already built when content goes on spans (both profiles write the JSON form there).
        messages = _span_attribute(span, sc.GEN_AI_INPUT_MESSAGES)
        if isinstance(messages, str):
            fields[sc.GEN_AI_INPUT_MESSAGES] = messages
        elif call.input_messages:
            fields[sc.GEN_AI_INPUT_MESSAGES] = policy.input_messages(call.input_messages)
        if call.system_instructions:
            fields[sc.GEN_AI_SYSTEM_INSTRUCTIONS] = policy.system_instructions(call.system_instructions)
        output = attrs.get(sc.GEN_AI_OUTPUT_MESSAGES)
        if isinstance(output, str):
            fields[sc.GEN_AI_OUTPUT_MESSAGES] = output
        elif call.choices:
            fields[sc.GEN_AI_OUTPUT_MESSAGES] = policy.output_messages(call.choices)
    return fields


def _outcome(fields: dict[str, Any], start: int, end: int, error_type: str | None) -> None:
    fields[sc.EVENT_START_TIME] = start  # ns; written as RFC 3339 on the export thread
    fields[sc.EVENT_END_TIME] = end
    fields[sc.EVENT_DURATION_MS] = round(max(0, end - start) / 1e6, 3)
    fields[sc.EVENT_STATUS] = sc.STATUS_ERROR if error_type else sc.STATUS_OK
    if error_type:
        fields[sc.ERROR_TYPE] = error_type


def on_step_end(step: Step, output: Any, error: BaseException | None) -> None:
    """Step.end's hook: the audit event of a tool or agent step, when audit events are on."""
    pipeline = _active
    if pipeline is None or not pipeline.audit or step.kind not in (sc.SPAN_KIND_TOOL, sc.SPAN_KIND_AGENT):
        return
    try:
        span = step.span
        context = span.get_span_context()
        start, end = _times(span, None)
        tool = step.kind == sc.SPAN_KIND_TOOL
        fields = pipeline.header(sc.EVENT_TYPE_AUDIT)
        fields[sc.GEN_AI_OPERATION_NAME] = sc.OP_EXECUTE_TOOL if tool else sc.OP_INVOKE_AGENT
        fields[sc.GEN_AI_TOOL_NAME if tool else sc.GEN_AI_AGENT_NAME] = step.name
        for key in (sc.GEN_AI_TOOL_CALL_ID, sc.GEN_AI_CONVERSATION_ID, sc.TRACELOOP_WORKFLOW_NAME):
            value = _span_attribute(span, key)
            if value is not None:
                fields[key] = value
        if error is not None:
            from .._core.errors import error_type_of

            _outcome(fields, start, end, error_type_of(error))
        else:
            _outcome(fields, start, end, None)
        steps = step.steps
        if steps.recorder.capture.any:
            inputs = step.audit_input
            if inputs is not None:
                fields[sc.GEN_AI_TOOL_CALL_ARGUMENTS if tool else sc.TRACELOOP_ENTITY_INPUT] = inputs
            if output is not None:
                result = steps._json(output)
                fields[sc.GEN_AI_TOOL_CALL_RESULT if tool else sc.TRACELOOP_ENTITY_OUTPUT] = result
        pipeline.submit(Item(AUDIT, fields, context, end))
    except Exception as exc:
        report_internal_error("bizevents.step_end", exc)


def wants_step_input() -> bool:
    """True when a step's input must be kept for its audit event (audit on; content is checked then)."""
    pipeline = _active
    return pipeline is not None and pipeline.audit


# --- export ------------------------------------------------------------------------------------


def _rfc3339(ns: int) -> str:
    moment = datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _finished(item: Item) -> dict[str, Any]:
    """The event's fields as they go out: the span's ids as hex, times as RFC 3339 text."""
    fields = dict(item.fields)
    _ids(fields, item.context)
    for key in (sc.EVENT_START_TIME, sc.EVENT_END_TIME):
        value = fields.get(key)
        if isinstance(value, int):
            fields[key] = _rfc3339(value)
    return fields


def cloud_event(item: Item) -> dict[str, Any]:
    """One CloudEvents 1.0 envelope: type is event.type, source the service (event.provider)."""
    data = _finished(item)
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": str(data.get(sc.EVENT_PROVIDER) or "genai_observe"),
        "type": str(data.get(sc.EVENT_TYPE)),
        "time": _rfc3339(item.time_ns),
        "datacontenttype": "application/json",
        "data": data,
    }
    context = item.context
    if context is not None and context.is_valid:  # the CloudEvents distributed-tracing extension
        event["traceparent"] = (
            f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
        )
    return event


class _Counts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: dict[str, int] = {"sent": 0, "dropped": 0, "rejected": 0, "failed": 0, "retried": 0}
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def add(self, key: str, count: int = 1) -> None:
        with self.lock:
            self.values[key] += count

    def warn(self, key: str, count: int, message: str, *args: Any) -> None:
        """One warning per ``key`` a minute, with the count of events it stands for."""
        now = time.monotonic()
        with self.lock:
            held = self._held.get(key, 0) + count
            last = self._last.get(key)
            if last is not None and now - last < _REPORT_EVERY_S:
                self._held[key] = held
                return
            self._last[key] = now
            self._held[key] = 0
        _log.warning("genai_observe: " + message + " (%d event(s))", *args, held)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect would carry the token to another URL: refused, the 3xx counts as a rejection."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _tls() -> ssl.SSLContext:
    """The trust store and client certificate the OTLP log exporter uses (OTEL_EXPORTER_OTLP_*
    CERTIFICATE variables, logs first): an ActiveGate with a private CA serves both APIs."""
    context = ssl.create_default_context()

    def env(name: str) -> str | None:
        logs, general = f"OTEL_EXPORTER_OTLP_LOGS_{name}", f"OTEL_EXPORTER_OTLP_{name}"
        return os.environ.get(logs) or os.environ.get(general)

    try:
        ca, cert, key = env("CERTIFICATE"), env("CLIENT_CERTIFICATE"), env("CLIENT_KEY")
        if ca:
            context.load_verify_locations(cafile=ca)
        if cert:
            context.load_cert_chain(cert, key or None)
    except (OSError, ssl.SSLError) as exc:  # the system trust store then: stricter, never weaker
        _log.warning("genai_observe: Business Events TLS files not usable (%s)", type(exc).__name__)
    return context


class CloudEventsSender:
    """POSTs CloudEvents batches to the Business Events API (answers 202 on success)."""

    def __init__(self, url: str, headers: Mapping[str, str], timeout: float, counts: _Counts) -> None:
        self.url = url
        self._headers = {
            **headers,
            "content-type": _CONTENT_TYPE,
            "user-agent": f"genai-observe/{__version__}",
        }
        self._timeout = timeout
        self._counts = counts
        self._opener = urllib.request.build_opener(_NoRedirect(), urllib.request.HTTPSHandler(context=_tls()))
        self.sleep: Callable[[float], None] = time.sleep

    def send(self, items: list[Item], deadline: Callable[[], float]) -> None:
        events = [cloud_event(item) for item in items]
        group: list[str] = []
        size = 0
        for event in events:
            text = json.dumps(event, ensure_ascii=False, separators=(",", ":"), default=str)
            if group and size + len(text) > _REQUEST_BUDGET:
                self._post(group, deadline)
                group, size = [], 0
            group.append(text)
            size += len(text) + 1
        if group:
            self._post(group, deadline)

    def _post(self, texts: list[str], deadline: Callable[[], float]) -> None:
        body = ("[" + ",".join(texts) + "]").encode("utf-8")
        count = len(texts)
        attempt = 0
        while True:
            remaining = deadline() - time.monotonic()
            if remaining <= 0:
                self._counts.add("failed", count)
                self._counts.warn("timeout", count, "Business Events export gave up within its time budget")
                return
            request = urllib.request.Request(self.url, data=body, headers=self._headers, method="POST")
            wait: float
            what: str
            try:
                with self._opener.open(request, timeout=min(self._timeout, remaining)) as response:
                    response.read(65_536)
                self._counts.add("sent", count)
                return
            except urllib.error.HTTPError as err:
                status = err.code
                retry_after = _retry_after(err.headers.get("Retry-After") if err.headers else None)
                err.close()
                if status not in _RETRYABLE:
                    self._counts.add("rejected", count)
                    hint = " (check the token's bizevents.ingest scope)" if status in (401, 403) else ""
                    self._counts.warn(
                        f"status:{status}", count, "Business Events endpoint answered HTTP %d%s", status, hint
                    )
                    return
                wait = retry_after if retry_after is not None else min(2.0**attempt, _MAX_RETRY_WAIT_S)
                what = f"HTTP {status}"
            except (OSError, http.client.HTTPException, ValueError) as err:  # refused, reset, timed out
                if isinstance(getattr(err, "reason", err), ssl.SSLCertVerificationError):
                    self._counts.add("failed", count)  # a retry would fail the same way
                    self._counts.warn("tls", count, "Business Events endpoint's TLS certificate not trusted")
                    return
                wait = min(0.5 * 2.0**attempt, _MAX_RETRY_WAIT_S)
                what = type(err).__name__
            attempt += 1
            if attempt >= _MAX_ATTEMPTS or wait > min(_MAX_RETRY_WAIT_S, deadline() - time.monotonic()):
                self._counts.add("failed", count)
                self._counts.warn("failed", count, "Business Events export failed (%s)", what)
                return
            self._counts.add("retried")
            self.sleep(wait)


class OtlpLogEmitter:
    """Events as OTLP log records with ``event.name`` set, through the logger provider init() built."""

    def __init__(self, logger: Logger) -> None:
        self._logger = logger

    def emit(self, item: Item) -> None:
        fields = _finished(item)
        for key in (sc.TRACE_ID, sc.SPAN_ID, sc.EVENT_PROVIDER, sc.SERVICE_NAME):
            fields.pop(key, None)  # the record's own trace context and resource carry them
        context = None
        if item.context is not None and item.context.is_valid:
            context = trace.set_span_in_context(NonRecordingSpan(item.context))
        event_name = sc.EVENT_USAGE if item.kind == USAGE else str(fields.get(sc.EVENT_TYPE))
        body = _usage_body(fields) if item.kind == USAGE else None
        self._logger.emit(
            timestamp=item.time_ns, context=context, event_name=event_name, attributes=fields, body=body
        )


def _usage_body(fields: Mapping[str, Any]) -> str:
    """A one-line, content-free summary for log viewers (the attributes hold the numbers)."""
    model = fields.get(sc.GEN_AI_RESPONSE_MODEL) or fields.get(sc.GEN_AI_REQUEST_MODEL) or "?"
    operation, provider = fields.get(sc.GEN_AI_OPERATION_NAME), fields.get(sc.GEN_AI_PROVIDER_NAME)
    parts = [f"gen_ai usage: {operation} {model} [{provider}]"]
    for label, key in (("input", sc.GEN_AI_USAGE_INPUT_TOKENS), ("output", sc.GEN_AI_USAGE_OUTPUT_TOKENS)):
        if fields.get(key) is not None:
            parts.append(f"{label}={fields[key]}")
    return " ".join(parts)


class ConsolePrinter:
    """No endpoint: one escaped line per event on stderr, like the span lines."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self._out = out

    def write(self, items: list[Item]) -> None:
        from .exporters import _printable

        out = self._out or sys.stderr
        for item in items:
            f = _finished(item)
            kind = f.get(sc.EVENT_TYPE)
            if item.kind == EVALUATION:
                words = [
                    f"{f.get(sc.GEN_AI_EVALUATION_NAME)}",
                    f"label={f.get(sc.GEN_AI_EVALUATION_SCORE_LABEL, '-')}",
                    f"score={f.get(sc.GEN_AI_EVALUATION_SCORE_VALUE, '-')}",
                ]
            else:
                words = [
                    f"{f.get(sc.GEN_AI_OPERATION_NAME)}",
                    str(f.get(sc.GEN_AI_MODEL) or f.get(sc.GEN_AI_TOOL_NAME) or f.get(sc.GEN_AI_AGENT_NAME)),
                    f"[{f.get(sc.GEN_AI_PROVIDER_NAME, '-')}]",
                    f"{f.get(sc.EVENT_STATUS, '')}",
                ]
            line = " ".join(_printable(w) for w in [f"genai-observe: event {kind}", *words])
            ids = f"trace={_printable(f.get(sc.TRACE_ID, '-'))} span={_printable(f.get(sc.SPAN_ID, '-'))}"
            out.write(f"{line}  {ids}\n")
        out.flush()


class EventPipeline:
    """The bounded queue and background thread every business event and usage log goes through."""

    MAX_QUEUE: Final = 2048
    BATCH: Final = 200
    INTERVAL_S: Final = 1.0
    WAKE_AT: Final = 200

    def __init__(
        self,
        *,
        service: str,
        audit: bool,
        usage: bool,
        sender: CloudEventsSender | None,
        emitter: OtlpLogEmitter | None,
        console: ConsolePrinter | None,
        export_timeout: float,
        counts: _Counts | None = None,
    ) -> None:
        self.service = service
        self.audit = audit
        self.usage = usage
        self.sender = sender
        self.emitter = emitter
        self.console = console
        self.export_timeout = export_timeout
        self._counts = counts or _Counts()
        self._queue: deque[Item] = deque()
        self._wake = threading.Event()
        self._drain_lock = threading.RLock()  # held while sending: never taken by submit()
        self._start_lock = threading.Lock()
        self._sending = False
        self._closed = False
        self._pid = 0
        self._thread: threading.Thread | None = None
        self._cap = float("inf")  # a flush or shutdown deadline bounding every export meanwhile
        if hasattr(os, "register_at_fork"):
            ref = weakref.ref(self)

            def after_in_child() -> None:
                pipeline = ref()
                if pipeline is not None:
                    pipeline._after_fork()

            os.register_at_fork(after_in_child=after_in_child)

    def header(self, event_type: str) -> dict[str, Any]:
        return {sc.EVENT_TYPE: event_type, sc.EVENT_PROVIDER: self.service, sc.SERVICE_NAME: self.service}

    def submit(self, item: Item) -> None:
        """Queue ``item`` (cheap, never blocks); a full queue drops it and counts the drop."""
        if self._closed:
            return
        if len(self._queue) >= self.MAX_QUEUE:
            self._counts.add("dropped")
            self._counts.warn("dropped", 1, "business event queue full, dropped events; check the endpoint")
            return
        self._queue.append(item)
        if self._pid != os.getpid():
            if not sys.is_finalizing():
                self._start()
        elif len(self._queue) >= self.WAKE_AT:
            self._wake.set()

    def _after_fork(self) -> None:
        """A forked child: nothing of the parent's queue or counts; its own thread on first submit."""
        self._queue = deque()
        self._wake = threading.Event()
        self._drain_lock = threading.RLock()
        self._start_lock = threading.Lock()
        self._sending = False
        self._pid = 0
        self._thread = None
        self._counts = _Counts()
        if self.sender is not None:
            self.sender._counts = self._counts

    def _start(self) -> None:
        with self._start_lock:
            if self._pid == os.getpid():
                return
            try:
                thread = threading.Thread(target=self._run, name="genai-observe-events", daemon=True)
                thread.start()
            except RuntimeError:  # interpreter shutting down: shutdown() drains on its own thread
                return
            self._thread = thread
            self._pid = os.getpid()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.INTERVAL_S)
            self._wake.clear()
            self._drain()

    def _deadline(self) -> float:
        return min(self._cap, time.monotonic() + self.export_timeout)

    def _drain(self) -> None:
        with self._drain_lock:
            queue = self._queue
            while True:
                self._sending = True
                batch: list[Item] = []
                try:
                    while len(batch) < self.BATCH:
                        batch.append(queue.popleft())
                except IndexError:
                    pass
                if not batch:
                    self._sending = False
                    return
                try:
                    self._deliver(batch)
                except Exception as exc:
                    report_internal_error("bizevents.deliver", exc)
                finally:
                    self._sending = False

    def _deliver(self, batch: list[Item]) -> None:
        to_http: list[Item] = []
        to_console: list[Item] = []
        for item in batch:
            if item.kind == USAGE:
                if self.emitter is not None:
                    self.emitter.emit(item)
                    self._counts.add("sent")
                continue
            if self.sender is not None:
                to_http.append(item)
            # Audit events go out once: to the Business Events API when there is one. Evaluation
            # results are also the OpenTelemetry event of that name wherever logs are exported.
            if self.emitter is not None and (item.kind == EVALUATION or self.sender is None):
                self.emitter.emit(item)
                if self.sender is None:
                    self._counts.add("sent")
            elif self.sender is None and self.console is not None:
                to_console.append(item)
        if to_console and self.console is not None:
            self.console.write(to_console)
            self._counts.add("sent", len(to_console))
        if to_http and self.sender is not None:
            self.sender.send(to_http, self._deadline)

    def force_flush(self, timeout: float) -> bool:
        """Send what is queued, waiting at most ``timeout`` seconds; True when all went out."""
        deadline = time.monotonic() + max(0.0, timeout)
        self._cap = deadline
        try:
            thread = self._thread
            if thread is None or not thread.is_alive() or self._pid != os.getpid():
                self._drain()  # no worker in this process (never started, or exiting): here
            while (self._queue or self._sending) and time.monotonic() < deadline:
                self._wake.set()
                time.sleep(0.01)
            return not self._queue and not self._sending
        finally:
            if self._cap == deadline:
                self._cap = float("inf")

    def shutdown(self, timeout: float) -> None:
        """Flush within ``timeout``, then stop the thread; later events are ignored."""
        global _active
        if _active is self:
            _active = None
        deadline = time.monotonic() + max(0.0, timeout)
        done = self.force_flush(timeout)
        self._closed = True
        self._cap = deadline
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
        left = len(self._queue)
        if not done and timeout > 0:
            self._queue.clear()
            self._counts.add("dropped", left)
            _log.warning(
                "genai_observe: business events not sent within %.1fs dropped (%d queued)", timeout, left
            )

    def stats(self) -> dict[str, int]:
        with self._counts.lock:
            values = dict(self._counts.values)
        values["queued"] = len(self._queue)
        return values


_active: EventPipeline | None = None


def active() -> EventPipeline | None:
    """The pipeline of the live ``init()``, or None."""
    return _active


def start(settings: Settings, logger_provider: LoggerProvider | None, service: str) -> EventPipeline:
    """The pipeline for ``settings`` (threads start on the first event), made the active one."""
    global _active
    counts = _Counts()
    sender = None
    if settings.bizevents_url is not None:
        sender = CloudEventsSender(
            settings.bizevents_url, settings.headers.get("logs", {}), settings.timeout_for("logs"), counts
        )
    emitter = None
    endpoints = settings.endpoints
    if logger_provider is not None and endpoints is not None and endpoints.logs is not None:
        emitter = OtlpLogEmitter(logger_provider.get_logger("genai_observe.events", __version__))
    pipeline = EventPipeline(
        service=service,
        audit=settings.audit_events,
        usage=settings.usage_logs,
        sender=sender,
        emitter=emitter,
        console=ConsolePrinter() if endpoints is None else None,
        export_timeout=settings.timeout_for("logs"),
        counts=counts,
    )
    _active = pipeline
    return pipeline


# The core tells this module of every finished call and step (_core/observers.py); importing it
# (init() does) is what subscribes.
OBSERVERS.llm_end = on_llm_end
OBSERVERS.step_end = on_step_end
OBSERVERS.step_input = wants_step_input
