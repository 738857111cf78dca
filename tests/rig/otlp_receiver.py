"""A real OTLP/HTTP receiver for tests.

``OTLPReceiver`` listens on ``127.0.0.1`` (ephemeral port) with the standard
library ``ThreadingHTTPServer`` in a daemon thread, records every request it
gets, decodes OTLP protobuf payloads with ``opentelemetry-proto`` and answers
in a configurable way (success, partial success, any status code, 429 with
``Retry-After``, slow answers, hanging connections).

Typical use::

    with OTLPReceiver() as receiver:
        exporter = OTLPSpanExporter(endpoint=receiver.endpoint("traces"))
        ...
        spans = receiver.wait_for_spans(1)
        assert spans[0].attributes["gen_ai.operation.name"] == "chat"

Scripted answers::

    receiver.queue_response("429", retry_after=0)   # next request only
    receiver.queue_response("status", status=503, times=2)
    receiver.set_response("ok")                     # default afterwards

Only the standard library and ``opentelemetry-proto`` are used.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import socketserver
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, TypeAlias, TypeVar, get_args
from urllib.parse import urlsplit

from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsPartialSuccess,
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = [
    "DataPointView",
    "LogView",
    "MetricView",
    "Mode",
    "OTLPReceiver",
    "ReceivedRequest",
    "ResponseSpec",
    "Signal",
    "SpanView",
    "any_value_to_python",
    "attributes_to_dict",
]

Signal = Literal["traces", "metrics", "logs"]
Mode = Literal["ok", "partial", "status", "429", "hang", "slow"]

PROTOBUF_CONTENT_TYPE = "application/x-protobuf"

_SIGNALS: tuple[Signal, ...] = ("traces", "metrics", "logs")
_MODES: frozenset[str] = frozenset(get_args(Mode))
_REQUEST_TYPES: dict[str, type[Message]] = {
    "traces": ExportTraceServiceRequest,
    "metrics": ExportMetricsServiceRequest,
    "logs": ExportLogsServiceRequest,
}

# Python value of an OTLP AnyValue.
PyValue: TypeAlias = "str | bool | int | float | bytes | list[Any] | dict[str, Any] | None"

_T = TypeVar("_T")


# --------------------------------------------------------------------------
# Recorded requests and decoded views
# --------------------------------------------------------------------------


@dataclass
class ReceivedRequest:
    """One HTTP request as the receiver saw it."""

    method: str
    path: str
    headers: dict[str, str]  # keys lowercased; repeated headers joined with ", "
    raw_body: bytes  # as received on the wire
    body: bytes  # after Content-Encoding (gzip/deflate) was undone
    content_type: str
    signal: Signal | None  # from the path suffix /v1/traces, /v1/metrics, /v1/logs
    received_at: float  # time.monotonic() when the body had been read
    message: Message | None = None  # decoded Export*ServiceRequest, if any
    decode_error: str | None = None  # why decompressing/decoding failed, if it did
    mode: str | None = None  # which answer was chosen ("ok", "hang", "415", ...)
    # Status code that was answered; None while a slow/hanging answer is still
    # pending, or if the connection was closed without an answer.
    status: int | None = None

    def header(self, name: str, default: str | None = None) -> str | None:
        """Case-insensitive header lookup."""
        return self.headers.get(name.lower(), default)

    @property
    def accepted(self) -> bool:
        """True if the request was answered with a 2xx status."""
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class SpanView:
    name: str
    kind: int  # opentelemetry.proto.trace.v1.Span.SpanKind: 1 internal, 2 server, 3 client, ...
    trace_id: str  # hex
    span_id: str  # hex
    parent_span_id: str  # hex, "" for a root span
    attributes: dict[str, Any]
    status_code: int  # 0 unset, 1 ok, 2 error
    status_message: str
    events: list[tuple[str, dict[str, Any]]]
    resource_attributes: dict[str, Any]
    scope_name: str
    start_time_ns: int
    end_time_ns: int

    def event(self, name: str) -> dict[str, Any]:
        """Attributes of the first event called ``name`` (KeyError if there is none)."""
        for event_name, attrs in self.events:
            if event_name == name:
                return attrs
        raise KeyError(f"span {self.name!r} has no event {name!r}; events: {[e[0] for e in self.events]}")


@dataclass(frozen=True)
class DataPointView:
    attributes: dict[str, Any]
    start_time_ns: int
    time_ns: int
    # sum / gauge
    value: int | float | None = None
    # histogram / exponential histogram
    count: int | None = None
    sum: float | None = None
    min: float | None = None
    max: float | None = None
    bucket_counts: list[int] = field(default_factory=list)  # explicit-bucket histogram
    explicit_bounds: list[float] = field(default_factory=list)
    # exponential histogram only
    scale: int | None = None
    zero_count: int | None = None
    positive_offset: int | None = None
    positive_bucket_counts: list[int] = field(default_factory=list)
    negative_offset: int | None = None
    negative_bucket_counts: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class MetricView:
    name: str
    description: str
    unit: str
    kind: str  # "sum" | "gauge" | "histogram" | "exponential_histogram" | "summary"
    temporality: int  # AggregationTemporality: 1 DELTA, 2 CUMULATIVE, 0 for gauges/summaries
    is_monotonic: bool | None  # sums only
    data_points: list[DataPointView]
    resource_attributes: dict[str, Any]
    scope_name: str


@dataclass(frozen=True)
class LogView:
    event_name: str
    body: Any  # converted AnyValue (None if unset)
    attributes: dict[str, Any]
    trace_id: str  # hex, "" if the record has no span context
    span_id: str  # hex, "" if the record has no span context
    severity_number: int
    severity_text: str
    time_ns: int
    observed_time_ns: int
    resource_attributes: dict[str, Any]
    scope_name: str


def any_value_to_python(value: AnyValue) -> PyValue:
    """Convert an OTLP ``AnyValue`` to a plain Python value."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value_to_python(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes_to_dict(value.kvlist_value.values)
    # string_value, bool_value, int_value, double_value, bytes_value, string_value_strindex
    result: PyValue = getattr(value, kind)
    return result


def attributes_to_dict(attributes: Iterable[KeyValue]) -> dict[str, Any]:
    """Convert repeated ``KeyValue`` to a dict (a repeated key keeps its last value)."""
    return {kv.key: any_value_to_python(kv.value) for kv in attributes}


def _span_views(message: ExportTraceServiceRequest) -> Iterator[SpanView]:
    for resource_spans in message.resource_spans:
        resource = attributes_to_dict(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield SpanView(
                    name=span.name,
                    kind=span.kind,
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_span_id=span.parent_span_id.hex(),
                    attributes=attributes_to_dict(span.attributes),
                    status_code=span.status.code,
                    status_message=span.status.message,
                    events=[(e.name, attributes_to_dict(e.attributes)) for e in span.events],
                    resource_attributes=resource,
                    scope_name=scope_spans.scope.name,
                    start_time_ns=span.start_time_unix_nano,
                    end_time_ns=span.end_time_unix_nano,
                )


def _number_value(point: Any) -> int | float | None:
    which = point.WhichOneof("value")
    value: int | float | None = None if which is None else getattr(point, which)
    return value


def _optional(point: Any, name: str) -> Any:
    return getattr(point, name) if point.HasField(name) else None


def _metric_view(metric: Any, resource: dict[str, Any], scope_name: str) -> MetricView:
    kind = metric.WhichOneof("data") or ""
    data: Any = getattr(metric, kind) if kind else None
    points: list[DataPointView] = []
    temporality = 0
    is_monotonic: bool | None = None
    if kind in ("sum", "gauge"):
        if kind == "sum":
            temporality = data.aggregation_temporality
            is_monotonic = data.is_monotonic
        points = [
            DataPointView(
                attributes=attributes_to_dict(p.attributes),
                start_time_ns=p.start_time_unix_nano,
                time_ns=p.time_unix_nano,
                value=_number_value(p),
            )
            for p in data.data_points
        ]
    elif kind == "histogram":
        temporality = data.aggregation_temporality
        points = [
            DataPointView(
                attributes=attributes_to_dict(p.attributes),
                start_time_ns=p.start_time_unix_nano,
                time_ns=p.time_unix_nano,
                count=p.count,
                sum=_optional(p, "sum"),
                min=_optional(p, "min"),
                max=_optional(p, "max"),
                bucket_counts=list(p.bucket_counts),
                explicit_bounds=list(p.explicit_bounds),
            )
            for p in data.data_points
        ]
    elif kind == "exponential_histogram":
        temporality = data.aggregation_temporality
        points = [
            DataPointView(
                attributes=attributes_to_dict(p.attributes),
                start_time_ns=p.start_time_unix_nano,
                time_ns=p.time_unix_nano,
                count=p.count,
                sum=_optional(p, "sum"),
                min=_optional(p, "min"),
                max=_optional(p, "max"),
                scale=p.scale,
                zero_count=p.zero_count,
                positive_offset=p.positive.offset,
                positive_bucket_counts=list(p.positive.bucket_counts),
                negative_offset=p.negative.offset,
                negative_bucket_counts=list(p.negative.bucket_counts),
            )
            for p in data.data_points
        ]
    elif kind == "summary":
        points = [
            DataPointView(
                attributes=attributes_to_dict(p.attributes),
                start_time_ns=p.start_time_unix_nano,
                time_ns=p.time_unix_nano,
                count=p.count,
                sum=p.sum,
            )
            for p in data.data_points
        ]
    return MetricView(
        name=metric.name,
        description=metric.description,
        unit=metric.unit,
        kind=kind,
        temporality=temporality,
        is_monotonic=is_monotonic,
        data_points=points,
        resource_attributes=resource,
        scope_name=scope_name,
    )


def _metric_views(message: ExportMetricsServiceRequest) -> Iterator[MetricView]:
    for resource_metrics in message.resource_metrics:
        resource = attributes_to_dict(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                yield _metric_view(metric, resource, scope_metrics.scope.name)


def _log_views(message: ExportLogsServiceRequest) -> Iterator[LogView]:
    for resource_logs in message.resource_logs:
        resource = attributes_to_dict(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                yield LogView(
                    event_name=record.event_name,
                    body=any_value_to_python(record.body) if record.HasField("body") else None,
                    attributes=attributes_to_dict(record.attributes),
                    trace_id=record.trace_id.hex(),
                    span_id=record.span_id.hex(),
                    severity_number=record.severity_number,
                    severity_text=record.severity_text,
                    time_ns=record.time_unix_nano,
                    observed_time_ns=record.observed_time_unix_nano,
                    resource_attributes=resource,
                    scope_name=scope_logs.scope.name,
                )


# --------------------------------------------------------------------------
# Scripted responses
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ResponseSpec:
    """How to answer one request.

    - ``ok``: 200, empty ``Export*ServiceResponse``, ``application/x-protobuf``.
    - ``partial``: 200 with ``partial_success`` (``rejected``, ``message``) for the
      request's signal.
    - ``status``: ``status`` (required), optional ``retry_after`` header and ``body``.
    - ``429``: shorthand for ``status`` with ``status=429``.
    - ``hang``: read the request, then never answer; the connection is closed without
      an answer when the receiver stops or after ``delay`` seconds (if given).
    - ``slow``: answer like ``ok`` after ``delay`` seconds (required).
    """

    mode: Mode = "ok"
    status: int | None = None
    retry_after: int | float | str | None = None
    body: bytes | str = b""
    content_type: str | None = None
    delay: float | None = None
    rejected: int = 0
    message: str = ""

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise ValueError(f"unknown response mode {self.mode!r}; expected one of {sorted(_MODES)}")
        if self.mode == "status" and self.status is None:
            raise ValueError("mode 'status' needs status=<code>")
        if self.mode == "slow" and self.delay is None:
            raise ValueError("mode 'slow' needs delay=<seconds>")


_EMPTY_RESPONSES: dict[str, type[Message]] = {
    "traces": ExportTraceServiceResponse,
    "metrics": ExportMetricsServiceResponse,
    "logs": ExportLogsServiceResponse,
}


def _empty_response(signal: Signal | None) -> bytes:
    """Serialized empty Export*ServiceResponse (b"" on the wire, like a collector's)."""
    return _EMPTY_RESPONSES[signal]().SerializeToString() if signal else b""


def _partial_response(signal: Signal | None, rejected: int, message: str) -> Message:
    if signal == "traces":
        return ExportTraceServiceResponse(
            partial_success=ExportTracePartialSuccess(rejected_spans=rejected, error_message=message)
        )
    if signal == "metrics":
        return ExportMetricsServiceResponse(
            partial_success=ExportMetricsPartialSuccess(rejected_data_points=rejected, error_message=message)
        )
    if signal == "logs":
        return ExportLogsServiceResponse(
            partial_success=ExportLogsPartialSuccess(rejected_log_records=rejected, error_message=message)
        )
    return ExportTraceServiceResponse()  # unknown path: nothing to be partial about


# --------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------


def _signal_for_path(path: str) -> Signal | None:
    route = urlsplit(path).path.rstrip("/")
    for signal in _SIGNALS:
        if route.endswith(f"/v1/{signal}"):
            return signal
    return None


def _decompress(data: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return data
    if encoding in ("gzip", "x-gzip"):
        return gzip.decompress(data)
    if encoding == "deflate":
        try:
            return zlib.decompress(data)  # zlib-wrapped, what HTTP "deflate" means
        except zlib.error:
            return zlib.decompress(data, -zlib.MAX_WBITS)  # raw deflate, sent by some clients
    raise ValueError(f"unsupported Content-Encoding {encoding!r}")


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the stdlib default (5) refuses bursts of concurrent clients
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], receiver: OTLPReceiver) -> None:
        self.receiver = receiver
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), which can stall on a DNS lookup.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Cut every open connection, so idle keep-alive handler threads end too."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out and hang up are expected in these tests; stay quiet.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        receiver = self.server.receiver
        try:
            raw_body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        content_type = headers.get("content-type", "")
        signal = _signal_for_path(self.path)
        request = ReceivedRequest(
            method=self.command,
            path=self.path,
            headers=headers,
            raw_body=raw_body,
            body=raw_body,
            content_type=content_type,
            signal=signal,
            received_at=time.monotonic(),
        )
        try:
            request.body = _decompress(raw_body, headers.get("content-encoding", ""))
        except (OSError, EOFError, ValueError, zlib.error) as exc:
            request.decode_error = f"cannot decompress body: {exc!r}"
        media_type = content_type.split(";", 1)[0].strip().lower()

        if self.command != "POST":
            self._answer_now(
                request,
                mode="405",
                status=405,
                body=b"Method Not Allowed",
                content_type="text/plain",
                extra_headers={"Allow": "POST"},
            )
            return
        if receiver.require_protobuf and media_type != PROTOBUF_CONTENT_TYPE:
            # Dynatrace accepts OTLP/HTTP only as binary protobuf.
            self._answer_now(
                request, mode="415", status=415, body=b"Unsupported Media Type", content_type="text/plain"
            )
            return
        if request.decode_error is None and signal is not None and media_type == PROTOBUF_CONTENT_TYPE:
            message = _REQUEST_TYPES[signal]()
            try:
                message.ParseFromString(request.body)
            except DecodeError as exc:
                request.decode_error = f"cannot decode {type(message).__name__}: {exc}"
            else:
                request.message = message
        if request.decode_error is not None:
            self._answer_now(
                request, mode="400", status=400, body=request.decode_error.encode(), content_type="text/plain"
            )
            return

        spec = receiver._next_response()
        if spec.mode == "hang":
            request.mode = spec.mode
            receiver._record(request)
            receiver._stopping.wait(spec.delay)
            self.close_connection = True  # close without answering
            return
        if spec.mode == "slow":
            request.mode = spec.mode
            receiver._record(request)
            if receiver._stopping.wait(spec.delay):
                self.close_connection = True  # stopped while waiting: never answered
                return
            self._send(request, status=200, body=_empty_response(signal), content_type=PROTOBUF_CONTENT_TYPE)
            return
        if spec.mode == "ok":
            self._answer_now(
                request,
                mode="ok",
                status=200,
                body=_empty_response(signal),
                content_type=PROTOBUF_CONTENT_TYPE,
            )
            return
        if spec.mode == "partial":
            body = _partial_response(signal, spec.rejected, spec.message).SerializeToString()
            self._answer_now(
                request, mode="partial", status=200, body=body, content_type=PROTOBUF_CONTENT_TYPE
            )
            return
        # "status" / "429"
        status = 429 if spec.mode == "429" else int(spec.status or 500)
        extra = {} if spec.retry_after is None else {"Retry-After": _format_retry_after(spec.retry_after)}
        body = spec.body.encode() if isinstance(spec.body, str) else spec.body
        content_type_out = spec.content_type or ("text/plain" if body else None)
        self._answer_now(
            request,
            mode=spec.mode,
            status=status,
            body=body,
            content_type=content_type_out,
            extra_headers=extra,
        )

    def _answer_now(
        self,
        request: ReceivedRequest,
        *,
        mode: str,
        status: int,
        body: bytes,
        content_type: str | None,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        request.mode = mode
        request.status = status  # known before recording, so observers never see None
        self.server.receiver._record(request)
        self._send(request, status=status, body=body, content_type=content_type, extra_headers=extra_headers)

    def _send(
        self,
        request: ReceivedRequest,
        *,
        status: int,
        body: bytes,
        content_type: str | None,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        request.status = status
        try:
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (extra_headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except OSError:  # the client gave up (timeout) or the receiver is stopping
            self.close_connection = True


def _format_retry_after(value: int | float | str) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --------------------------------------------------------------------------
# The receiver
# --------------------------------------------------------------------------


class OTLPReceiver:
    """OTLP/HTTP receiver on 127.0.0.1 that records, decodes and answers requests."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, require_protobuf: bool = True) -> None:
        self.host = host
        self._requested_port = port
        self.require_protobuf = require_protobuf
        self._lock = threading.Lock()
        self._requests: list[ReceivedRequest] = []
        self._default = ResponseSpec()
        self._queue: deque[ResponseSpec] = deque()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> OTLPReceiver:
        if self._server is not None:
            raise RuntimeError("OTLPReceiver already started")
        self._stopping = threading.Event()
        self._server = _Server((self.host, self._requested_port), self)
        self._port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"otlp-receiver-{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop promptly, even if handlers are hanging (they are released and dropped)."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()  # releases "hang" and "slow" handlers
        server.shutdown()  # ends serve_forever (polls every 50 ms)
        server.server_close()  # closes the listening socket
        server.drop_connections()  # ends keep-alive and in-flight connections
        if thread is not None:
            thread.join(timeout=1.0)
        self._server = None
        self._thread = None

    def __enter__(self) -> OTLPReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("OTLPReceiver not started")
        return self._port

    @property
    def url(self) -> str:
        """Base URL without a path, e.g. ``http://127.0.0.1:40123``."""
        return f"http://{self.host}:{self.port}"

    def endpoint(self, signal: Signal) -> str:
        """Full signal URL, e.g. ``http://127.0.0.1:40123/v1/traces``."""
        return f"{self.url}/v1/{signal}"

    # -- responses ---------------------------------------------------------

    def set_response(self, mode: Mode = "ok", **kw: Any) -> None:
        """Set the default answer for every request not covered by a queued one."""
        spec = ResponseSpec(mode, **kw)
        with self._lock:
            self._default = spec

    def queue_response(self, mode: Mode = "ok", *, times: int = 1, **kw: Any) -> None:
        """Answer the next ``times`` requests (after earlier queued ones) this way."""
        spec = ResponseSpec(mode, **kw)
        with self._lock:
            self._queue.extend([spec] * times)

    def _next_response(self) -> ResponseSpec:
        with self._lock:
            return self._queue.popleft() if self._queue else self._default

    # -- recorded data -----------------------------------------------------

    def _record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Snapshot of all recorded requests, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, signal: Signal) -> list[ReceivedRequest]:
        return [r for r in self.requests if r.signal == signal]

    def clear(self) -> None:
        """Forget the recorded requests (response settings are kept)."""
        with self._lock:
            self._requests.clear()

    def reset(self) -> None:
        """Forget recorded requests and queued responses; default back to ``ok``."""
        with self._lock:
            self._requests.clear()
            self._queue.clear()
            self._default = ResponseSpec()

    def _messages(self, signal: Signal, accepted_only: bool) -> Iterator[Any]:
        for request in self.requests_for(signal):
            if request.message is not None and (request.accepted or not accepted_only):
                yield request.message

    def spans(self, name: str | None = None, *, accepted_only: bool = False) -> list[SpanView]:
        """Decoded spans of all trace requests (a retried request counts again,
        unless ``accepted_only`` keeps only requests answered with 2xx)."""
        views = [v for m in self._messages("traces", accepted_only) for v in _span_views(m)]
        return views if name is None else [v for v in views if v.name == name]

    def metrics(self, name: str | None = None, *, accepted_only: bool = False) -> list[MetricView]:
        """Decoded metrics, one view per metric per export, oldest first."""
        views = [v for m in self._messages("metrics", accepted_only) for v in _metric_views(m)]
        return views if name is None else [v for v in views if v.name == name]

    def logs(self, event_name: str | None = None, *, accepted_only: bool = False) -> list[LogView]:
        views = [v for m in self._messages("logs", accepted_only) for v in _log_views(m)]
        return views if event_name is None else [v for v in views if v.event_name == event_name]

    # -- waiting -----------------------------------------------------------

    def wait_for(
        self,
        predicate: Callable[[OTLPReceiver], _T | None],
        timeout: float = 10.0,
        *,
        interval: float = 0.02,
        description: str | None = None,
    ) -> _T:
        """Poll until ``predicate(self)`` is truthy and return its value;
        raise AssertionError with a summary of what was received on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate(self)
            if result:
                return result
            if time.monotonic() >= deadline:
                what = description or getattr(predicate, "__name__", "predicate")
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; {self.summary()}")
            time.sleep(interval)

    def wait_for_requests(
        self, n: int, signal: Signal | None = None, timeout: float = 10.0
    ) -> list[ReceivedRequest]:
        def enough(r: OTLPReceiver) -> list[ReceivedRequest] | None:
            found = r.requests if signal is None else r.requests_for(signal)
            return found if len(found) >= n else None

        return self.wait_for(enough, timeout, description=f"{n} {signal or 'any'} request(s)")

    def wait_for_spans(self, n: int, timeout: float = 10.0) -> list[SpanView]:
        """Wait until at least ``n`` spans arrived; return all spans."""

        def enough(r: OTLPReceiver) -> list[SpanView] | None:
            spans = r.spans()
            return spans if len(spans) >= n else None

        return self.wait_for(enough, timeout, description=f"{n} span(s)")

    def wait_for_metric(self, name: str, timeout: float = 10.0) -> MetricView:
        """Wait until a metric called ``name`` arrived; return its latest export."""

        def latest(r: OTLPReceiver) -> MetricView | None:
            found = r.metrics(name)
            return found[-1] if found else None

        return self.wait_for(latest, timeout, description=f"metric {name!r}")

    def wait_for_logs(self, n: int, timeout: float = 10.0) -> list[LogView]:
        """Wait until at least ``n`` log records arrived; return all of them."""

        def enough(r: OTLPReceiver) -> list[LogView] | None:
            logs = r.logs()
            return logs if len(logs) >= n else None

        return self.wait_for(enough, timeout, description=f"{n} log record(s)")

    def summary(self) -> str:
        """One line per recorded request, for assertion messages."""
        requests = self.requests
        if not requests:
            return "no requests received"
        lines = [f"{len(requests)} request(s) received:"]
        for r in requests:
            lines.append(f"  {r.method} {r.path} -> {r.status} ({r.mode}) {_describe(r)}")
        return "\n".join(lines)


def _describe(request: ReceivedRequest) -> str:
    if request.decode_error:
        return f"[{request.decode_error}]"
    message = request.message
    names: Sequence[str]
    if isinstance(message, ExportTraceServiceRequest):
        names = [s.name for s in _span_views(message)]
        return f"spans={names}"
    if isinstance(message, ExportMetricsServiceRequest):
        names = [m.name for m in _metric_views(message)]
        return f"metrics={names}"
    if isinstance(message, ExportLogsServiceRequest):
        names = [lg.event_name or repr(lg.body)[:40] for lg in _log_views(message)]
        return f"logs={names}"
    return f"content-type={request.content_type!r} body={len(request.body)} bytes"
