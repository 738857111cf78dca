"""Replays the recorded OpenAI/Azure traffic through the real SDK and our instrumentation.

For each recorded request to a supported endpoint, the recorded request is sent again through the
instrumented SDK method against a server answering with the recorded response; the span must carry
what the recorded response says (id, model, tokens, finish reasons, text, and where the recording
has them: system fingerprint, service tier, Azure's API version and filter verdicts). Skipped
without ``../shared``.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from genai_observe.instrumentation.openai import OpenAIInstrumentor
from tests.conftest import Telemetry
from tests.rig.replay import Interaction, ReplayServer, interactions

ENDPOINTS = ("/chat/completions", "/completions", "/embeddings", "/responses")
CASES = interactions("openai", ENDPOINTS)
# Attributes holding JSON: compared as decoded values.
JSON_SUFFIX = "filter_results"


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


def _fingerprint_and_tier(exp: dict[str, Any], body: dict[str, Any]) -> None:
    fingerprint = body.get("system_fingerprint")
    if fingerprint:
        exp["openai.response.system_fingerprint"] = fingerprint
        exp["gen_ai.openai.system_fingerprint"] = fingerprint  # the dynatrace profile's name
    if body.get("service_tier"):
        exp["openai.response.service_tier"] = body["service_tier"]


def _expected(case: Interaction) -> dict[str, Any]:
    """What the recorded response says, in our attribute names (dynatrace profile)."""
    exp: dict[str, Any] = {}
    if "/openai/deployments/" in case.path and case.query.get("api-version"):
        exp["gen_ai.openai.api_version"] = case.query["api-version"]
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
            if final.get("service_tier"):
                exp["openai.response.service_tier"] = final["service_tier"]
            usage = final.get("usage") or {}
            exp["gen_ai.usage.input_tokens"] = usage.get("input_tokens")
            exp["gen_ai.usage.output_tokens"] = usage.get("output_tokens")
        return exp
    if case.is_sse:
        content: dict[int, str] = {}
        finish: dict[int, str] = {}
        filters: dict[int, Any] = {}
        for _, chunk in case.sse_events():
            if not isinstance(chunk, dict):
                continue
            if chunk.get("id") and "gen_ai.response.id" not in exp:
                exp["gen_ai.response.id"] = chunk["id"]
            if chunk.get("model") and "gen_ai.response.model" not in exp:
                exp["gen_ai.response.model"] = chunk["model"]
                _fingerprint_and_tier(exp, chunk)  # read from the first chunk that names the model
            if chunk.get("usage"):
                exp["gen_ai.usage.input_tokens"] = chunk["usage"].get("prompt_tokens")
                exp["gen_ai.usage.output_tokens"] = chunk["usage"].get("completion_tokens")
            if chunk.get("prompt_filter_results") is not None:  # Azure: a chunk of its own, first
                exp["gen_ai.prompt.prompt_filter_results"] = chunk["prompt_filter_results"]
            for c in chunk.get("choices") or []:
                i = c.get("index") or 0
                text = (c.get("delta") or {}).get("content") if "delta" in c else c.get("text")
                if text:
                    content[i] = content.get(i, "") + text
                if c.get("finish_reason"):
                    finish[i] = c["finish_reason"]
                if c.get("content_filter_results"):  # Azure: the latest verdict ({} carries none)
                    filters[i] = c["content_filter_results"]
        for i, text in content.items():
            exp[f"gen_ai.completion.{i}.content"] = text
        for i, reason in finish.items():
            exp[f"gen_ai.completion.{i}.finish_reason"] = reason
        for i, verdict in filters.items():
            exp[f"gen_ai.completion.{i}.content_filter_results"] = verdict
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
        _fingerprint_and_tier(exp, body)
        if body.get("prompt_filter_results") is not None:
            exp["gen_ai.prompt.prompt_filter_results"] = body["prompt_filter_results"]
        for i, c in enumerate(body.get("choices") or []):
            message = c.get("message") or {}
            text = message.get("content") if "message" in c else c.get("text")
            if text:
                exp[f"gen_ai.completion.{i}.content"] = text
            if c.get("finish_reason"):
                exp[f"gen_ai.completion.{i}.finish_reason"] = c["finish_reason"]
            if c.get("content_filter_results") is not None:
                exp[f"gen_ai.completion.{i}.content_filter_results"] = c["content_filter_results"]
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
    with telemetry.instrumenting(OpenAIInstrumentor()):
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
    spans = telemetry.spans()
    assert len(spans) == 1, case.label()
    attributes = dict(spans[0].attributes or {})
    telemetry.metrics_agree_with(attributes)  # read at once, as a flush right after the call would
    if case.status >= 400:
        assert error is not None and attributes["error.type"] == type(error).__name__
        return
    assert error is None
    assert attributes["gen_ai.request.model"] == body.get("model")
    for key, value in _expected(case).items():
        actual = attributes.get(key)
        if key.endswith(JSON_SUFFIX) and isinstance(actual, str):
            actual = json.loads(actual)
        assert actual == value, f"{case.label()}: {key}"


AZURE_CASES = [c for c in CASES if "/openai/deployments/" in c.path and c.status < 400]


@pytest.mark.skipif(not AZURE_CASES, reason="recorded Azure traffic (../shared/recorded) not available")
def test_recordings_exercise_azure_and_fingerprints() -> None:
    """The checks above are not vacuous: the recordings carry what they compare."""
    found = set().union(*(_expected(c) for c in CASES))
    for key in (
        "gen_ai.openai.api_version",
        "gen_ai.openai.system_fingerprint",
        "openai.response.service_tier",
        "gen_ai.prompt.prompt_filter_results",
        "gen_ai.completion.0.content_filter_results",
    ):
        assert key in found, key
