"""Runs the scripts in examples/ the way a user would: a fresh interpreter configured only through
the environment, talking to the local OpenAI-compatible server and shipping to the local OTLP
receiver."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from genai_observe._core import semconv as sc
from tests.rig.openai_server import DEFAULT_USAGE, OpenAIMockServer
from tests.rig.otlp_receiver import OTLPReceiver, SpanView

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# Settings a developer's shell may carry that would point the examples elsewhere.
_FOREIGN = ("OTEL_", "DT_", "GENAI_OBSERVE_", "TRACELOOP_", "OPENAI_", "AZURE_OPENAI_", "NVIDIA_", "NIM_")


def run_example(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN)}
    # Never send traffic for 127.0.0.1 through a proxy the environment may configure.
    clean.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    clean.update(env)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr}"
    return done


def by_name(spans: list[SpanView]) -> list[str]:
    return sorted(s.name for s in spans)


def test_openai_chat(openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver) -> None:
    done = run_example(
        "openai_chat.py",
        OPENAI_BASE_URL=openai_server.base_url,
        OPENAI_API_KEY="test",
        DT_ENDPOINT=otlp_receiver.url,
    )
    assert "chat:" in done.stdout and "embedding size:" in done.stdout and "async:" in done.stdout
    spans = otlp_receiver.spans()
    assert by_name(spans) == ["chat gpt-4o-mini"] * 3 + ["embeddings text-embedding-3-small"]
    assert {s.attributes[sc.GEN_AI_PROVIDER_NAME] for s in spans} == {"openai"}
    assert {s.resource_attributes["service.name"] for s in spans} == {"openai-chat-example"}
    (streamed,) = [s for s in spans if s.attributes.get(sc.GEN_AI_REQUEST_STREAM)]
    assert streamed.attributes[sc.STREAM_END_REASON] == "exhausted"
    assert streamed.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == DEFAULT_USAGE["prompt_tokens"]
    assert streamed.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == DEFAULT_USAGE["completion_tokens"]
    durations = otlp_receiver.metrics(sc.METRIC_OPERATION_DURATION)
    assert sum(p.count or 0 for m in durations for p in m.data_points) == 4
    assert otlp_receiver.metrics(sc.METRIC_TIME_TO_FIRST_CHUNK)


def test_azure_openai(openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver) -> None:
    openai_server.script(model="gpt-4o-mini-2024-07-18", times=None)  # the model behind the deployment
    done = run_example(
        "azure_openai.py",
        AZURE_OPENAI_ENDPOINT=openai_server.azure_endpoint,
        AZURE_OPENAI_API_KEY="test",
        OPENAI_API_VERSION="2024-06-01",
        AZURE_OPENAI_DEPLOYMENT="example-deployment",
        DT_ENDPOINT=otlp_receiver.url,
    )
    assert "chat (gpt-4o-mini-2024-07-18):" in done.stdout
    assert [r.deployment for r in openai_server.requests] == ["example-deployment"] * 2
    spans = otlp_receiver.spans()
    assert by_name(spans) == ["chat example-deployment"] * 2
    for span in spans:
        a = span.attributes
        assert (a[sc.GEN_AI_PROVIDER_NAME], a[sc.GEN_AI_SYSTEM]) == ("azure.ai.openai", "openai")
        assert a[sc.GEN_AI_REQUEST_MODEL] == "example-deployment"
        assert a[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
        assert a[sc.GEN_AI_OPENAI_API_VERSION] == "2024-06-01"
        assert sc.GEN_AI_PROMPT_FILTER_RESULTS in a
        assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == DEFAULT_USAGE["prompt_tokens"]


def test_nvidia_nim(openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver) -> None:
    done = run_example(
        "nvidia_nim.py",
        NIM_BASE_URL=openai_server.base_url,
        NVIDIA_API_KEY="test",
        GENAI_OBSERVE_NIM_HOSTS=f"127.0.0.1:{openai_server.port}",
        DT_ENDPOINT=otlp_receiver.url,
    )
    assert "chat:" in done.stdout and "stream:" in done.stdout
    spans = otlp_receiver.spans()
    assert by_name(spans) == ["chat meta/llama-3.1-8b-instruct"] * 2
    for span in spans:
        a = span.attributes
        assert (a[sc.GEN_AI_PROVIDER_NAME], a[sc.GEN_AI_SYSTEM]) == ("nvidia_nim", "nvidia_nim")
        assert (a[sc.SERVER_ADDRESS], a[sc.SERVER_PORT]) == ("127.0.0.1", openai_server.port)
        assert a[sc.GEN_AI_REQUEST_MAX_TOKENS] == 100
        assert a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == DEFAULT_USAGE["completion_tokens"]


def test_nim_host_must_be_listed_for_self_hosted(
    openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver
) -> None:
    run_example(
        "nvidia_nim.py",
        NIM_BASE_URL=openai_server.base_url,
        NVIDIA_API_KEY="test",
        DT_ENDPOINT=otlp_receiver.url,
    )
    assert {s.attributes[sc.GEN_AI_PROVIDER_NAME] for s in otlp_receiver.spans()} == {"openai"}


def test_demo_prints_console_lines() -> None:
    done = run_example("demo.py")
    assert "error reached the caller unchanged: NotFoundError" in done.stdout
    err = done.stderr
    assert "no OTLP endpoint configured" in err
    assert "genai-observe: chat gpt-4o-mini [openai]  tokens in=14 out=5" in err
    assert "stream  ok" in err
    assert "genai-observe: embeddings text-embedding-3-small [openai]" in err
    assert "genai-observe: chat missing-model [openai]" in err and "error=NotFoundError" in err
