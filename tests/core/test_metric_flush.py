"""Standard flush semantics: once a call has returned (or its stream has ended), every collection of
the MeterProvider it records into includes its points.

Points are recorded on a background worker (see ``MetricsWorker``); these tests read the metrics
right after each call, with no sleep and no call into our own code, through the SDK's own paths:
``InMemoryMetricReader.get_metrics_data()``, ``MeterProvider.force_flush()`` and ``shutdown()`` with a
``PeriodicExportingMetricReader``, ``init()``'s pipeline, and the stock ``opentelemetry-instrument``.
Before the flush hook, the in-memory reads found no ``gen_ai.*`` points at all.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import genai_observe
from genai_observe._core import semconv as sc
from genai_observe._pipeline.exporters import DELTA_TEMPORALITY
from tests.conftest import Telemetry
from tests.reliability._providers import (
    ANTHROPIC_MODEL,
    BEDROCK_CLAUDE,
    BEDROCK_MODEL,
    INSTRUMENTATIONS,
    OLLAMA_MODEL,
    SERVERS,
    anthropic_client,
    bedrock_client,
    instrumented,
    llm_spans,
    ollama_client,
    openai_chain,
    openai_client,
)
from tests.rig.bedrock_server import Reply as BedrockReply
from tests.rig.openai_server import OpenAIMockServer
from tests.rig.otlp_receiver import OTLPReceiver
from tests.zerocode.test_cli import BIN, WRAPPER, _env, _run

MESSAGES = [{"role": "user", "content": "hello"}]
CALLS = 3  # calls per case, each read on its own right after it returned


def _drain_stream(stream: Any) -> None:
    for _ in stream:
        pass


async def _adrain_stream(stream: Any) -> None:
    async for _ in stream:
        pass


def _invoke_body() -> str:
    return json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50, "messages": MESSAGES})


# --- one call of each kind: (server) -> None, returning once the call (or stream) has ended ---------


def _openai(server: Any) -> None:
    openai_client(server).chat.completions.create(model="m", messages=MESSAGES)


def _openai_stream(server: Any) -> None:
    _drain_stream(
        openai_client(server).chat.completions.create(
            model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )


def _openai_embeddings(server: Any) -> None:
    openai_client(server).embeddings.create(model="e", input="hello")


def _openai_responses(server: Any) -> None:
    openai_client(server).responses.create(model="m", input="hello")


async def _openai_async(server: Any) -> None:
    await openai_client(server, is_async=True).chat.completions.create(model="m", messages=MESSAGES)


async def _openai_async_stream(server: Any) -> None:
    client = openai_client(server, is_async=True)
    await _adrain_stream(
        await client.chat.completions.create(
            model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )


def _anthropic_args() -> dict[str, Any]:
    return {"model": ANTHROPIC_MODEL, "max_tokens": 50, "messages": MESSAGES}


def _anthropic(server: Any) -> None:
    anthropic_client(server).messages.create(**_anthropic_args())


def _anthropic_stream(server: Any) -> None:
    _drain_stream(anthropic_client(server).messages.create(**_anthropic_args(), stream=True))


async def _anthropic_async(server: Any) -> None:
    await anthropic_client(server, is_async=True).messages.create(**_anthropic_args())


async def _anthropic_async_stream(server: Any) -> None:
    client = anthropic_client(server, is_async=True)
    await _adrain_stream(await client.messages.create(**_anthropic_args(), stream=True))


def _converse(server: Any) -> None:
    server.script(BedrockReply(text="hi there"))
    bedrock_client(server).converse(
        modelId=BEDROCK_MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}]
    )


def _converse_stream(server: Any) -> None:
    server.script(BedrockReply(text="hi there"))
    response = bedrock_client(server).converse_stream(
        modelId=BEDROCK_MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}]
    )
    _drain_stream(response["stream"])


def _invoke(server: Any) -> None:
    server.script(BedrockReply(text="hi there"))
    response = bedrock_client(server).invoke_model(modelId=BEDROCK_CLAUDE, body=_invoke_body())
    response["body"].read()


def _invoke_stream(server: Any) -> None:
    server.script(BedrockReply(text="hi there"))
    response = bedrock_client(server).invoke_model_with_response_stream(
        modelId=BEDROCK_CLAUDE, body=_invoke_body()
    )
    _drain_stream(response["body"])


def _ollama(server: Any) -> None:
    ollama_client(server).chat(model=OLLAMA_MODEL, messages=MESSAGES)


def _ollama_stream(server: Any) -> None:
    _drain_stream(ollama_client(server).chat(model=OLLAMA_MODEL, messages=MESSAGES, stream=True))


async def _ollama_async(server: Any) -> None:
    await ollama_client(server, is_async=True).chat(model=OLLAMA_MODEL, messages=MESSAGES)


async def _ollama_async_stream(server: Any) -> None:
    client = ollama_client(server, is_async=True)
    await _adrain_stream(await client.chat(model=OLLAMA_MODEL, messages=MESSAGES, stream=True))


def _chain(server: Any) -> None:
    openai_chain(server.base_url).invoke({"q": "hello"})


def _chain_stream(server: Any) -> None:
    _drain_stream(openai_chain(server.base_url, stream_usage=True).stream({"q": "hello"}))


async def _chain_async(server: Any) -> None:
    await openai_chain(server.base_url).ainvoke({"q": "hello"})


async def _chain_async_stream(server: Any) -> None:
    await _adrain_stream(openai_chain(server.base_url, stream_usage=True).astream({"q": "hello"}))


@dataclass(frozen=True)
class Case:
    name: str
    provider: str
    call: Callable[[Any], Any]
    stream: bool = False
    tokens: bool = True  # the call reports token usage

    @property
    def is_async(self) -> bool:
        return asyncio.iscoroutinefunction(self.call)


CASES = [
    Case("openai-chat", "openai", _openai),
    Case("openai-chat-stream", "openai", _openai_stream, stream=True),
    Case("openai-chat-async", "openai", _openai_async),
    Case("openai-chat-async-stream", "openai", _openai_async_stream, stream=True),
    Case("openai-embeddings", "openai", _openai_embeddings),
    Case("openai-responses", "openai", _openai_responses),
    Case("anthropic", "anthropic", _anthropic),
    Case("anthropic-stream", "anthropic", _anthropic_stream, stream=True),
    Case("anthropic-async", "anthropic", _anthropic_async),
    Case("anthropic-async-stream", "anthropic", _anthropic_async_stream, stream=True),
    Case("bedrock-converse", "bedrock", _converse),
    Case("bedrock-converse-stream", "bedrock", _converse_stream, stream=True),
    Case("bedrock-invoke", "bedrock", _invoke),
    Case("bedrock-invoke-stream", "bedrock", _invoke_stream, stream=True),
    Case("ollama", "ollama", _ollama),
    Case("ollama-stream", "ollama", _ollama_stream, stream=True),
    Case("ollama-async", "ollama", _ollama_async),
    Case("ollama-async-stream", "ollama", _ollama_async_stream, stream=True),
    Case("langchain", "langchain", _chain),
    Case("langchain-stream", "langchain", _chain_stream, stream=True),
    Case("langchain-async", "langchain", _chain_async),
    Case("langchain-async-stream", "langchain", _chain_async_stream, stream=True),
]


def _points(data: MetricsData | None) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    if data is None:
        return out
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                out.setdefault(metric.name, []).extend(metric.data.data_points)
    return out


def _token_sum(points: dict[str, list[Any]], token_type: str) -> int:
    return sum(
        int(p.sum)
        for p in points.get(sc.METRIC_TOKEN_USAGE, [])
        if p.attributes.get(sc.GEN_AI_TOKEN_TYPE) == token_type
    )


def _count(points: dict[str, list[Any]], name: str) -> int:
    return sum(p.count for p in points.get(name, []))


def _check_one_call(case: Case, points: dict[str, list[Any]], span: Any) -> None:
    """The points of exactly the one call that has just returned, agreeing with its span."""
    assert _count(points, sc.METRIC_OPERATION_DURATION) == 1, (case.name, sorted(points))
    attrs = dict(span.attributes or {})
    if case.tokens:
        assert attrs.get(sc.GEN_AI_USAGE_INPUT_TOKENS), attrs  # the rigs always report usage
        assert _token_sum(points, sc.TOKEN_TYPE_INPUT) == attrs[sc.GEN_AI_USAGE_INPUT_TOKENS]
        if sc.GEN_AI_USAGE_OUTPUT_TOKENS in attrs:
            assert _token_sum(points, sc.TOKEN_TYPE_OUTPUT) == attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS]
    if case.stream:
        assert _count(points, sc.METRIC_TIME_TO_FIRST_CHUNK) == 1


@pytest.fixture
def server_for(request: pytest.FixtureRequest) -> Callable[[str], Any]:
    return lambda provider: request.getfixturevalue(SERVERS[provider])


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_in_memory_reader_sees_each_call_at_once(
    case: Case, server_for: Callable[[str], Any], telemetry: Telemetry
) -> None:
    """A user-owned MeterProvider with an InMemoryMetricReader, read right after each call."""
    server = server_for(case.provider)
    with instrumented(telemetry, *INSTRUMENTATIONS[case.provider]):
        for n in range(CALLS):
            if case.is_async:
                asyncio.run(case.call(server))
            else:
                case.call(server)
            points = _points(telemetry.metric_reader.get_metrics_data())
            spans = llm_spans(telemetry)
            assert len(spans) == n + 1, [s.name for s in spans]
            _check_one_call(case, points, spans[-1])


class _Collecting(MetricExporter):
    """Keeps what each export got, as an exporter to a backend would send it."""

    def __init__(self) -> None:
        super().__init__(preferred_temporality=dict(DELTA_TEMPORALITY))
        self.exports: list[MetricsData] = []

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        self.exports.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


@pytest.fixture
def periodic() -> Iterator[tuple[MeterProvider, TracerProvider, _Collecting, InMemorySpanExporter]]:
    exporter = _Collecting()
    # An interval far beyond the test: only force_flush() and shutdown() collect.
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    meter_provider = MeterProvider(metric_readers=[reader])
    yield meter_provider, tracer_provider, exporter, spans
    meter_provider.shutdown()
    tracer_provider.shutdown()


PERIODIC_CASES = [c for c in CASES if c.provider == "openai" and not c.is_async] + [
    c for c in CASES if c.name in ("anthropic-stream", "bedrock-converse-stream", "ollama-stream")
]


@pytest.mark.parametrize("case", PERIODIC_CASES, ids=lambda c: c.name)
def test_force_flush_and_shutdown_export_each_call(
    case: Case,
    server_for: Callable[[str], Any],
    periodic: tuple[MeterProvider, TracerProvider, _Collecting, InMemorySpanExporter],
) -> None:
    """A PeriodicExportingMetricReader: force_flush() after a call exports that call; so does
    the final collection of shutdown()."""
    meter_provider, tracer_provider, exporter, spans = periodic
    server = server_for(case.provider)
    telemetry = Telemetry(tracer_provider, meter_provider, None, spans, None, None)  # type: ignore[arg-type]
    with instrumented(telemetry, *INSTRUMENTATIONS[case.provider]):
        case.call(server)
        assert meter_provider.force_flush()
        assert len(exporter.exports) == 1
        _check_one_call(case, _points(exporter.exports[0]), llm_spans(telemetry)[-1])
        case.call(server)
        meter_provider.shutdown()
    assert len(exporter.exports) == 2
    _check_one_call(case, _points(exporter.exports[1]), llm_spans(telemetry)[-1])


def test_worker_mid_record_is_waited_for(telemetry: Telemetry, openai_server: OpenAIMockServer) -> None:
    """A point the worker thread has taken off the queue but not yet recorded is in the
    collection: the collection waits for it instead of reading around it."""
    import threading

    from genai_observe._core import metrics as _metrics
    from genai_observe._core import recorder as _recorder

    taken = threading.Event()
    release = threading.Event()
    original = _recorder.Recorder._record_metrics

    def slow(self: Any, *args: Any) -> None:
        taken.set()
        release.wait(5)
        original(self, *args)

    with instrumented(telemetry, "openai"):
        _metrics.METRICS.drain()  # nothing of earlier tests pending
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(_recorder.Recorder, "_record_metrics", slow)
            _openai(openai_server)
            worker = threading.Thread(target=_metrics.METRICS.drain)
            worker.start()  # stands in for the worker thread's own drain
            assert taken.wait(5)
            threading.Timer(0.2, release.set).start()
            points = _points(telemetry.metric_reader.get_metrics_data())
            worker.join(5)
    assert _count(points, sc.METRIC_OPERATION_DURATION) == 1


def test_init_pipeline_force_flush_exports_the_call(
    openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver
) -> None:
    """After init(): the SDK MeterProvider's own force_flush() right after a call exports it (in a
    fresh process that is the global one: tests/core/test_metric_flush.py's zero-code cases)."""
    handle = genai_observe.init(endpoint=otlp_receiver.url, metric_export_interval_ms=3_600_000)
    assert handle.enabled
    _openai(openai_server)
    handle.meter_provider.force_flush()  # the SDK's, not Handle.force_flush()
    durations = otlp_receiver.metrics(sc.METRIC_OPERATION_DURATION)
    assert sum(p.count for m in durations for p in m.data_points) == 1


FLUSH_THEN_DIE = """
import os
import openai
from opentelemetry import metrics, trace
client = openai.OpenAI(max_retries=0)
client.chat.completions.create(model="flush-model", messages=[{"role": "user", "content": "hi"}])
metrics.get_meter_provider().force_flush()
trace.get_tracer_provider().force_flush()
os._exit(0)  # a process frozen or killed right after its flush: no atexit, no worker
"""


@pytest.mark.parametrize("launcher", ["opentelemetry-instrument", "genai-observe-instrument"])
def test_zero_code_flush_then_exit(
    launcher: str, tmp_path: Path, openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver
) -> None:
    """Under the stock opentelemetry-instrument (our entry points) and our wrapper: the app's own
    force_flush() exports the call even when the process then dies without any exit hook."""
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent(FLUSH_THEN_DIE))
    env = _env(
        openai_server,
        DT_ENDPOINT=otlp_receiver.url,
        OTEL_METRIC_EXPORT_INTERVAL="3600000",
        OTEL_PYTHON_CONFIGURATOR="genai_observe",
        OTEL_PYTHON_DISTRO="genai_observe",
    )
    command: Sequence[str] = (
        [str(BIN / "opentelemetry-instrument"), sys.executable, str(app)]
        if launcher == "opentelemetry-instrument"
        else [WRAPPER, sys.executable, str(app)]
    )
    done = _run(list(command), env, app.parent)
    assert done.returncode == 0, done.stderr
    assert [s.name for s in otlp_receiver.spans()] == ["chat flush-model"]
    durations = otlp_receiver.metrics(sc.METRIC_OPERATION_DURATION)
    assert sum(p.count for m in durations for p in m.data_points) == 1, os.linesep.join(
        m.name for m in otlp_receiver.metrics()
    )
