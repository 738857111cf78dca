"""Self-test of the OTLP receiver: it decodes what the real OpenTelemetry SDK
exports and answers in every configured mode."""

from __future__ import annotations

import gzip
import http.client
import json
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Mapping
from typing import Any

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import fixtures
from .otlp_receiver import OTLPReceiver, ResponseSpec

otlp_receiver = fixtures.otlp_receiver  # the fixture under test (tests/conftest.py may import it too)

RESOURCE = Resource.create({"service.name": "rig-self-test"})


# -- helpers -----------------------------------------------------------------


def _post(
    url: str,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    timeout: float = 5.0,
) -> tuple[int, dict[str, str], bytes]:
    """POST and return (status, lowercased headers, body), also for 4xx/5xx."""
    all_headers = {"Content-Type": "application/x-protobuf", **(headers or {})}
    request = urllib.request.Request(url, data=body, headers=all_headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def _trace_request(span_name: str = "handmade") -> bytes:
    span = Span(
        name=span_name,
        trace_id=bytes(range(16)),
        span_id=bytes(range(8)),
        kind=Span.SPAN_KIND_CLIENT,
        attributes=[KeyValue(key="k", value=AnyValue(string_value="v"))],
    )
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])]
    )
    return bytes(request.SerializeToString())


# -- what the SDK exports ----------------------------------------------------


def test_sdk_spans_are_decoded_gzip(otlp_receiver: OTLPReceiver) -> None:
    exporter = OTLPSpanExporter(
        endpoint=otlp_receiver.url + "/v1/traces", compression=Compression.Gzip, timeout=5
    )
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("rig.scope")
    attributes: dict[str, Any] = {
        "gen_ai.system": "openai",
        "gen_ai.usage.input_tokens": 42,
        "gen_ai.request.temperature": 0.5,
        "gen_ai.request.stream": True,
        "gen_ai.response.finish_reasons": ["stop", "length"],
    }
    try:
        with (
            tracer.start_as_current_span("parent") as parent,
            tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT, attributes=attributes) as child,
        ):
            child.add_event("gen_ai.choice", {"index": 0, "finish_reason": "stop"})
            child.set_status(Status(StatusCode.ERROR, "boom"))
    finally:
        provider.shutdown()

    spans = otlp_receiver.wait_for_spans(2, timeout=5)
    by_name = {s.name: s for s in spans}
    span = by_name["chat gpt-4o"]
    assert span.kind == 3  # SPAN_KIND_CLIENT
    assert span.attributes == attributes
    assert isinstance(span.attributes["gen_ai.usage.input_tokens"], int)
    assert isinstance(span.attributes["gen_ai.request.temperature"], float)
    assert span.trace_id == format(parent.get_span_context().trace_id, "032x")
    assert span.span_id == format(child.get_span_context().span_id, "016x")
    assert span.parent_span_id == format(parent.get_span_context().span_id, "016x")
    assert by_name["parent"].parent_span_id == ""
    assert span.status_code == 2  # STATUS_CODE_ERROR
    assert span.status_message == "boom"
    assert span.events == [("gen_ai.choice", {"index": 0, "finish_reason": "stop"})]
    assert span.event("gen_ai.choice")["finish_reason"] == "stop"
    assert span.resource_attributes["service.name"] == "rig-self-test"
    assert span.scope_name == "rig.scope"
    assert 0 < span.start_time_ns <= span.end_time_ns

    request = otlp_receiver.requests[0]
    assert request.method == "POST"
    assert request.path == "/v1/traces"
    assert request.signal == "traces"
    assert request.status == 200
    assert request.header("Content-Encoding") == "gzip"
    assert request.content_type == "application/x-protobuf"
    assert (request.header("user-agent") or "").startswith("OTel-OTLP-Exporter-Python/")
    assert request.raw_body[:2] == b"\x1f\x8b"
    assert request.body == gzip.decompress(request.raw_body)


def test_sdk_delta_metrics_are_decoded(otlp_receiver: OTLPReceiver) -> None:
    exporter = OTLPMetricExporter(
        endpoint=otlp_receiver.endpoint("metrics"),
        timeout=5,
        preferred_temporality={
            Counter: AggregationTemporality.DELTA,
            Histogram: AggregationTemporality.DELTA,
        },
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=60_000)
    provider = MeterProvider(metric_readers=[reader], resource=RESOURCE)
    meter = provider.get_meter("rig.meter")
    try:
        counter = meter.create_counter("gen_ai.client.token.usage.count", unit="{token}")
        histogram = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", explicit_bucket_boundaries_advisory=[0.1, 1.0, 10.0]
        )
        counter.add(3, {"gen_ai.token.type": "input"})
        counter.add(2, {"gen_ai.token.type": "input"})
        histogram.record(0.05, {"gen_ai.operation.name": "chat"})
        histogram.record(2.5, {"gen_ai.operation.name": "chat"})
        assert provider.force_flush(timeout_millis=5_000)
    finally:
        provider.shutdown()

    total = otlp_receiver.wait_for_metric("gen_ai.client.token.usage.count", timeout=5)
    assert total.kind == "sum"
    assert total.temporality == 1  # DELTA
    assert total.is_monotonic is True
    assert total.unit == "{token}"
    assert [(p.attributes, p.value) for p in total.data_points] == [({"gen_ai.token.type": "input"}, 5)]
    assert total.resource_attributes["service.name"] == "rig-self-test"
    assert total.scope_name == "rig.meter"

    duration = otlp_receiver.wait_for_metric("gen_ai.client.operation.duration", timeout=5)
    assert duration.kind == "histogram"
    assert duration.temporality == 1
    assert duration.is_monotonic is None
    (point,) = duration.data_points
    assert point.attributes == {"gen_ai.operation.name": "chat"}
    assert point.explicit_bounds == [0.1, 1.0, 10.0]
    assert point.bucket_counts == [1, 0, 1, 0]
    assert point.count == 2
    assert point.sum == pytest.approx(2.55)
    assert (point.min, point.max) == (0.05, 2.5)


def test_sdk_log_events_are_decoded(otlp_receiver: OTLPReceiver) -> None:
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=otlp_receiver.endpoint("logs"), timeout=5))
    )
    logger = provider.get_logger("rig.events")
    tracer = TracerProvider().get_tracer("rig")
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}], "n": 1, "ok": True}
    try:
        with tracer.start_as_current_span("op") as span:
            logger.emit(
                event_name="gen_ai.client.inference.operation.details",
                body=body,
                attributes={"gen_ai.system": "openai"},
                severity_number=SeverityNumber.INFO,
            )
    finally:
        provider.shutdown()

    (log,) = otlp_receiver.wait_for_logs(1, timeout=5)
    assert log.event_name == "gen_ai.client.inference.operation.details"
    assert log.body == body
    assert log.attributes == {"gen_ai.system": "openai"}
    assert log.severity_number == SeverityNumber.INFO.value
    assert log.trace_id == format(span.get_span_context().trace_id, "032x")
    assert log.span_id == format(span.get_span_context().span_id, "016x")
    assert log.resource_attributes["service.name"] == "rig-self-test"
    assert log.scope_name == "rig.events"
    assert otlp_receiver.logs("gen_ai.client.inference.operation.details") == [log]


def test_sdk_exporter_retries_after_429_with_retry_after(otlp_receiver: OTLPReceiver) -> None:
    otlp_receiver.queue_response("429", retry_after=0)  # Retry-After: 0 -> the SDK retries at once
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("rig").start_as_current_span("retried"):
        pass
    provider.shutdown()

    exporter = OTLPSpanExporter(endpoint=otlp_receiver.endpoint("traces"), timeout=5)
    try:
        assert exporter.export(memory.get_finished_spans()) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()

    assert [r.status for r in otlp_receiver.requests] == [429, 200]
    assert [r.mode for r in otlp_receiver.requests] == ["429", "ok"]
    assert [s.name for s in otlp_receiver.spans()] == ["retried", "retried"]
    assert [s.name for s in otlp_receiver.spans(accepted_only=True)] == ["retried"]


# -- response modes ------------------------------------------------------------


def test_ok_answers_empty_protobuf_response(otlp_receiver: OTLPReceiver) -> None:
    status, headers, body = _post(otlp_receiver.endpoint("traces"), _trace_request())
    assert status == 200
    assert headers["content-type"] == "application/x-protobuf"
    response = ExportTraceServiceResponse.FromString(body)
    assert not response.HasField("partial_success")
    (request,) = otlp_receiver.requests
    assert (request.status, request.mode) == (200, "ok")
    (span,) = otlp_receiver.spans("handmade")
    assert span.kind == 3
    assert span.attributes == {"k": "v"}
    assert span.trace_id == bytes(range(16)).hex()


@pytest.mark.parametrize(
    ("signal", "response_type", "field"),
    [
        ("traces", ExportTraceServiceResponse, "rejected_spans"),
        ("metrics", ExportMetricsServiceResponse, "rejected_data_points"),
        ("logs", ExportLogsServiceResponse, "rejected_log_records"),
    ],
)
def test_partial_success_matches_signal(
    otlp_receiver: OTLPReceiver, signal: str, response_type: Any, field: str
) -> None:
    otlp_receiver.set_response("partial", rejected=3, message="attribute value too long")
    # An empty Export*ServiceRequest is valid for every signal.
    status, headers, body = _post(f"{otlp_receiver.url}/v1/{signal}", b"")
    assert status == 200
    assert headers["content-type"] == "application/x-protobuf"
    response = response_type.FromString(body)
    assert response.HasField("partial_success")
    assert getattr(response.partial_success, field) == 3
    assert response.partial_success.error_message == "attribute value too long"
    assert otlp_receiver.requests[0].mode == "partial"


def test_status_mode_with_retry_after_and_body(otlp_receiver: OTLPReceiver) -> None:
    otlp_receiver.set_response("status", status=503, retry_after=7, body="try later")
    status, headers, body = _post(otlp_receiver.endpoint("metrics"), b"")
    assert status == 503
    assert headers["retry-after"] == "7"
    assert body == b"try later"
    assert otlp_receiver.requests[0].status == 503


def test_queued_429_then_default(otlp_receiver: OTLPReceiver) -> None:
    otlp_receiver.queue_response("429", retry_after=2)
    otlp_receiver.queue_response("status", status=413, times=2)
    results = [_post(otlp_receiver.endpoint("traces"), _trace_request()) for _ in range(4)]
    assert [status for status, _, _ in results] == [429, 413, 413, 200]
    assert results[0][1]["retry-after"] == "2"
    assert "retry-after" not in results[1][1]
    assert [r.status for r in otlp_receiver.requests] == [429, 413, 413, 200]


def test_slow_answers_after_delay(otlp_receiver: OTLPReceiver) -> None:
    otlp_receiver.set_response("slow", delay=0.3)
    started = time.monotonic()
    status, _, _ = _post(otlp_receiver.endpoint("traces"), _trace_request())
    assert status == 200
    assert time.monotonic() - started >= 0.3
    assert otlp_receiver.requests[0].status == 200


def test_hang_with_delay_closes_without_answer(otlp_receiver: OTLPReceiver) -> None:
    otlp_receiver.set_response("hang", delay=0.2)
    with pytest.raises((http.client.RemoteDisconnected, urllib.error.URLError, ConnectionError)):
        _post(otlp_receiver.endpoint("traces"), _trace_request(), timeout=5)
    (request,) = otlp_receiver.requests
    assert (request.mode, request.status) == ("hang", None)
    assert otlp_receiver.spans()[0].name == "handmade"  # the body was still read and decoded


def test_hang_does_not_block_stop() -> None:
    receiver = OTLPReceiver().start()
    receiver.set_response("hang")
    errors: list[BaseException] = []

    def client() -> None:
        try:
            _post(receiver.endpoint("traces"), _trace_request(), timeout=10)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    receiver.wait_for_requests(1, timeout=5)
    started = time.monotonic()
    receiver.stop()
    assert time.monotonic() - started < 1.0
    thread.join(timeout=2)
    assert not thread.is_alive()
    assert errors, "the hanging request must fail, not get an answer"
    assert receiver.requests[0].status is None
    receiver.stop()  # idempotent


def test_stop_cuts_idle_keep_alive_connections() -> None:
    receiver = OTLPReceiver().start()
    conn = http.client.HTTPConnection(receiver.host, receiver.port, timeout=5)
    try:
        conn.request(
            "POST", "/v1/traces", body=_trace_request(), headers={"Content-Type": "application/x-protobuf"}
        )
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        assert response.getheader("Connection") != "close"  # kept alive (HTTP/1.1)
        started = time.monotonic()
        receiver.stop()
        assert time.monotonic() - started < 1.0
        with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
            conn.request("POST", "/v1/traces", body=b"", headers={"Content-Type": "application/x-protobuf"})
            conn.getresponse()
    finally:
        conn.close()
    with pytest.raises(OSError):
        _post(receiver.url + "/v1/traces", b"", timeout=1)


def test_json_is_rejected_with_415_and_recorded(otlp_receiver: OTLPReceiver) -> None:
    status, _, _ = _post(
        otlp_receiver.endpoint("traces"),
        json.dumps({"resourceSpans": []}).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert status == 415
    (request,) = otlp_receiver.requests
    assert (request.status, request.mode, request.content_type) == (415, "415", "application/json")
    assert request.message is None
    assert otlp_receiver.spans() == []


def test_deflate_body_is_decompressed(otlp_receiver: OTLPReceiver) -> None:
    payload = _trace_request("deflated")
    status, _, _ = _post(
        otlp_receiver.endpoint("traces"), zlib.compress(payload), {"Content-Encoding": "deflate"}
    )
    assert status == 200
    request = otlp_receiver.requests[0]
    assert request.body == payload
    assert request.raw_body != payload
    assert otlp_receiver.spans()[0].name == "deflated"


def test_undecodable_protobuf_gets_400(otlp_receiver: OTLPReceiver) -> None:
    status, _, _ = _post(otlp_receiver.endpoint("traces"), b"\xff\xff\xff\xff not protobuf")
    assert status == 400
    assert otlp_receiver.requests[0].decode_error


def test_unknown_path_is_recorded_without_signal(otlp_receiver: OTLPReceiver) -> None:
    status, _, body = _post(otlp_receiver.url + "/api/v2/otlp/something", b"xyz")
    assert (status, body) == (200, b"")
    request = otlp_receiver.requests[0]
    assert request.signal is None
    assert request.raw_body == b"xyz"


def test_wait_for_times_out_with_summary(otlp_receiver: OTLPReceiver) -> None:
    _post(otlp_receiver.endpoint("traces"), _trace_request("only-one"))
    with pytest.raises(AssertionError, match=r"(?s)2 span\(s\).*only-one"):
        otlp_receiver.wait_for_spans(2, timeout=0.1)
    with pytest.raises(AssertionError, match="metric 'nope'"):
        otlp_receiver.wait_for_metric("nope", timeout=0.05)


def test_clear_and_reset(otlp_receiver: OTLPReceiver) -> None:
    otlp_receiver.set_response("status", status=500)
    _post(otlp_receiver.endpoint("traces"), _trace_request())
    otlp_receiver.clear()
    assert otlp_receiver.requests == []
    assert _post(otlp_receiver.endpoint("traces"), _trace_request())[0] == 500
    otlp_receiver.reset()
    assert otlp_receiver.requests == []
    assert _post(otlp_receiver.endpoint("traces"), _trace_request())[0] == 200


def test_invalid_response_specs_are_refused(otlp_receiver: OTLPReceiver) -> None:
    with pytest.raises(ValueError, match="unknown response mode"):
        otlp_receiver.set_response("teapot")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="status="):
        otlp_receiver.queue_response("status")
    with pytest.raises(ValueError, match="delay="):
        ResponseSpec("slow")
    with pytest.raises(TypeError):
        otlp_receiver.set_response("ok", colour="red")
