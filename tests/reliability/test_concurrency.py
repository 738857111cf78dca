"""Many threads and many asyncio tasks calling every provider at once: each LLM span has its own
request's parent, and no span crosses requests.

Each request is an application span (``request-N``) that calls OpenAI, Anthropic, Bedrock, Ollama
and two LangChain chains (over ChatOpenAI, and over a fake chat model whose run is the LLM span),
streamed and not, against the local servers of tests/rig. Every model name carries the request's
tag, so a span that landed under another request's parent is caught by its model as well as by its
trace.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan

from genai_observe._core import semconv as sc
from tests.conftest import Telemetry
from tests.rig.bedrock_server import BedrockMockServer

from ._providers import (
    PROVIDERS,
    ancestry,
    anthropic_client,
    attrs,
    bedrock_client,
    count_spans,
    fake_chain,
    instrumented,
    llm_spans,
    ollama_client,
    openai_chain,
    openai_client,
)

MESSAGES = [{"role": "user", "content": "hello"}]
THREADS = 8
TASKS = 16
ROUNDS = 2
# LLM spans per round of one request: openai 2, anthropic 2, bedrock 2, ollama 2, the ChatOpenAI
# chain 2 (its openai spans), the fake-model chain 1.
PER_ROUND = 11


def tag(n: int) -> str:
    return f"r{n:02d}"


@pytest.fixture
def rigs(
    openai_server: Any,
    anthropic_server: Any,
    bedrock_server: BedrockMockServer,
    ollama_server: Any,
    aws_env: None,
) -> dict[str, Any]:
    return {
        "openai": openai_server,
        "anthropic": anthropic_server,
        "bedrock": bedrock_server,
        "ollama": ollama_server,
    }


@pytest.fixture
def all_instrumented(telemetry: Telemetry) -> Iterator[None]:
    with instrumented(telemetry, *PROVIDERS):
        yield


def _converse_args(n: int) -> dict[str, Any]:
    return {
        "modelId": f"amazon.nova-{tag(n)}-v1:0",
        "messages": [{"role": "user", "content": [{"text": "hi"}]}],
    }


def _one_round_sync(rigs: dict[str, Any], clients: dict[str, Any], n: int) -> None:
    model = f"gpt-{tag(n)}"
    clients["openai"].chat.completions.create(model=model, messages=MESSAGES)
    for _ in clients["openai"].chat.completions.create(model=model, messages=MESSAGES, stream=True):
        pass
    args = {"model": f"claude-{tag(n)}", "max_tokens": 20, "messages": MESSAGES}
    clients["anthropic"].messages.create(**args)
    for _ in clients["anthropic"].messages.create(**args, stream=True):
        pass
    clients["bedrock"].converse(**_converse_args(n))
    for _ in clients["bedrock"].converse_stream(**_converse_args(n))["stream"]:
        pass
    clients["ollama"].chat(model=f"llama-{tag(n)}", messages=MESSAGES, stream=False)
    for _ in clients["ollama"].chat(model=f"llama-{tag(n)}", messages=MESSAGES, stream=True):
        pass
    chain = clients["chain"]
    chain.invoke({"q": "hello"})
    for _ in chain.stream({"q": "hello"}):
        pass
    clients["fake"].invoke({"q": "hello"})


def _check_requests(telemetry: Telemetry, parents: dict[int, int], rounds: int) -> None:
    spans = telemetry.spans()
    by_id = {s.context.span_id: s for s in spans}
    roots = {s.context.span_id: s for s in spans if s.parent is None}
    assert set(roots) == set(parents.values()), sorted(s.name for s in roots.values())
    request_of_root = {span_id: n for n, span_id in parents.items()}
    per_request: dict[int, list[ReadableSpan]] = {n: [] for n in parents}
    for span in llm_spans(telemetry):
        chain = ancestry(span, spans)
        assert chain and chain[-1].parent is None, span.name  # every ancestor was exported
        n = request_of_root[chain[-1].context.span_id]
        assert span.context.trace_id == roots[parents[n]].context.trace_id
        per_request[n].append(span)
        model = attrs(span).get(sc.GEN_AI_REQUEST_MODEL)
        if model is not None:  # the fake chat model has no model name
            assert tag(n) in str(model), (span.name, n)  # the span stayed with its request
        parent = by_id[span.parent.span_id] if span.parent else None
        provider = attrs(span)[sc.GEN_AI_PROVIDER_NAME]
        if provider == sc.PROVIDER_LANGCHAIN:
            assert parent is not None and parent.name == "RunnableSequence.workflow"
        elif str(model).startswith(f"gpt-lc-{tag(n)}"):
            assert parent is not None and parent.name == "ChatOpenAI.task"
            assert ancestry(parent, spans)[0].name == "RunnableSequence.workflow"
        else:
            assert parent is roots[parents[n]], (span.name, parent.name if parent else None)
    for n, found in per_request.items():
        assert len(found) == PER_ROUND * rounds, (n, sorted(s.name for s in found))
    assert trace.get_current_span().get_span_context().is_valid is False  # nothing leaked out


@pytest.mark.usefixtures("all_instrumented")
def test_threads_keep_their_own_parents(rigs: dict[str, Any], telemetry: Telemetry) -> None:
    tracer = telemetry.tracer_provider.get_tracer("app")
    counter = count_spans(telemetry)
    parents: dict[int, int] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def request(n: int) -> None:
        try:
            clients = {
                "openai": openai_client(rigs["openai"]),
                "anthropic": anthropic_client(rigs["anthropic"]),
                "bedrock": bedrock_client(rigs["bedrock"]),
                "ollama": ollama_client(rigs["ollama"]),
                "chain": openai_chain(rigs["openai"].base_url, model=f"gpt-lc-{tag(n)}"),
                "fake": fake_chain(f"answer {tag(n)}"),
            }
            barrier.wait(timeout=30)  # all threads call at once
            with tracer.start_as_current_span(f"request-{n}") as span:
                parents[n] = span.get_span_context().span_id
                for _ in range(ROUNDS):
                    _one_round_sync(rigs, clients, n)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=request, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert not any(t.is_alive() for t in threads)
    _check_requests(telemetry, parents, ROUNDS)
    assert counter.open() == []


@pytest.mark.usefixtures("all_instrumented")
def test_asyncio_tasks_keep_their_own_parents(rigs: dict[str, Any], telemetry: Telemetry) -> None:
    tracer = telemetry.tracer_provider.get_tracer("app")
    counter = count_spans(telemetry)
    parents: dict[int, int] = {}
    bedrock = bedrock_client(rigs["bedrock"])  # no async client: called in worker threads

    async def request(clients: dict[str, Any], n: int) -> None:
        with tracer.start_as_current_span(f"request-{n}") as span:
            parents[n] = span.get_span_context().span_id
            for _ in range(ROUNDS):
                model = f"gpt-{tag(n)}"
                await clients["openai"].chat.completions.create(model=model, messages=MESSAGES)
                async for _ in await clients["openai"].chat.completions.create(
                    model=model, messages=MESSAGES, stream=True
                ):
                    await asyncio.sleep(0)  # interleave with the other tasks mid-stream
                args = {"model": f"claude-{tag(n)}", "max_tokens": 20, "messages": MESSAGES}
                await clients["anthropic"].messages.create(**args)
                async for _ in await clients["anthropic"].messages.create(**args, stream=True):
                    await asyncio.sleep(0)
                await asyncio.to_thread(bedrock.converse, **_converse_args(n))
                response = await asyncio.to_thread(bedrock.converse_stream, **_converse_args(n))
                await asyncio.to_thread(list, response["stream"])
                await clients["ollama"].chat(model=f"llama-{tag(n)}", messages=MESSAGES, stream=False)
                async for _ in await clients["ollama"].chat(
                    model=f"llama-{tag(n)}", messages=MESSAGES, stream=True
                ):
                    await asyncio.sleep(0)
                chain = clients["chains"][n]
                await chain.ainvoke({"q": "hello"})
                async for _ in chain.astream({"q": "hello"}):
                    await asyncio.sleep(0)
                await clients["fakes"][n].ainvoke({"q": "hello"})

    async def main() -> None:
        clients = {
            "openai": openai_client(rigs["openai"], is_async=True),
            "anthropic": anthropic_client(rigs["anthropic"], is_async=True),
            "ollama": ollama_client(rigs["ollama"], is_async=True),
            "chains": [openai_chain(rigs["openai"].base_url, model=f"gpt-lc-{tag(n)}") for n in range(TASKS)],
            "fakes": [fake_chain(f"answer {tag(n)}") for n in range(TASKS)],
        }
        try:
            await asyncio.gather(*(request(clients, n) for n in range(TASKS)))
        finally:
            await clients["openai"].close()
            await clients["anthropic"].close()
            await clients["ollama"]._client.aclose()

    asyncio.run(main())
    _check_requests(telemetry, parents, ROUNDS)
    assert counter.open() == []
