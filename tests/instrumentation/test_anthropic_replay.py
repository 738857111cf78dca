"""Replays the recorded Anthropic traffic through the real SDK and our instrumentation.

Every recorded Messages request (first-party, beta, and Anthropic on Bedrock through
``AnthropicBedrock``) and every legacy ``/v1/complete`` request is sent again through the
instrumented SDK method against a server answering with the recorded response; the span must carry
what the recorded response says (id, model, token usage with cache reads and writes added to the
input, stop reason, text, thinking, tool calls). Skipped without ``../shared``.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import anthropic
import pytest

from genai_observe.instrumentation.anthropic import AnthropicInstrumentor
from tests.conftest import Telemetry
from tests.rig.replay import Interaction, ReplayServer, interactions


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:  # a parent package is missing in this SDK version
        return False


CASES = interactions("anthropic", ("/v1/messages", "/v1/complete", "/invoke"))
HAS_COMPLETIONS = _has_module("anthropic.resources.completions")
HAS_BETA_MESSAGES = _has_module("anthropic.resources.beta.messages")
HAS_BOTOCORE = _has_module("botocore")


def _ids(case: Interaction) -> str:
    return case.label()


@pytest.fixture(scope="module")
def replay() -> Iterator[ReplayServer]:
    server = ReplayServer()
    yield server
    server.stop()


def _bedrock_model(case: Interaction) -> str | None:
    if "/model/" not in case.path:
        return None
    return unquote(case.path.split("/model/", 1)[1].rsplit("/", 1)[0])


def _method(case: Interaction, url: str) -> Any:
    if _bedrock_model(case) is not None:
        if not HAS_BOTOCORE:
            pytest.skip("AnthropicBedrock needs botocore")
        bedrock = anthropic.AnthropicBedrock(
            aws_access_key="k", aws_secret_key="s", aws_region="us-east-1", base_url=url, max_retries=0
        )
        return bedrock.messages.create
    client = anthropic.Anthropic(base_url=url, api_key="k", max_retries=0)
    if case.path.endswith("/v1/complete"):
        if not HAS_COMPLETIONS:
            pytest.skip("this anthropic has no completions")
        return client.completions.create
    if case.query.get("beta") == "true":
        if not HAS_BETA_MESSAGES:
            pytest.skip("this anthropic has no client.beta.messages")
        return client.beta.messages.create
    return client.messages.create


def _kwargs(method: Any, body: dict[str, Any]) -> dict[str, Any]:
    """The recorded body as arguments; what this SDK version has no argument for goes in extra_body."""
    accepted = set(inspect.signature(method).parameters)
    kwargs = {k: v for k, v in body.items() if k in accepted}
    extra = {k: v for k, v in body.items() if k not in accepted}
    if extra:
        kwargs["extra_body"] = extra
    return kwargs


def _usage(exp: dict[str, Any], usage: dict[str, Any], *, output: bool = True) -> None:
    if "input_tokens" in usage:
        read = usage.get("cache_read_input_tokens") or 0
        created = usage.get("cache_creation_input_tokens") or 0
        exp["gen_ai.usage.input_tokens"] = usage["input_tokens"] + read + created
        if "cache_read_input_tokens" in usage:
            exp["gen_ai.usage.cache_read.input_tokens"] = read
        if "cache_creation_input_tokens" in usage:
            exp["gen_ai.usage.cache_creation.input_tokens"] = created
    if output and "output_tokens" in usage:
        exp["gen_ai.usage.output_tokens"] = usage["output_tokens"]


def _content(exp: dict[str, Any], blocks: list[dict[str, Any]]) -> None:
    text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
    thinking = "\n".join(b["thinking"] for b in blocks if b.get("type") == "thinking" and b.get("thinking"))
    tools = [b for b in blocks if b.get("type") == "tool_use"]
    if text:
        exp["gen_ai.completion.0.content"] = text
    if thinking:
        exp["gen_ai.completion.0.reasoning"] = thinking
    for i, tool in enumerate(tools):
        exp[f"gen_ai.completion.0.tool_calls.{i}.id"] = tool.get("id")
        exp[f"gen_ai.completion.0.tool_calls.{i}.name"] = tool.get("name")


def _expected(case: Interaction) -> dict[str, Any]:
    """What the recorded response says, in our attribute names."""
    exp: dict[str, Any] = {}
    if case.path.endswith("/v1/complete"):
        body = case.response_json() or {}
        exp["gen_ai.response.id"] = body.get("id")
        exp["gen_ai.response.model"] = body.get("model")
        exp["gen_ai.completion.0.content"] = body.get("completion")
        exp["gen_ai.completion.0.finish_reason"] = body.get("stop_reason")
        return {k: v for k, v in exp.items() if v is not None}
    if not case.is_sse:
        message = case.response_json() or {}
        exp["gen_ai.response.id"] = message.get("id")
        exp["gen_ai.response.model"] = message.get("model")
        exp["gen_ai.completion.0.finish_reason"] = message.get("stop_reason")
        _usage(exp, message.get("usage") or {})
        _content(exp, message.get("content") or [])
        return {k: v for k, v in exp.items() if v is not None}
    blocks: dict[int, dict[str, Any]] = {}
    for _, event in case.sse_events():
        kind = event.get("type") if isinstance(event, dict) else None
        if kind == "message_start":
            message = event["message"]
            exp["gen_ai.response.id"] = message.get("id")
            exp["gen_ai.response.model"] = message.get("model")
            _usage(exp, message.get("usage") or {}, output=False)
        elif kind == "content_block_start":
            blocks[event["index"]] = dict(event["content_block"])
        elif kind == "content_block_delta":
            block, delta = blocks[event["index"]], event["delta"]
            if delta.get("type") == "text_delta":
                block["text"] = block.get("text", "") + delta["text"]
            elif delta.get("type") == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + delta["thinking"]
        elif kind == "message_delta":
            exp["gen_ai.completion.0.finish_reason"] = (event.get("delta") or {}).get("stop_reason")
            _usage(exp, event.get("usage") or {})
    _content(exp, [blocks[i] for i in sorted(blocks)])
    return {k: v for k, v in exp.items() if v is not None}


@pytest.mark.skipif(not CASES, reason="recorded traffic (../shared/recorded) not available")
@pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")  # recorded models retire
@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_replay(case: Interaction, replay: ReplayServer, telemetry: Telemetry) -> None:
    body = case.request_json()
    if not isinstance(body, dict):
        pytest.skip("request body is not JSON")
    model = _bedrock_model(case)
    if model is not None:  # Bedrock puts the model in the path and adds its own anthropic_version
        body = {**{k: v for k, v in body.items() if k != "anthropic_version"}, "model": model}
    with telemetry.instrumenting(AnthropicInstrumentor()):
        replay.current = case
        method = _method(case, replay.url)
        error: Exception | None = None
        try:
            result = method(**_kwargs(method, body))
            if body.get("stream"):
                for _ in result:
                    pass
        except anthropic.APIStatusError as exc:
            error = exc
    spans = telemetry.spans()
    assert len(spans) == 1, case.label()
    attributes = dict(spans[0].attributes or {})
    telemetry.metrics_agree_with(attributes)  # read at once, as a flush right after the call would
    if case.status >= 400:
        assert error is not None and attributes["error.type"] == type(error).__name__
        return
    assert error is None
    assert attributes["gen_ai.provider.name"] == "anthropic" and attributes["gen_ai.system"] == "Anthropic"
    assert attributes["gen_ai.request.model"] == body.get("model")
    assert attributes.get("gen_ai.request.max_tokens") == body.get(
        "max_tokens", body.get("max_tokens_to_sample")
    )
    if (body.get("output_format") or {}).get("type") == "json_schema":
        assert attributes["gen_ai.output.type"] == "json"
    expected = _expected(case)
    assert expected, case.label()
    for key, value in expected.items():
        assert attributes.get(key) == value, f"{case.label()}: {key}"
