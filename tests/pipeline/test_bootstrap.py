"""init() end to end: what a real OTLP/HTTP receiver decodes from the pipeline init() builds."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

import genai_observe
from genai_observe._core import semconv as sc
from genai_observe._pipeline import resource as _resource
from tests.rig.otlp_receiver import OTLPReceiver

TOKEN = "dt0c01.ABCDEFGHIJKLMNOPQRSTUVWX.SECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETXX"
DELTA = 1


def one_call(model: str = "m1", *, fail: bool = False, prompt: str = "What is OTLP?") -> None:
    try:
        with genai_observe.llm_call(
            provider="openai",
            model=model,
            messages=[{"role": "user", "content": prompt}],
            server_address="api.example.com",
            server_port=443,
        ) as call:
            if fail:
                raise TimeoutError("upstream timed out")
            call.set_response(
                content="It is a protocol.",
                finish_reason="stop",
                response_model=model + "-2025",
                response_id="resp-1",
                input_tokens=12,
                output_tokens=7,
            )
    except TimeoutError:
        pass


def start(receiver: OTLPReceiver, **kwargs: Any) -> genai_observe.Handle:
    kwargs.setdefault("endpoint", receiver.url)
    kwargs.setdefault("metric_export_interval_ms", 60_000)
    return genai_observe.init(service_name="svc-test", **kwargs)


def test_traces_metrics_logs_arrive_with_auth_and_gzip(otlp_receiver: OTLPReceiver) -> None:
    handle = start(otlp_receiver, api_token=TOKEN, capture_content="SPAN_AND_EVENT")
    one_call()
    handle.shutdown()
    requests = otlp_receiver.requests
    assert {r.signal for r in requests} == {"traces", "metrics", "logs"}
    for r in requests:
        assert r.path == f"/v1/{r.signal}"
        assert r.headers["authorization"] == f"Api-Token {TOKEN}"
        assert r.headers["content-encoding"] == "gzip"
        assert r.content_type == "application/x-protobuf"
    (span,) = otlp_receiver.spans()
    assert span.name == "chat m1"
    assert span.kind == 3  # CLIENT
    assert span.resource_attributes["service.name"] == "svc-test"
    assert span.resource_attributes["telemetry.sdk.language"] == "python"
    assert span.attributes[sc.GEN_AI_SYSTEM] == "openai"
    assert span.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 12
    (log,) = otlp_receiver.logs()
    assert log.event_name == sc.EVENT_INFERENCE_DETAILS
    assert log.span_id == span.span_id
    assert json.loads(log.attributes[sc.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"] == "What is OTLP?"


def test_per_signal_compression_reaches_the_wire(
    otlp_receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "none")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "deflate")
    handle = start(otlp_receiver, capture_content="SPAN_AND_EVENT")
    one_call()
    handle.shutdown()
    encodings = {r.signal: r.headers.get("content-encoding") for r in otlp_receiver.requests}
    assert encodings == {"traces": None, "metrics": "gzip", "logs": "deflate"}
    assert len(otlp_receiver.spans()) == 1 and len(otlp_receiver.logs()) == 1  # all decoded


def test_metrics_are_delta_with_spec_buckets_on_the_wire(otlp_receiver: OTLPReceiver) -> None:
    handle = start(otlp_receiver)
    one_call()
    one_call(fail=True)
    with genai_observe.llm_call("embeddings", provider="openai", model="emb") as call:
        call.set_response(embedding_vector_size=1536, input_tokens=4)
    with genai_observe.llm_call(provider="openai", model="s1", stream=True) as call:
        for _ in range(3):
            call.chunk()
        call.set_response(content="abc", finish_reason="stop")
    handle.shutdown()
    by_name = {m.name: m for m in otlp_receiver.metrics()}
    # Written out as in ../shared/spec/dynatrace-genai-attributes.md (v1.41.0), not taken from
    # _semconv, so a drift of the constants fails here.
    seconds = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
    tokens = tuple(float(4**i) for i in range(14))  # 1, 4, 16, ..., 67108864
    assert tokens[-1] == 67108864
    expected = {
        sc.METRIC_OPERATION_DURATION: seconds,
        sc.METRIC_TOKEN_USAGE: tokens,
        sc.METRIC_TIME_TO_FIRST_CHUNK: seconds,
        sc.METRIC_TIME_PER_OUTPUT_CHUNK: seconds,
    }
    for name, bounds in expected.items():
        metric = by_name[name]
        assert metric.kind == "histogram", name
        assert metric.temporality == DELTA, name
        for point in metric.data_points:
            assert tuple(point.explicit_bounds) == tuple(float(b) for b in bounds), name
    for name in (sc.METRIC_GENERATION_CHOICES, sc.METRIC_EMBEDDINGS_VECTOR_SIZE):
        assert (
            by_name[name].kind == "sum" and by_name[name].temporality == DELTA and by_name[name].is_monotonic
        )
    duration = by_name[sc.METRIC_OPERATION_DURATION]
    errors = [p for p in duration.data_points if p.attributes.get(sc.ERROR_TYPE) == "TimeoutError"]
    assert len(errors) == 1 and errors[0].count == 1
    tokens = by_name[sc.METRIC_TOKEN_USAGE]
    chat_in = [
        p
        for p in tokens.data_points
        if p.attributes[sc.GEN_AI_TOKEN_TYPE] == "input" and p.attributes[sc.GEN_AI_REQUEST_MODEL] == "m1"
    ]
    assert chat_in[0].sum == 12
    assert chat_in[0].attributes[sc.GEN_AI_RESPONSE_MODEL] == "m1-2025"
    # No token points for the failed call or the stream without usage.
    assert all(p.attributes[sc.GEN_AI_REQUEST_MODEL] != "s1" for p in tokens.data_points)
    assert by_name[sc.METRIC_EMBEDDINGS_VECTOR_SIZE].data_points[0].value == 1536
    per_chunk = by_name[sc.METRIC_TIME_PER_OUTPUT_CHUNK].data_points[0]
    assert per_chunk.count == 2  # three chunks: two gaps
    # Low cardinality: only the allowed keys on every point (plus the token type).
    for metric in by_name.values():
        if metric.scope_name.startswith("genai_observe"):
            for point in metric.data_points:
                assert set(point.attributes) <= {*sc.METRIC_ATTRIBUTE_KEYS, *sc.METRIC_EXTRA_KEYS}


def test_metrics_recorded_even_when_span_not_sampled(
    otlp_receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    handle = start(otlp_receiver)
    one_call()
    handle.shutdown()
    assert otlp_receiver.spans() == []
    assert otlp_receiver.metrics(sc.METRIC_OPERATION_DURATION)


def test_partial_success_is_logged_and_counted(
    otlp_receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="genai_observe")
    otlp_receiver.set_response(
        "partial", rejected=3, message="UNSUPPORTED_METRIC_TYPE_MONOTONIC_CUMULATIVE_SUM"
    )
    handle = start(otlp_receiver)
    one_call()
    handle.force_flush()
    stats = handle.stats()
    handle.shutdown()
    assert stats["rejected"]["traces"] == 3
    assert stats["rejected"]["metrics"] == 3
    assert "UNSUPPORTED_METRIC_TYPE_MONOTONIC_CUMULATIVE_SUM" in caplog.text
    assert "rejected 3 traces" in caplog.text
    # Rate-limited: one line per signal however many exports were rejected.
    assert caplog.text.count("rejected 3 traces") == 1


def test_429_is_retried_honouring_retry_after(otlp_receiver: OTLPReceiver) -> None:
    otlp_receiver.queue_response("429", retry_after=1)
    handle = start(otlp_receiver, traces=True, metrics=False, logs=False)
    one_call()
    handle.force_flush()
    handle.shutdown()
    traces = otlp_receiver.requests_for("traces")
    assert [r.status for r in traces] == [429, 200]
    assert traces[1].received_at - traces[0].received_at >= 0.9
    assert len(otlp_receiver.spans(accepted_only=True)) == 1


def test_503_then_success_and_400_is_not_retried(otlp_receiver: OTLPReceiver) -> None:
    otlp_receiver.queue_response("status", status=503, retry_after=0)
    handle = start(otlp_receiver, metrics=False, logs=False)
    one_call()
    handle.force_flush()
    otlp_receiver.queue_response("status", status=400)
    one_call()
    handle.shutdown()
    assert [r.status for r in otlp_receiver.requests_for("traces")] == [503, 200, 400]


def _free_port(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.skipif(not _free_port(14499), reason="port 14499 in use")
def test_local_oneagent_endpoint_gets_no_gzip() -> None:
    with OTLPReceiver(port=14499) as receiver:
        handle = genai_observe.init(endpoint="http://localhost:14499/otlp", metrics=False, logs=False)
        one_call()
        handle.shutdown()
        (request,) = receiver.requests
        assert request.path == "/otlp/v1/traces"
        assert "content-encoding" not in request.headers


def test_shutdown_flushes_queued_telemetry_and_returns_within_timeout(otlp_receiver: OTLPReceiver) -> None:
    handle = start(otlp_receiver)
    for i in range(5):
        one_call(f"m{i}")
    assert otlp_receiver.requests == []  # batched: nothing sent from the app thread
    handle.shutdown()
    assert len(otlp_receiver.spans()) == 5
    # A hanging backend cannot hold shutdown past its timeout.
    otlp_receiver.clear()
    otlp_receiver.set_response("hang")
    handle = start(otlp_receiver, export_timeout=30)
    one_call()
    began = time.monotonic()
    genai_observe.shutdown(timeout=1)
    assert time.monotonic() - began < 2.5  # one deadline for all providers


def test_init_twice_is_idempotent(otlp_receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture) -> None:
    first = start(otlp_receiver, metrics=False, logs=False)
    second = start(otlp_receiver, metrics=False, logs=False)
    third = start(otlp_receiver, metrics=False, logs=False, profile="latest")
    assert first is second is third
    assert "init() called again with different settings" in caplog.text
    one_call()
    first.shutdown()
    assert len(otlp_receiver.spans()) == 1
    # After shutdown, init() sets up again.
    otlp_receiver.clear()
    again = start(otlp_receiver, metrics=False, logs=False)
    assert again is not first
    one_call()
    again.shutdown()
    assert len(otlp_receiver.spans()) == 1


def test_reuses_application_providers_when_set(otlp_receiver: OTLPReceiver) -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    app_provider = TracerProvider()
    exporter = InMemorySpanExporter()
    app_provider.add_span_processor(SimpleSpanProcessor(exporter))
    original = trace.get_tracer_provider
    try:
        trace.get_tracer_provider = lambda: app_provider  # type: ignore[assignment]
        handle = start(otlp_receiver)
        assert handle.tracer_provider is app_provider
        one_call()
        handle.shutdown()
    finally:
        trace.get_tracer_provider = original  # type: ignore[assignment]
    assert [s.name for s in exporter.get_finished_spans()] == ["chat m1"]
    assert otlp_receiver.spans() == []  # the app's provider exports; we add no exporter to it


_REUSE_SCRIPT = """
import json, sys
from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

spans, reader, logs = InMemorySpanExporter(), InMemoryMetricReader(), InMemoryLogRecordExporter()
tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
meter_provider = MeterProvider(metric_readers=[reader])
logger_provider = LoggerProvider()
logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
trace.set_tracer_provider(tracer_provider)
metrics.set_meter_provider(meter_provider)
_logs.set_logger_provider(logger_provider)

import genai_observe

handle = genai_observe.init(endpoint=sys.argv[1], capture_content="SPAN_AND_EVENT")
assert handle.tracer_provider is tracer_provider
assert handle.meter_provider is meter_provider
assert handle.logger_provider is logger_provider
with genai_observe.llm_call(provider="openai", model="reused") as call:
    call.set_response(content="x", input_tokens=1, output_tokens=1)
handle.force_flush()
data = reader.get_metrics_data()
names = sorted(m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics)
json.dump(
    {
        "spans": [s.name for s in spans.get_finished_spans()],
        "metrics": names,
        "logs": [r.log_record.event_name for r in logs.get_finished_logs()],
    },
    sys.stdout,
)
genai_observe.shutdown()
"""


def test_reuses_all_three_global_providers_the_app_set(otlp_receiver: OTLPReceiver) -> None:
    """Really set as globals (not faked): our telemetry flows through the app's own pipelines."""
    out = _run_script(_REUSE_SCRIPT, otlp_receiver)
    seen = json.loads(out)
    assert seen["spans"] == ["chat reused"]
    assert sc.METRIC_OPERATION_DURATION in seen["metrics"] and sc.METRIC_TOKEN_USAGE in seen["metrics"]
    assert seen["logs"] == [sc.EVENT_INFERENCE_DETAILS]
    assert otlp_receiver.requests == []  # we added no exporter to providers we did not build


def test_console_default_prints_one_line_per_operation(capfd: pytest.CaptureFixture[str]) -> None:
    handle = genai_observe.init()
    one_call()
    one_call("m9", fail=True)
    handle.shutdown()
    err = capfd.readouterr().err
    assert "nothing is being shipped" in err
    lines = [line for line in err.splitlines() if line.startswith("genai-observe: chat")]
    assert len(lines) == 2
    assert (
        "chat m1-2025 [openai]" in lines[0] and "tokens in=12 out=7" in lines[0] and lines[0].endswith("ok")
    )
    assert "error=TimeoutError" in lines[1]


def test_dynatrace_enrichment_files_reach_the_resource(
    otlp_receiver: OTLPReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    k8s = tmp_path / "dt_metadata.json"
    k8s.write_text(
        json.dumps({"k8s.pod.name": "pod-1", "dt.entity.kubernetes_cluster": "KUBERNETES_CLUSTER-1"})
    )
    host = tmp_path / "dt_host_metadata.json"
    host.write_text(json.dumps({"dt.entity.host": "HOST-42", "nested": {"ignored": True}}))
    process = tmp_path / "process.properties"
    process.write_text("dt.entity.process_group_instance=PROCESS_GROUP_INSTANCE-7\n# comment\n")
    magic = tmp_path / _resource.DT_MAGIC_FILE
    magic.write_text(str(process))
    monkeypatch.setattr(
        _resource, "DT_ENRICHMENT_FILES", (str(k8s), str(host), str(tmp_path / "missing.json"))
    )
    monkeypatch.chdir(tmp_path)  # the magic file is opened by its bare name
    handle = start(
        otlp_receiver,
        metrics=False,
        logs=False,
        resource_attributes={"team": "ai"},
        deployment_environment="prod",
        service_version="1.2.3",
    )
    one_call()
    handle.shutdown()
    resource = otlp_receiver.spans()[0].resource_attributes
    assert resource["k8s.pod.name"] == "pod-1"
    assert resource["dt.entity.host"] == "HOST-42"
    assert "nested" not in resource
    assert resource["dt.entity.process_group_instance"] == "PROCESS_GROUP_INSTANCE-7"
    assert resource["team"] == "ai"
    assert resource["deployment.environment.name"] == "prod"
    assert resource["service.version"] == "1.2.3"


def test_content_off_leaves_no_prompt_or_completion_on_the_wire(otlp_receiver: OTLPReceiver) -> None:
    handle = start(otlp_receiver, capture_content=False)
    one_call(prompt="secret-prompt-text")
    handle.shutdown()
    assert otlp_receiver.spans()
    for request in otlp_receiver.requests:
        assert b"secret-prompt-text" not in request.body
        assert b"It is a protocol" not in request.body


def test_queue_drops_are_counted_and_summarised(
    otlp_receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "2")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "60000")
    otlp_receiver.set_response("slow", delay=0.5)
    caplog.set_level(logging.WARNING)
    handle = start(otlp_receiver, metrics=False, logs=False)
    for i in range(40):
        one_call(f"m{i}")
    dropped = handle.stats()["dropped"]["traces"]
    genai_observe.shutdown(timeout=3)
    assert dropped > 0
    assert "Queue full" not in caplog.text  # the per-item SDK warning is replaced ...
    assert caplog.text.count("export queue full, dropped") == 1  # ... by one summary


def test_metric_points_dropped_on_a_full_queue_are_counted_and_reported(
    otlp_receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from genai_observe._core.metrics import METRICS

    caplog.set_level(logging.WARNING)
    handle = start(otlp_receiver, logs=False)
    monkeypatch.setattr(METRICS, "MAX_PENDING", 0)  # a worker that is hopelessly behind
    for i in range(5):
        one_call(f"m{i}")
    assert handle.stats()["dropped"]["metrics"] == 5
    genai_observe.shutdown(timeout=3)
    assert caplog.text.count("metric recording queue full, dropped 1 metrics item(s)") == 1  # rate-limited
    assert len(otlp_receiver.spans()) == 5  # spans are unaffected
    assert METRICS.on_drop is None  # a handle shut down is no longer told


def test_disabled_sets_nothing_up(otlp_receiver: OTLPReceiver) -> None:
    handle = start(otlp_receiver, disabled=True)
    one_call()
    assert not handle.enabled and handle.instrumented == ()
    handle.shutdown()
    assert otlp_receiver.requests == []


def test_env_only_configuration(otlp_receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DT_ENDPOINT", otlp_receiver.url)
    monkeypatch.setenv("DT_API_TOKEN", TOKEN)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=ml,cost.center=42%2C3")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "none")
    handle = genai_observe.init()
    one_call()
    handle.shutdown()
    request = otlp_receiver.requests_for("traces")[0]
    assert request.headers["authorization"] == f"Api-Token {TOKEN}"
    assert "content-encoding" not in request.headers
    resource = otlp_receiver.spans()[0].resource_attributes
    assert (resource["service.name"], resource["team"], resource["cost.center"]) == ("from-env", "ml", "42,3")
    assert os.environ["DT_API_TOKEN"] == TOKEN  # we never rewrite the environment


def test_console_respects_traces_off(capfd: pytest.CaptureFixture[str]) -> None:
    handle = genai_observe.init(traces=False)
    one_call()
    handle.shutdown()
    err = capfd.readouterr().err
    assert "genai-observe: chat" not in err and "nothing is being shipped" not in err


def test_manual_api_usage_counts_merge_and_bad_env_never_raises(
    monkeypatch: pytest.MonkeyPatch, otlp_receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    handle = start(otlp_receiver, metrics=False, logs=False)
    with genai_observe.llm_call(provider="acme", model="m") as call:
        call.set_response(input_tokens=5)
        call.set_response(output_tokens=9, content="done", finish_reason="stop")
    handle.shutdown()
    (span,) = otlp_receiver.spans()
    assert (span.attributes["gen_ai.usage.input_tokens"], span.attributes["gen_ai.usage.output_tokens"]) == (
        5,
        9,
    )
    # Without init(), a malformed variable must not make the recording call raise.
    monkeypatch.setenv("GENAI_OBSERVE_CAPTURE_CONTENT", "sometimes")
    with genai_observe.llm_call(provider="acme", model="m") as call:
        call.set_response(content="ok")
    assert "GENAI_OBSERVE_CAPTURE_CONTENT" in caplog.text


_FORK_SCRIPT = """
import os, sys, time
import genai_observe

genai_observe.init(endpoint=sys.argv[1], metric_export_interval_ms=600_000, logs=False)
with genai_observe.llm_call(provider="openai", model="in-parent") as call:
    call.set_response(content="x", input_tokens=1, output_tokens=1)
time.sleep(0.5)  # the metrics worker has handed the point to the SDK: it sits in the aggregation
children = []
for n in range(2):
    pid = os.fork()
    if pid == 0:
        with genai_observe.llm_call(provider="openai", model=f"worker-{n}") as call:
            call.set_response(content="x")
        genai_observe.shutdown()
        os._exit(0)
    children.append(pid)
for pid in children:
    assert os.waitpid(pid, 0)[1] == 0
genai_observe.shutdown()
"""


def _run_script(script: str, receiver: OTLPReceiver, *args: str) -> str:
    """Runs ``script`` in a fresh interpreter (forking, or setting the global providers, inside
    pytest's own process would leak into other tests); returns its stdout."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", script, receiver.url, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _durations_by_model(receiver: OTLPReceiver) -> dict[str, int]:
    counts: dict[str, int] = {}
    for metric in receiver.metrics(sc.METRIC_OPERATION_DURATION):
        for point in metric.data_points:
            model = point.attributes["gen_ai.request.model"]
            counts[model] = counts.get(model, 0) + (point.count or 0)
    return counts


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_children_do_not_export_the_parents_metrics(otlp_receiver: OTLPReceiver) -> None:
    """A point the parent recorded before forking is exported once, by the parent, not per child."""
    _run_script(_FORK_SCRIPT, otlp_receiver)
    assert _durations_by_model(otlp_receiver) == {"in-parent": 1, "worker-0": 1, "worker-1": 1}
    names = sorted(s.name for s in otlp_receiver.spans())
    assert names == ["chat in-parent", "chat worker-0", "chat worker-1"]


_MULTIPROCESSING_SCRIPT = """
import multiprocessing, sys
import genai_observe


def work(n):
    with genai_observe.llm_call(provider="openai", model=f"process-{n}") as call:
        call.set_response(content="x")


def pool_work(n):
    work(10 + n)
    return n


if __name__ == "__main__":
    genai_observe.init(endpoint=sys.argv[1], metric_export_interval_ms=600_000, logs=False)
    import multiprocessing  # after init(): the flush hook attaches on import as well
    fork = multiprocessing.get_context("fork")
    processes = [fork.Process(target=work, args=(n,)) for n in range(2)]
    for p in processes:
        p.start()
    for p in processes:
        p.join()
        assert p.exitcode == 0
    pool = fork.Pool(2)
    assert pool.map(pool_work, range(3)) == [0, 1, 2]
    pool.close()
    pool.join()
    genai_observe.shutdown()
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_started_multiprocessing_children_flush_on_exit(otlp_receiver: OTLPReceiver) -> None:
    """Process and Pool workers end with os._exit(); their calls still reach the backend, once."""
    _run_script(_MULTIPROCESSING_SCRIPT, otlp_receiver)
    expected = ["process-0", "process-1", "process-10", "process-11", "process-12"]
    assert sorted(s.name.removeprefix("chat ") for s in otlp_receiver.spans()) == expected
    assert _durations_by_model(otlp_receiver) == dict.fromkeys(expected, 1)


_DEFERRED_EXPORTERS_SCRIPT = """
import sys
import genai_observe

EXPORT_MODULES = ("requests", "opentelemetry.exporter.otlp.proto.http.trace_exporter",
                  "opentelemetry.exporter.otlp.proto.http.metric_exporter")
handle = genai_observe.init(endpoint=sys.argv[1], service_name="deferred", instrumentations=[])
print("after init:", ",".join(m for m in EXPORT_MODULES if m in sys.modules) or "none")
with genai_observe.llm_call(provider="openai", model="m") as call:
    call.set_response(content="x")
handle.force_flush()
print("after flush:", ",".join(m for m in EXPORT_MODULES if m in sys.modules) or "none")
genai_observe.shutdown()
"""


def test_exporters_are_built_on_first_export_not_in_init(otlp_receiver: OTLPReceiver) -> None:
    """init() leaves requests and the OTLP exporters unimported (a third of its time); the first
    export builds them, with the same endpoint, temporality and buckets."""
    out = _run_script(_DEFERRED_EXPORTERS_SCRIPT, otlp_receiver).splitlines()
    assert out[0] == "after init: none"
    assert "requests" in out[1] and "trace_exporter" in out[1] and "metric_exporter" in out[1]
    assert [s.name for s in otlp_receiver.spans()] == ["chat m"]
    (metric,) = otlp_receiver.metrics(sc.METRIC_OPERATION_DURATION)
    assert metric.kind == "histogram" and metric.temporality == DELTA
    (point,) = metric.data_points
    assert point.count == 1 and tuple(point.explicit_bounds) == sc.DURATION_BUCKETS


def test_resource_hash_is_computed_once_and_matches_the_sdks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The encoders group every span by resource: ours hashes once, equal to an SDK Resource."""
    from opentelemetry.sdk import resources

    from genai_observe._pipeline.settings import load_settings

    resource = _resource.build_resource(load_settings(service_name="svc"), enrichment={"team": "ai"})
    plain = resources.Resource(resource.attributes, resource.schema_url)
    assert resource == plain and hash(resource) == hash(plain)
    assert resource.attributes["service.name"] == "svc" and resource.attributes["team"] == "ai"
    calls: list[int] = []
    original = resources.Resource.__hash__
    monkeypatch.setattr(resources.Resource, "__hash__", lambda self: calls.append(1) or original(self))
    resource = _resource.build_resource(load_settings(service_name="svc"), enrichment={})
    assert len({hash(resource) for _ in range(5)}) == 1
    assert len(calls) == 1


_FORK_WHILE_BUILDING_SCRIPT = """
import gc, os, signal, sys, threading, time
import genai_observe
from genai_observe._pipeline import exporters
from genai_observe._pipeline.exporters import _Deferred

exporters.FORK_WAIT_S = 1.0
stuck = sys.argv[2] == "stuck"
genai_observe.init(endpoint=sys.argv[1], service_name="fork-lock", instrumentations=[])
deferred = [o for o in gc.get_objects() if isinstance(o, _Deferred)]
assert len(deferred) == 3, deferred  # spans, metrics, logs
done = threading.Event()
held = threading.Barrier(4)

def build(d):  # as if an export thread were building its exporter when the app forks
    with d._lock:
        held.wait()
        done.wait()

for d in deferred:
    threading.Thread(target=build, args=(d,), daemon=True).start()
held.wait()
if not stuck:
    threading.Timer(0.3, done.set).start()  # the builds end 0.3 s from now
start = time.monotonic()
pid = os.fork()
if pid == 0:
    signal.alarm(30)  # a hung child dies instead of hanging the test
    with genai_observe.llm_call(provider="openai", model="child") as call:
        call.set_response(content="x")
    genai_observe.shutdown()
    os._exit(0)
waited = time.monotonic() - start
done.set()
_, status = os.waitpid(pid, 0)
print(status, round(waited, 1))
genai_observe.shutdown()
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("build", ["ends", "stuck"])
def test_a_fork_waits_for_an_exporter_being_built_and_the_child_exports(
    otlp_receiver: OTLPReceiver, build: str
) -> None:
    """The fork waits for a build in progress (so the child never inherits the import locks a
    half-done import holds), at most FORK_WAIT_S per exporter; the child exports either way."""
    out = _run_script(_FORK_WHILE_BUILDING_SCRIPT, otlp_receiver, build)
    status, waited = out.split()
    assert status == "0"
    if build == "ends":
        assert 0.25 <= float(waited) < 1.0  # until the builds ended, not the full wait
    else:
        assert 2.5 <= float(waited) < 4.5  # three exporters, 1 s each at most
    assert [s.name for s in otlp_receiver.spans()] == ["chat child"]


def test_handle_shows_active_and_pending_instrumentations() -> None:
    """Only openai imported: openai is active, the others wait for their SDK's import."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import json, sys
        import genai_observe
        handle = genai_observe.init(instrumentations=["openai", "anthropic", "ollama"], traces=False)
        before = (handle.instrumented, handle.pending)
        import openai
        after = (handle.instrumented, handle.pending, handle.instrumentation_status())
        from genai_observe.instrumentation.openai import OpenAIInstrumentor
        OpenAIInstrumentor().uninstrument()  # anyone may; the handle must not claim it still
        removed = (handle.instrumented, handle.instrumentation_status()["openai"], repr(handle))
        print(json.dumps([before, after, removed]))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    before, after, removed = json.loads(done.stdout)
    assert before == [[], ["anthropic", "ollama", "openai"]]
    assert after == [
        ["openai"],
        ["anthropic", "ollama"],
        {"anthropic": "pending", "ollama": "pending", "openai": "active"},
    ]
    assert removed[:2] == [[], "removed"]
    assert "pending=['anthropic', 'ollama']" in removed[2]


def test_app_init_applies_its_settings_to_the_automatic_setup_in_place(
    otlp_receiver: OTLPReceiver, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """The zero-code bootstrap's console setup, then the app's init(endpoint=...): same handle and
    providers (they are the global ones), the app's endpoint, resource and content settings."""
    from genai_observe._pipeline.bootstrap import init_automatic

    auto = init_automatic()
    # handed out before the app's init() (the global provider in a real app; tests share one process)
    app_tracer = auto.tracer_provider.get_tracer("the-app")
    one_call("console-model")
    auto.force_flush()
    assert "console-model" in capfd.readouterr().err
    providers = (auto.tracer_provider, auto.meter_provider, auto.logger_provider)
    handle = start(otlp_receiver, capture_content="SPAN_AND_EVENT", deployment_environment="prod")
    assert (
        handle is auto
        and (handle.tracer_provider, handle.meter_provider, handle.logger_provider) == providers
    )
    assert "keeping the first setup" not in caplog.text
    one_call("exported-model")
    with app_tracer.start_as_current_span("app-span"):
        pass
    handle.shutdown()
    assert "exported-model" not in capfd.readouterr().err
    spans = {s.name: s for s in otlp_receiver.spans()}
    assert set(spans) == {"chat exported-model", "app-span"}
    for span in spans.values():
        assert span.resource_attributes["service.name"] == "svc-test"
        assert span.resource_attributes["deployment.environment.name"] == "prod"
    assert spans["chat exported-model"].attributes["gen_ai.prompt.0.content"] == "What is OTLP?"
    assert len(otlp_receiver.logs()) == 1
    points = [p for m in otlp_receiver.metrics(sc.METRIC_OPERATION_DURATION) for p in m.data_points]
    assert [p.attributes["gen_ai.request.model"] for p in points] == ["exported-model"]


def test_an_automatic_setup_gives_way_to_an_app_that_disables(otlp_receiver: OTLPReceiver) -> None:
    from genai_observe._pipeline.bootstrap import init_automatic

    auto = init_automatic(endpoint=otlp_receiver.url)
    handle = genai_observe.init(disabled=True)
    assert not handle.enabled and auto._closed and handle.instrumented == ()


def test_a_second_init_in_code_keeps_the_first_setup_but_content_off_always_applies(
    otlp_receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    first = start(otlp_receiver, capture_content="SPAN_AND_EVENT")
    one_call("with-content")
    second = genai_observe.init(capture_content=False, service_name="other", endpoint="http://127.0.0.1:9")
    assert second is first
    assert "content capture is now off" in caplog.text and "keeping the first setup" in caplog.text
    one_call("without-content")
    first.shutdown()
    spans = {s.name: s for s in otlp_receiver.spans()}
    assert set(spans) == {"chat with-content", "chat without-content"}  # still the first endpoint
    assert spans["chat with-content"].attributes["gen_ai.prompt.0.content"] == "What is OTLP?"
    after = spans["chat without-content"].attributes
    assert not [k for k in after if "content" in k and "filter" not in k], after
    assert spans["chat without-content"].resource_attributes["service.name"] == "svc-test"
    assert [e.attributes["gen_ai.request.model"] for e in otlp_receiver.logs()] == ["with-content"]


_SHUTDOWN_ZERO_SCRIPT = """
import sys
import genai_observe
handle = genai_observe.init(endpoint=sys.argv[1], service_name="once")
with genai_observe.llm_call(provider="openai", model="m") as call:
    call.set_response(content="x")
handle.shutdown(timeout=0)
"""


def test_shutdown_runs_once_per_provider_and_silently(otlp_receiver: OTLPReceiver) -> None:
    """shutdown(timeout=0) leaves the providers' shutdown running at exit; the SDK's own atexit
    hook used to call it again then ("shutdown can only be called once", in some runs)."""
    handle = start(otlp_receiver)
    for provider in (handle.tracer_provider, handle.meter_provider, handle.logger_provider):
        # ours is the only exit hook (the SDK names the attribute differently per provider)
        assert getattr(provider, "_atexit_handler", None) is None
        assert getattr(provider, "_at_exit_handler", None) is None
    handle.shutdown()
    otlp_receiver.set_response("hang")  # the final export is still running when the process exits
    for _ in range(4):
        done = subprocess.run(
            [sys.executable, "-c", _SHUTDOWN_ZERO_SCRIPT, otlp_receiver.url],
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0 and done.stderr == "", done.stderr


_UNREACHABLE_SCRIPT = """
import atexit, sys, time
end = []
atexit.register(lambda: print(f"{time.monotonic() - end[0]:.2f}", flush=True))  # runs last
import genai_observe
genai_observe.init(endpoint=sys.argv[1], service_name="gone", shutdown_timeout=float(sys.argv[2]))
with genai_observe.llm_call(provider="openai", model="m") as call:
    call.set_response(content="x")
end.append(time.monotonic())
"""


@pytest.mark.parametrize("backend", ["refused", "hang"])
def test_exit_with_an_unreachable_backend_is_bounded_and_says_so_once(
    backend: str, otlp_receiver: OTLPReceiver
) -> None:
    """Retries with backoff would hold the exit and print a line per retry; the exit takes at most
    shutdown_timeout and prints one line."""
    if backend == "refused":
        with socket.socket() as sock:  # a port nothing listens on
            sock.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    else:
        otlp_receiver.set_response("hang")
        url = otlp_receiver.url
    done = subprocess.run(
        [sys.executable, "-c", _UNREACHABLE_SCRIPT, url, "2"],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) < 2.5  # the shutdown timeout, plus the interpreter's own exit
    (line,) = done.stderr.splitlines()
    assert line.startswith("genai_observe: ")
    assert "Transient error" not in done.stderr and "Failed to export" not in done.stderr
    if backend == "refused":
        assert "the final export of metrics, traces failed" in line and "Connection refused" in line
    else:
        assert "shutdown did not finish within 2.0s" in line


def test_failing_exports_are_summarised_in_one_rate_limited_line(caplog: pytest.LogCaptureFixture) -> None:
    """A backend down while the app runs: one warning of ours, not one per retry and batch."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    handle = genai_observe.init(endpoint=url, export_timeout=1.5, metrics=False, logs=False)
    with caplog.at_level(logging.INFO):
        for i in range(3):
            one_call(f"m{i}")
            handle.force_flush(timeout=5)  # each batch: a retry, then given up
    lines = [r.getMessage() for r in caplog.records]
    assert not [m for m in lines if "Transient error" in m or "Failed to export" in m], lines
    (line,) = [m for m in lines if m.startswith("genai_observe:")]
    assert line.startswith("genai_observe: 1 export(s) to the OTLP endpoint failed and were dropped")
    assert "Connection refused" in line
    genai_observe.shutdown(timeout=0)
