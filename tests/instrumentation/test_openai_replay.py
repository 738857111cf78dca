"""Replays the recorded OpenAI/Azure traffic through the real SDK and our instrumentation.

For each recorded request to a supported endpoint, the recorded request is sent again through the
instrumented SDK method against a server answering with the recorded response; the span must carry
what the recorded response says (id, model, tokens, finish reasons, text). Skipped without
``../shared``.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from genai_observe.instrumentation.openai import OpenAIInstrumentor
from tests.conftest import Telemetry
from tests.rig.replay import Interaction, ReplayServer, interactions

ENDPOINTS = ("/chat/completions", "/completions", "/embeddings", "/responses")
CASES = interactions("openai", ENDPOINTS)


def _ids(case: Interaction) -> str:
    return case.label()


@pytest.fixture(scope="module")
def replay() -> Iterator[ReplayServer]:
    server = ReplayServer()
    yield server
    server.stop()


def _client(case: Interaction, url: str) -> openai.OpenAI:
    if "/openai/deployments/" in case.path:
        return openai.AzureOpenAI(
            azure_endpoint=url,
            api_version=case.query.get("api-version", "2024-06-01"),
            api_key="k",
            max_retries=0,
        )
    return openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0)


def _method(client: openai.OpenAI, path: str) -> Any:
    if path.endswith("/chat/completions"):
        return client.chat.completions.create
    if path.endswith("/completions"):
        return client.completions.create
    if path.endswith("/embeddings"):
        return client.embeddings.create
    return client.responses.create


def _kwargs(method: Any, body: dict[str, Any]) -> dict[str, Any]:
    accepted = set(inspect.signature(method).parameters)
    kwargs = {k: v for k, v in body.items() if k in accepted}
    extra = {k: v for k, v in body.items() if k not in accepted}
    if extra:
        kwargs["extra_body"] = extra
    return kwargs


def _expected(case: Interaction) -> dict[str, Any]:
    """What the recorded response says, in our attribute names."""
    exp: dict[str, Any] = {}
    if case.path.endswith("/responses"):
        final = None
        if case.is_sse:
            for _, event in case.sse_events():
                if isinstance(event, dict) and event.get("type") in (
                    "response.completed",
                    "response.incomplete",
                ):
                    final = event["response"]
        else:
            final = case.response_json()
        if isinstance(final, dict):
            exp["gen_ai.response.id"] = final.get("id")
            usage = final.get("usage") or {}
            exp["gen_ai.usage.input_tokens"] = usage.get("input_tokens")
            exp["gen_ai.usage.output_tokens"] = usage.get("output_tokens")
        return exp
    if case.is_sse:
        content: dict[int, str] = {}
        finish: dict[int, str] = {}
        for _, chunk in case.sse_events():
            if not isinstance(chunk, dict):
                continue
            if chunk.get("id") and "gen_ai.response.id" not in exp:
                exp["gen_ai.response.id"] = chunk["id"]
            if chunk.get("model") and "gen_ai.response.model" not in exp:
                exp["gen_ai.response.model"] = chunk["model"]
            if chunk.get("usage"):
                exp["gen_ai.usage.input_tokens"] = chunk["usage"].get("prompt_tokens")
                exp["gen_ai.usage.output_tokens"] = chunk["usage"].get("completion_tokens")
            for c in chunk.get("choices") or []:
                i = c.get("index", 0)
                text = (c.get("delta") or {}).get("content") if "delta" in c else c.get("text")
                if text:
                    content[i] = content.get(i, "") + text
                if c.get("finish_reason"):
                    finish[i] = c["finish_reason"]
        for i, text in content.items():
            exp[f"gen_ai.completion.{i}.content"] = text
        for i, reason in finish.items():
            exp[f"gen_ai.completion.{i}.finish_reason"] = reason
        return exp
    body = case.response_json()
    if not isinstance(body, dict):
        return exp
    exp["gen_ai.response.model"] = body.get("model")
    usage = body.get("usage") or {}
    exp["gen_ai.usage.input_tokens"] = usage.get("prompt_tokens")
    if not case.path.endswith("/embeddings"):
        exp["gen_ai.response.id"] = body.get("id")
        exp["gen_ai.usage.output_tokens"] = usage.get("completion_tokens")
        for i, c in enumerate(body.get("choices") or []):
            message = c.get("message") or {}
            text = message.get("content") if "message" in c else c.get("text")
            if text:
                exp[f"gen_ai.completion.{i}.content"] = text
            if c.get("finish_reason"):
                exp[f"gen_ai.completion.{i}.finish_reason"] = c["finish_reason"]
    else:
        data = body.get("data") or []
        if data and isinstance(data[0].get("embedding"), list):
            exp["gen_ai.embeddings.dimension.count"] = len(data[0]["embedding"])
    return {k: v for k, v in exp.items() if v is not None}


@pytest.mark.skipif(not CASES, reason="recorded traffic (../shared/recorded) not available")
@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_replay(case: Interaction, replay: ReplayServer, telemetry: Telemetry) -> None:
    body = case.request_json()
    if not isinstance(body, dict):
        pytest.skip("request body is not JSON")
    if case.path.endswith("/responses") and not hasattr(openai.OpenAI, "responses"):
        pytest.skip("this openai has no Responses API")
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(**telemetry.instrument_kwargs())
    try:
        replay.current = case
        client = _client(case, replay.url)
        method = _method(client, case.path)
        error: Exception | None = None
        try:
            result = method(**_kwargs(method, body))
            if body.get("stream"):
                for _ in result:
                    pass
        except openai.APIStatusError as exc:
            error = exc
    finally:
        instrumentor.uninstrument()
    spans = telemetry.spans()
    assert len(spans) == 1, case.label()
    attributes = dict(spans[0].attributes or {})
    if case.status >= 400:
        assert error is not None and attributes["error.type"] == type(error).__name__
        return
    assert error is None
    assert attributes["gen_ai.request.model"] == body.get("model")
    for key, value in _expected(case).items():
        assert attributes.get(key) == value, f"{case.label()}: {key}"
