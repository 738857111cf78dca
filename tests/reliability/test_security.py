"""Secrets stay secret; with content capture off no prompt or completion text leaves the process."""

from __future__ import annotations

import logging

import ollama
import pytest

import genai_observe
from tests.rig.ollama_server import OllamaMockServer
from tests.rig.openai_server import OpenAIMockServer
from tests.rig.otlp_receiver import OTLPReceiver

TOKEN = "dt0c01.SECURITYTESTTOKEN0000000.SECRETPART0000000000000000000000000000000000000000000000000000000"
PROMPT = "the-secret-prompt-zebra-42"
KEYS = {
    "openai": "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789",
    "anthropic": "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789",
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "bearer": "Bearer abcdefghijklmnopqrstuvwxyz012345",
    "dynatrace": "dt0c01.ABCDEFGHIJKLMNOPQRSTUVWX.ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
}


def _all_providers(openai_server: OpenAIMockServer, ollama_url: str, prompt: str) -> None:
    messages = [{"role": "user", "content": prompt}]
    client = openai_server.client()
    client.chat.completions.create(model="m", messages=messages)
    for _ in client.chat.completions.create(model="m", messages=messages, stream=True):
        pass
    client.embeddings.create(model="e", input=prompt)
    if hasattr(client, "responses"):
        client.responses.create(model="r", input=prompt)
    local = ollama.Client(host=ollama_url)
    local.chat(model="llama3", messages=messages)
    for _ in local.chat(model="llama3", messages=messages, stream=True):
        pass
    local.generate(model="llama3", prompt=prompt)
    with genai_observe.llm_call(provider="acme", model="x", messages=messages) as call:
        call.set_response(content=f"echo {prompt}", finish_reason="stop")


def test_token_never_in_logs_or_exported_data(
    otlp_receiver: OTLPReceiver,
    openai_server: OpenAIMockServer,
    ollama_server: OllamaMockServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, every level
    otlp_receiver.queue_response("status", status=401, body=b"invalid token")
    otlp_receiver.queue_response("partial", rejected=1, message="token rejected for metrics")
    handle = genai_observe.init(endpoint=otlp_receiver.url, api_token=TOKEN, capture_content="SPAN_AND_EVENT")
    _all_providers(openai_server, ollama_server.url, "hello")
    handle.force_flush()
    handle.shutdown()
    assert TOKEN not in caplog.text
    assert "SECRETPART" not in caplog.text
    assert TOKEN not in repr(handle) and TOKEN not in str(handle.settings)
    for request in otlp_receiver.requests:
        assert request.headers["authorization"] == f"Api-Token {TOKEN}"  # sent where it belongs ...
        assert TOKEN.encode() not in request.body  # ... and nowhere in the payload


def test_content_off_no_text_in_any_byte(
    otlp_receiver: OTLPReceiver,
    openai_server: OpenAIMockServer,
    ollama_server: OllamaMockServer,
) -> None:
    handle = genai_observe.init(endpoint=otlp_receiver.url, capture_content=False)
    _all_providers(openai_server, ollama_server.url, PROMPT)
    handle.shutdown()
    assert otlp_receiver.spans()
    for request in otlp_receiver.requests:
        assert PROMPT.encode() not in request.body, request.signal


def test_credentials_in_prompts_are_masked_everywhere(
    otlp_receiver: OTLPReceiver,
    openai_server: OpenAIMockServer,
    ollama_server: OllamaMockServer,
) -> None:
    prompt = "keys: " + " | ".join(KEYS.values())
    handle = genai_observe.init(endpoint=otlp_receiver.url, capture_content="SPAN_AND_EVENT")
    _all_providers(openai_server, ollama_server.url, prompt)
    handle.shutdown()
    assert otlp_receiver.spans() and otlp_receiver.logs()
    sent = b"".join(r.body for r in otlp_receiver.requests)
    assert b"keys: " in sent  # content is captured ...
    for name, secret in KEYS.items():
        assert secret.split()[-1].encode() not in sent, name  # ... with every credential masked
