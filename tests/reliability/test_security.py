"""Secrets stay secret; with content capture off no prompt or completion text leaves the process.

Every instrumented provider runs, through its real SDK against its local server (tests/rig):
OpenAI, Anthropic, Bedrock, Ollama, LangChain (a chain over ChatOpenAI, and a chain whose fake chat
model run is itself the LLM span) and the manual API. Each provider gets its own prompt and
completion marker, so a scan that finds no marker is known to have looked at that provider's data:
with content on, the same scan must find every marker.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import pytest

import genai_observe
from tests.rig.bedrock_server import BedrockMockServer
from tests.rig.bedrock_server import Reply as BedrockReply
from tests.rig.otlp_receiver import OTLPReceiver

from ._providers import (
    ANTHROPIC_MODEL,
    BEDROCK_CLAUDE,
    BEDROCK_MODEL,
    OLLAMA_MODEL,
    anthropic_client,
    bedrock_client,
    fake_chain,
    ollama_client,
    openai_chain,
    openai_client,
)

TOKEN = "dt0c01.SECURITYTESTTOKEN0000000.SECRETPART0000000000000000000000000000000000000000000000000000000"
KEYS = {
    "openai": "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789",
    "anthropic": "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789",
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "bearer": "Bearer abcdefghijklmnopqrstuvwxyz012345",
    "dynatrace": "dt0c01.ABCDEFGHIJKLMNOPQRSTUVWX.ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
}
# Everything that records LLM calls; "langchain" is a chain over ChatOpenAI (the openai span is the
# LLM span, LangChain adds step spans), "langchain-model" a chain whose model run is the LLM span.
SOURCES = ("openai", "anthropic", "bedrock", "ollama", "langchain", "langchain-model", "manual")
# gen_ai.provider.name each source's LLM spans carry.
PROVIDER_OF = {
    "openai": "openai",
    "anthropic": "anthropic",
    "bedrock": "aws.bedrock",
    "ollama": "ollama",
    "langchain": "openai",
    "langchain-model": "langchain",
    "manual": "acme",
}


def prompt_marker(source: str) -> str:
    return f"prompt-marker-{source}-zebra42"


def completion_marker(source: str) -> str:
    return f"completion-marker-{source}-okapi77"


@dataclass
class Rigs:
    openai: Any
    anthropic: Any
    bedrock: BedrockMockServer
    ollama: Any


@pytest.fixture
def rigs(
    openai_server: Any,
    anthropic_server: Any,
    bedrock_server: BedrockMockServer,
    ollama_server: Any,
    aws_env: None,
) -> Rigs:
    return Rigs(openai_server, anthropic_server, bedrock_server, ollama_server)


def _all_providers(rigs: Rigs, prompt: dict[str, str], completion: dict[str, str]) -> None:
    """One run of every provider: chat, streams, helpers, each with the source's own texts."""
    # OpenAI: chat, chat stream, embeddings, Responses.
    text = completion["openai"]
    rigs.openai.script(endpoint="chat.completions", times=2, content=text)
    rigs.openai.script(endpoint="responses", times=1, content=text)
    messages = [{"role": "user", "content": prompt["openai"]}]
    client = openai_client(rigs.openai)
    client.chat.completions.create(model="m", messages=messages)
    for _ in client.chat.completions.create(model="m", messages=messages, stream=True):
        pass
    client.embeddings.create(model="e", input=prompt["openai"])
    if hasattr(client, "responses"):
        client.responses.create(model="r", input=prompt["openai"])

    # Anthropic: messages.create, stream=True, the messages.stream() helper.
    rigs.anthropic.script(text=completion["anthropic"], times=3)
    args = {
        "model": ANTHROPIC_MODEL,
        "max_tokens": 50,
        "messages": [{"role": "user", "content": prompt["anthropic"]}],
    }
    claude = anthropic_client(rigs.anthropic)
    claude.messages.create(**args)
    for _ in claude.messages.create(**args, stream=True):
        pass
    with claude.messages.stream(**args) as stream:
        stream.get_final_text()

    # Bedrock: Converse, ConverseStream, InvokeModel, InvokeModelWithResponseStream.
    rigs.bedrock.script(*(BedrockReply(text=completion["bedrock"]) for _ in range(4)))
    bedrock = bedrock_client(rigs.bedrock)
    converse = [{"role": "user", "content": [{"text": prompt["bedrock"]}]}]
    bedrock.converse(modelId=BEDROCK_MODEL, messages=converse)
    for _ in bedrock.converse_stream(modelId=BEDROCK_MODEL, messages=converse)["stream"]:
        pass
    body = json.dumps(
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 50,
            "messages": [{"role": "user", "content": prompt["bedrock"]}],
        }
    )
    bedrock.invoke_model(modelId=BEDROCK_CLAUDE, body=body)["body"].read()
    for _ in bedrock.invoke_model_with_response_stream(modelId=BEDROCK_CLAUDE, body=body)["body"]:
        pass

    # Ollama: chat, chat stream, generate.
    rigs.ollama.script(content=completion["ollama"], times=None)
    local = ollama_client(rigs.ollama)
    messages = [{"role": "user", "content": prompt["ollama"]}]
    local.chat(model=OLLAMA_MODEL, messages=messages, stream=False)
    for _ in local.chat(model=OLLAMA_MODEL, messages=messages, stream=True):
        pass
    local.generate(model=OLLAMA_MODEL, prompt=prompt["ollama"], stream=False)

    # LangChain: prompt | ChatOpenAI | parser (invoke and stream), and a fake model chain.
    rigs.openai.script(endpoint="chat.completions", times=2, content=completion["langchain"])
    chain = openai_chain(rigs.openai.base_url)
    chain.invoke({"q": prompt["langchain"]})
    for _ in chain.stream({"q": prompt["langchain"]}):
        pass
    fake_chain(completion["langchain-model"]).invoke({"q": prompt["langchain-model"]})

    # The manual API.
    with genai_observe.llm_call(
        provider="acme", model="x", messages=[{"role": "user", "content": prompt["manual"]}]
    ) as call:
        call.set_response(content=completion["manual"], finish_reason="stop")


def _markers() -> tuple[dict[str, str], dict[str, str]]:
    return {s: prompt_marker(s) for s in SOURCES}, {s: completion_marker(s) for s in SOURCES}


def _providers_seen(receiver: OTLPReceiver) -> set[str]:
    return {str(s.attributes.get("gen_ai.provider.name")) for s in receiver.spans()} - {"None"}


def test_token_never_in_logs_or_exported_data(
    otlp_receiver: OTLPReceiver, rigs: Rigs, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, every level
    otlp_receiver.queue_response("status", status=401, body=b"invalid token")
    otlp_receiver.queue_response("partial", rejected=1, message="token rejected for metrics")
    handle = genai_observe.init(endpoint=otlp_receiver.url, api_token=TOKEN, capture_content="SPAN_AND_EVENT")
    _all_providers(rigs, *_markers())
    handle.force_flush()
    handle.shutdown()
    assert set(PROVIDER_OF.values()) <= _providers_seen(otlp_receiver)  # every provider ran
    assert TOKEN not in caplog.text
    assert "SECRETPART" not in caplog.text
    assert TOKEN not in repr(handle) and TOKEN not in str(handle.settings)
    for request in otlp_receiver.requests:
        assert request.headers["authorization"] == f"Api-Token {TOKEN}"  # sent where it belongs ...
        assert TOKEN.encode() not in request.body  # ... and nowhere in the payload
        assert b"SECRETPART" not in request.body


@pytest.mark.parametrize("capture", [False, "SPAN_AND_EVENT"], ids=["content-off", "content-on"])
def test_content_off_no_text_in_any_byte(
    capture: bool | str, otlp_receiver: OTLPReceiver, rigs: Rigs
) -> None:
    """Off: no marker in any byte received. On (the control): every marker is there, so the scan
    looked at each provider's data and would have found a leak."""
    prompts, completions = _markers()
    handle = genai_observe.init(endpoint=otlp_receiver.url, capture_content=capture)
    _all_providers(rigs, prompts, completions)
    handle.shutdown()
    assert set(PROVIDER_OF.values()) <= _providers_seen(otlp_receiver)
    assert any(s.name == "RunnableSequence.workflow" for s in otlp_receiver.spans())  # LangChain steps
    assert otlp_receiver.requests and not any(r.decode_error for r in otlp_receiver.requests)
    sent = b"".join(r.body for r in otlp_receiver.requests)  # decompressed, every signal
    markers = [*prompts.values(), *completions.values()]
    found = [m for m in markers if m.encode() in sent]
    if capture:
        assert found == markers
    else:
        assert found == []
        assert not otlp_receiver.logs()  # no content events either


def test_credentials_in_prompts_are_masked_everywhere(otlp_receiver: OTLPReceiver, rigs: Rigs) -> None:
    secrets = " | ".join(KEYS.values())
    prompts = {s: f"{prompt_marker(s)} keys: {secrets}" for s in SOURCES}
    completions = {s: f"{completion_marker(s)} keys: {secrets}" for s in SOURCES}
    handle = genai_observe.init(endpoint=otlp_receiver.url, capture_content="SPAN_AND_EVENT")
    _all_providers(rigs, prompts, completions)
    handle.shutdown()
    assert otlp_receiver.spans() and otlp_receiver.logs()
    sent = b"".join(r.body for r in otlp_receiver.requests)
    for source in SOURCES:  # every provider's content is captured ...
        assert prompt_marker(source).encode() in sent, source
        assert completion_marker(source).encode() in sent, source
    for name, secret in KEYS.items():
        assert secret.split()[-1].encode() not in sent, name  # ... with every credential masked


# --- exception text is content (issue 13, item 3) ------------------------------------------------

ERROR_SOURCES = ("openai", "openai-parse", "anthropic", "bedrock", "ollama", "langchain", "manual")


def echo_marker(source: str) -> str:
    return f"echoed-marker-{source}-quagga19"


def _all_errors(rigs: Rigs) -> None:
    """Every provider failing with an error whose text quotes the call's content, as real services
    do: a 400 echoing the prompt, a pydantic error showing the answer ``parse`` could not read."""
    import pydantic

    def expect_error(call: Any) -> None:
        with pytest.raises(Exception):  # noqa: B017 (each SDK's own error type)
            call()

    client = openai_client(rigs.openai)
    marker = echo_marker("openai")
    rigs.openai.script_error(400, f"Invalid content in messages[0]: '{marker}'", code="invalid_value")
    message = {"role": "user", "content": marker}
    expect_error(lambda: client.chat.completions.create(model="m", messages=[message]))

    class Answer(pydantic.BaseModel):
        count: int

    answer = json.dumps({"count": echo_marker("openai-parse")})  # not an int: pydantic quotes it
    rigs.openai.script(endpoint="chat.completions", content=answer)
    parse = getattr(client.chat.completions, "parse", None) or client.beta.chat.completions.parse
    question = [{"role": "user", "content": "how many?"}]
    expect_error(lambda: parse(model="m", messages=question, response_format=Answer))

    marker = echo_marker("anthropic")
    rigs.anthropic.script_error(400, f"messages.0.content: bad text '{marker}'", type="invalid_request_error")
    claude = anthropic_client(rigs.anthropic)
    message = {"role": "user", "content": marker}
    expect_error(lambda: claude.messages.create(model=ANTHROPIC_MODEL, max_tokens=5, messages=[message]))

    marker = echo_marker("bedrock")
    rigs.bedrock.script(BedrockReply(status=400, error="ValidationException", message=f"bad input: {marker}"))
    bedrock = bedrock_client(rigs.bedrock)
    converse = [{"role": "user", "content": [{"text": marker}]}]
    expect_error(lambda: bedrock.converse(modelId=BEDROCK_MODEL, messages=converse))

    marker = echo_marker("ollama")
    rigs.ollama.script_error(400, f"invalid message: {marker}")
    local = ollama_client(rigs.ollama)
    message = {"role": "user", "content": marker}
    expect_error(lambda: local.chat(model=OLLAMA_MODEL, messages=[message], stream=False))

    marker = echo_marker("langchain")
    rigs.openai.script_error(400, f"Invalid content: '{marker}'")
    expect_error(lambda: openai_chain(rigs.openai.base_url).invoke({"q": marker}))

    def manual() -> None:
        with genai_observe.llm_call(provider="acme", model="x"):
            raise ValueError(f"could not handle {echo_marker('manual')}")

    expect_error(manual)


@pytest.mark.parametrize(
    "capture", [False, "EVENT_ONLY", "SPAN_AND_EVENT"], ids=["content-off", "event-only", "content-on"]
)
def test_error_text_is_content(capture: bool | str, otlp_receiver: OTLPReceiver, rigs: Rigs) -> None:
    """Content off on spans: no quoted text in the status, exception event or stack trace, in any
    byte sent (EVENT_ONLY: in no span or metric; its events carry content by choice). On (the
    control): each provider's exception message holds its marker, so the scan would see a leak."""
    handle = genai_observe.init(endpoint=otlp_receiver.url, capture_content=capture)
    _all_errors(rigs)
    handle.shutdown()
    assert otlp_receiver.requests and not any(r.decode_error for r in otlp_receiver.requests)
    markers = [echo_marker(s).encode() for s in ERROR_SOURCES]
    failed = [s for s in otlp_receiver.spans() if s.status_code == 2]
    assert len([s for s in failed if s.kind == 3]) == len(ERROR_SOURCES)  # one LLM span each
    if capture == "SPAN_AND_EVENT":
        messages = " ".join(str(s.event("exception").get("exception.message")) for s in failed)
        assert [m for m in markers if m.decode() not in messages] == []
        return
    scanned = [r for r in otlp_receiver.requests if not (capture and r.signal == "logs")]
    sent = b"".join(r.body for r in scanned)
    assert [m for m in markers if m in sent] == []
    by_provider: dict[Any, Any] = {}
    for span in failed:
        if span.kind == 3:
            by_provider.setdefault(span.attributes.get("gen_ai.provider.name"), span)
    # What is left is the class, the HTTP status and the provider's error code: no content.
    assert by_provider["openai"].status_message == "BadRequestError: HTTP 400 invalid_value"
    assert by_provider["anthropic"].status_message == "BadRequestError: HTTP 400 invalid_request_error"
    assert by_provider["aws.bedrock"].status_message == "ValidationException: HTTP 400 ValidationException"
    assert by_provider["ollama"].status_message == "ResponseError: HTTP 400"
    assert by_provider["acme"].status_message == "ValueError"
    assert any(s.status_message == "ValidationError" for s in failed)  # parse's pydantic error
    trace = by_provider["acme"].event("exception")["exception.stacktrace"]
    assert trace.startswith("Traceback (most recent call last):\n") and trace.endswith("\nValueError\n")
    assert "in manual" in trace  # the frames are kept


def test_error_summary_keeps_only_status_and_code() -> None:
    """What an error says without content, for shapes the providers above do not cover."""
    import httpx

    from genai_observe._core.errors import error_summary

    request = httpx.Request("POST", "http://127.0.0.1/v1/chat")
    response = httpx.Response(422, request=request, text=echo_marker("httpx"))
    assert (
        error_summary(httpx.HTTPStatusError(echo_marker("httpx"), request=request, response=response))
        == "HTTP 422"
    )

    class Odd(Exception):
        code = "not an identifier: " + echo_marker("odd")  # free text is never taken for a code
        status_code = True  # nor a bool for a status

    assert error_summary(Odd(echo_marker("odd"))) == ""
