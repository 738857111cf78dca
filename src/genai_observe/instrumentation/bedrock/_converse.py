"""Converse: the request's parameters and the parsed response (ConverseStream events are read in
``_streams.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..._core.record import LLMCall
from ._content import converse_content, converse_messages, system_blocks, tool_spec_definitions
from ._fields import as_int, as_map, as_num, as_str, first_of, stops_of
from ._guardrails import GuardrailSignals, apply_guardrail, guardrail_request
from ._models import resolve_model
from ._plan import Plan, finish_common
from ._tokens import converse_tokens


def converse_request(call: LLMCall, params: Mapping[str, Any]) -> None:
    config = as_map(params.get("inferenceConfig"))
    max_tokens = as_int(config.get("maxTokens"))
    call.max_tokens = max_tokens
    call.temperature = as_num(config.get("temperature"))
    call.top_p = as_num(config.get("topP"))
    call.stop_sequences = stops_of(config.get("stopSequences"))
    extra = as_map(params.get("additionalModelRequestFields"))
    call.top_k = as_num(first_of(extra, "top_k", "topK")) or as_num(
        as_map(extra.get("inferenceConfig")).get("topK")
    )
    output = as_map(params.get("outputConfig"))
    text_format = as_map(output.get("textFormat"))
    if text_format:
        call.output_type = "json" if "json" in str(text_format.get("type", "")).lower() else "text"
    call.system_instructions = system_blocks(params.get("system"))
    call.input_messages = converse_messages(params.get("messages"))
    call.tool_definitions = tool_spec_definitions(params.get("toolConfig"))
    guard = as_map(params.get("guardrailConfig"))
    guardrail_request(call, guard.get("guardrailIdentifier"), guard.get("guardrailVersion"))


def converse_response(call: LLMCall, plan: Plan, result: Any) -> None:
    r = as_map(result)
    stop = r.get("stopReason")
    converse_content(call, as_map(as_map(r.get("output")).get("message")), stop)
    call.usage = converse_tokens(as_map(r.get("usage"))).usage()
    trace = as_map(r.get("trace"))
    invoked = as_map(trace.get("promptRouter")).get("invokedModelId")
    if isinstance(invoked, str) and invoked:
        call.response_model = resolve_model(invoked).model
    apply_guardrail(
        call, GuardrailSignals(trace=as_map(trace.get("guardrail")) or None, stop_reason=as_str(stop))
    )
    finish_common(call, plan, result)
