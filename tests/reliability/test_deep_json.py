"""Tool-call arguments nested 5,000 levels deep: ``json`` raises RecursionError past about 1,000
levels, which must cost at most that field, never the span's usage and finish reasons, the span
itself, or anything the caller sees.

Each case makes the same call uninstrumented and instrumented (content on, so the arguments are
parsed for the span) through the real SDK against its local server (tests/rig), and compares what
the caller saw. Where an SDK parses the arguments itself (Anthropic's and Ollama's JSON answers,
Bedrock Converse), it fails the same way with or without us: those cases are in
test_provider_faults.py's spirit and not repeated here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from genai_observe._core import safe_json as _json
from genai_observe._core import semconv as sc
from tests.conftest import Telemetry
from tests.rig.bedrock_server import Reply as BedrockReply
from tests.rig.openai_server import ToolCall

from ._providers import (
    ANTHROPIC_MODEL,
    BEDROCK_CLAUDE,
    Seen,
    anthropic_client,
    attrs,
    bedrock_client,
    count_spans,
    dump,
    instrumented,
    llm_spans,
    openai_client,
    settle,
)

LEVELS = 5_000
DEEP = '{"a":' * LEVELS + "1" + "}" * LEVELS  # valid JSON that json.loads cannot parse
MESSAGES = [{"role": "user", "content": "call it"}]


def test_json_helpers_cut_what_is_too_deep_and_keep_the_rest() -> None:
    with pytest.raises(RecursionError):
        json.loads(DEEP)
    parsed = _json.loads(f'{{"usage": {{"input_tokens": 3}}, "input": {DEEP}, "after": true}}')
    assert parsed["usage"] == {"input_tokens": 3} and parsed["after"] is True
    value, levels = parsed["input"], 0
    while isinstance(value, dict):
        value, levels = value["a"], levels + 1
    assert value == _json.TOO_DEEP and levels == _json.MAX_DEPTH - 1
    assert _json.loads('{"brackets in strings": "[[{{\\"]]"}') == {"brackets in strings": '[[{{"]]'}
    assert _json.loads(b"{bad", default="raw") == "raw" and _json.loads("[" * LEVELS) is None
    nested: Any = 1
    for _ in range(LEVELS):
        nested = {"a": nested}
    text = _json.dumps({"input": nested})
    assert text is not None and _json.TOO_DEEP in text


# --- the calls -------------------------------------------------------------------------------------


def _openai_chat(server: Any, got: list[Any]) -> Any:
    server.script_tool_calls(ToolCall(name="lookup", arguments=DEEP, id="call_1"))
    return dump(openai_client(server).chat.completions.create(model="m", messages=MESSAGES))


def _openai_stream(server: Any, got: list[Any]) -> Any:
    server.script_tool_calls(ToolCall(name="lookup", arguments=DEEP, id="call_1"))
    stream = openai_client(server).chat.completions.create(
        model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    return [dump(chunk) for chunk in stream]


def _openai_request(server: Any, got: list[Any]) -> Any:
    """The deep arguments are in the request: the assistant's earlier tool call."""
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": DEEP}}
    messages = [
        *MESSAGES,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
    ]
    return dump(openai_client(server).chat.completions.create(model="m", messages=messages))


def _anthropic_stream(server: Any, got: list[Any]) -> Any:
    """``stream=True``: the SDK hands the ``input_json_delta`` fragments over unparsed."""
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": ANTHROPIC_MODEL,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 11, "output_tokens": 1},
    }
    block = {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}
    fragments = [DEEP[i : i + 4096] for i in range(0, len(DEEP), 4096)]
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": message}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}),
        *(
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": fragment},
                },
            )
            for fragment in fragments
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 7},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    server.script(events=events)
    stream = anthropic_client(server).messages.create(
        model=ANTHROPIC_MODEL, max_tokens=20, messages=MESSAGES, stream=True
    )
    return [dump(event) for event in stream]


def _bedrock_invoke(server: Any, got: list[Any]) -> Any:
    """InvokeModel hands the caller the body's bytes; only we parse them."""
    body = (
        '{"id":"msg_1","type":"message","role":"assistant","model":"claude",'
        '"content":[{"type":"tool_use","id":"toolu_1","name":"lookup","input":' + DEEP + "}],"
        '"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":11,"output_tokens":7}}'
    )
    server.script(BedrockReply(body=body.encode(), token_headers=False))
    request = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 20, "messages": MESSAGES})
    result = bedrock_client(server).invoke_model(modelId=BEDROCK_CLAUDE, body=request)
    return result["body"].read()


CASES: dict[str, tuple[str, str, Callable[[Any, list[Any]], Any], str, int, int]] = {
    # name: (provider, server fixture, call, finish reason, input tokens, output tokens)
    "openai-chat": ("openai", "openai_server", _openai_chat, "tool_calls", 0, 0),
    "openai-stream": ("openai", "openai_server", _openai_stream, "tool_calls", 0, 0),
    "openai-request": ("openai", "openai_server", _openai_request, "stop", 0, 0),
    "anthropic-stream": ("anthropic", "anthropic_server", _anthropic_stream, "tool_use", 11, 7),
    "bedrock-invoke": ("bedrock", "bedrock_server", _bedrock_invoke, "tool_use", 11, 7),
}


@pytest.mark.parametrize("profile", ["dynatrace", "latest"])
@pytest.mark.parametrize("name", list(CASES))
def test_deep_tool_arguments_keep_the_span_and_the_result(
    name: str, profile: str, request: pytest.FixtureRequest, telemetry: Telemetry
) -> None:
    provider, fixture, call, finish, input_tokens, output_tokens = CASES[name]
    if provider == "bedrock":
        request.getfixturevalue("aws_env")
    server = request.getfixturevalue(fixture)
    plain = settle(lambda got: call(server, got))
    assert plain.kind == "ok", plain
    counter = count_spans(telemetry)
    with instrumented(telemetry, provider, capture="SPAN_AND_EVENT", profile=profile):
        seen: Seen = settle(lambda got: call(server, got))
    assert seen == plain  # the caller's result is untouched
    assert counter.open() == []
    spans = llm_spans(telemetry)
    assert len(spans) == 1  # the span exists ...
    a = attrs(spans[0])
    assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == (finish,)  # ... with its finish reason
    assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] > 0 and a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] > 0  # ... and usage
    if input_tokens:
        assert (a[sc.GEN_AI_USAGE_INPUT_TOKENS], a[sc.GEN_AI_USAGE_OUTPUT_TOKENS]) == (
            input_tokens,
            output_tokens,
        )
    assert "lookup" in " ".join(str(v) for v in a.values())  # the tool call is recorded
    # The event carries the v1.41.0 messages, whose arguments are parsed JSON: cut where too deep.
    events = [dict(r.attributes or {}) for r in telemetry.logs()]
    assert len(events) == 1
    messages = str(events[0].get(sc.GEN_AI_INPUT_MESSAGES, "")) + str(
        events[0].get(sc.GEN_AI_OUTPUT_MESSAGES, "")
    )
    assert "lookup" in messages and _json.TOO_DEEP in messages
