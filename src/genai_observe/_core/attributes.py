"""Span and metric attributes of a call, for both profiles: what the record becomes on the span.

The dynatrace profile writes v1.41.0 names plus the names Dynatrace's AI Observability app reads
(``gen_ai.system``, the flat ``gen_ai.prompt.N.*`` content, Azure's verdicts, caching, the
guardrail family); ``latest`` writes v1.41.0 only. :class:`Recorder` inherits these builders; they
read its ``capture``, ``content`` (the content policy) and ``_legacy`` (the dynatrace profile).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from . import guardrails
from . import semconv as sc
from .content import ContentPolicy
from .metrics import MetricSnapshot
from .modes import CaptureMode
from .record import Choice, LLMCall, ToolCall, Usage


class SpanAttributes:
    """Record -> attribute dicts (start, end, metric points); mixed into :class:`Recorder`."""

    capture: CaptureMode
    content: ContentPolicy
    _legacy: bool

    def _start_attributes(self, call: LLMCall, *, content: bool = True) -> dict[str, Any]:
        a: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: call.operation,
            sc.GEN_AI_PROVIDER_NAME: call.provider,
        }
        if call.request_model is not None:
            a[sc.GEN_AI_REQUEST_MODEL] = call.request_model
        if call.server_address is not None:
            a[sc.SERVER_ADDRESS] = call.server_address
            if call.server_port is not None:
                a[sc.SERVER_PORT] = call.server_port
        if call.stream:
            a[sc.GEN_AI_REQUEST_STREAM] = True
        for key, value in (
            (sc.GEN_AI_REQUEST_MAX_TOKENS, call.max_tokens),
            (sc.GEN_AI_REQUEST_TEMPERATURE, call.temperature),
            (sc.GEN_AI_REQUEST_TOP_P, call.top_p),
            (sc.GEN_AI_REQUEST_TOP_K, call.top_k),
            (sc.GEN_AI_REQUEST_FREQUENCY_PENALTY, call.frequency_penalty),
            (sc.GEN_AI_REQUEST_PRESENCE_PENALTY, call.presence_penalty),
            (sc.GEN_AI_REQUEST_SEED, call.seed),
            (sc.GEN_AI_OUTPUT_TYPE, call.output_type),
        ):
            if value is not None:
                a[key] = value
        if call.stop_sequences:
            a[sc.GEN_AI_REQUEST_STOP_SEQUENCES] = list(call.stop_sequences)
        if call.choice_count is not None and call.choice_count != 1:
            a[sc.GEN_AI_REQUEST_CHOICE_COUNT] = call.choice_count
        if call.encoding_formats:
            a[sc.GEN_AI_REQUEST_ENCODING_FORMATS] = list(call.encoding_formats)
        if call.request_attributes:
            a.update(call.request_attributes)
        if self._legacy:
            a[sc.GEN_AI_SYSTEM] = call.system or sc.GEN_AI_SYSTEM_BY_PROVIDER.get(
                call.provider, call.provider
            )
            a[sc.LLM_REQUEST_TYPE] = sc.LLM_REQUEST_TYPE_BY_OPERATION.get(call.operation, call.operation)
            if call.stream:
                a[sc.LLM_IS_STREAMING] = True
            if call.api_base is not None:
                a[sc.GEN_AI_OPENAI_API_BASE] = call.api_base
            if call.legacy_attributes:
                a.update(call.legacy_attributes)
        if content and self.capture.on_span:
            self._request_content(call, a)
        return a

    def _request_content(self, call: LLMCall, a: dict[str, Any]) -> None:
        """Request content: the v1.41.0 JSON form in both profiles (the Dynatrace app reads it first,
        AR-011/AR-043), plus the flat OpenLLMetry form in the dynatrace profile unless the policy
        drops it. Tool definitions too, so that dropping the flat form loses nothing."""
        policy = self.content
        if call.input_messages:
            a[sc.GEN_AI_INPUT_MESSAGES] = policy.input_messages(call.input_messages)
        if call.system_instructions:
            a[sc.GEN_AI_SYSTEM_INSTRUCTIONS] = policy.system_instructions(call.system_instructions)
        elif self._legacy:
            # v1.41.0 keeps a system prompt sent in the chat history (OpenAI chat, Ollama, Bedrock
            # InvokeModel families) in gen_ai.input.messages only, as `latest` does; the Dynatrace
            # app fills its system-prompt column from gen_ai.system_instructions alone (AR-043), so
            # the dynatrace profile also writes those messages' content there.
            instructions = [
                m.content for m in call.input_messages if m.role in _SYSTEM_ROLES and m.content is not None
            ]
            if instructions:
                a[sc.GEN_AI_SYSTEM_INSTRUCTIONS] = policy.system_instructions(instructions)
        if call.tool_definitions:
            a[sc.GEN_AI_TOOL_DEFINITIONS] = policy.tool_definitions(call.tool_definitions)
        if not (self._legacy and policy.legacy_form):
            return
        index = 0
        for instruction in call.system_instructions or ():
            a[f"{sc.GEN_AI_PROMPT}.{index}.role"] = "system"
            a[f"{sc.GEN_AI_PROMPT}.{index}.content"] = policy.flat(instruction)
            index += 1
        for message in call.input_messages:
            prefix = f"{sc.GEN_AI_PROMPT}.{index}"
            a[f"{prefix}.role"] = message.role
            if message.content is not None:
                a[f"{prefix}.content"] = policy.flat(message.content)
            if message.tool_call_id:
                a[f"{prefix}.tool_call_id"] = message.tool_call_id
            self._legacy_tool_calls(prefix, message.tool_calls, a)
            index += 1
        for i, tool in enumerate(call.tool_definitions or ()):
            prefix = f"{sc.LLM_REQUEST_FUNCTIONS}.{i}"
            if tool.get("name") is not None:
                a[f"{prefix}.name"] = str(tool["name"])
            if tool.get("description") is not None:
                a[f"{prefix}.description"] = policy.flat(tool["description"])
            if tool.get("parameters") is not None:
                a[f"{prefix}.parameters"] = policy.flat(tool["parameters"])

    def _legacy_tool_calls(self, prefix: str, calls: list[ToolCall] | None, a: dict[str, Any]) -> None:
        for j, tc in enumerate(calls or ()):
            p = f"{prefix}.tool_calls.{j}"
            if tc.id is not None:
                a[f"{p}.id"] = tc.id
            if tc.name is not None:
                a[f"{p}.name"] = tc.name
            if tc.arguments is not None:
                a[f"{p}.arguments"] = self.content.flat(tc.arguments)

    def _end_attributes(self, call: LLMCall) -> dict[str, Any]:
        a: dict[str, Any] = {}
        if call.response_id is not None:
            a[sc.GEN_AI_RESPONSE_ID] = call.response_id
        if call.response_model is not None:
            a[sc.GEN_AI_RESPONSE_MODEL] = call.response_model
        reasons = [c.finish_reason for c in call.choices if c.finish_reason]
        if reasons:
            a[sc.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
        if call.embedding_vector_size is not None:
            a[sc.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = call.embedding_vector_size
        u = call.usage
        if u is not None:
            if u.input_tokens is not None:
                a[sc.GEN_AI_USAGE_INPUT_TOKENS] = u.input_tokens
            if u.output_tokens is not None:
                a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = u.output_tokens
            if u.cache_read_input_tokens is not None:
                a[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = u.cache_read_input_tokens
            if u.cache_creation_input_tokens is not None:
                a[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = u.cache_creation_input_tokens
            if u.reasoning_output_tokens is not None:
                a[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = u.reasoning_output_tokens
        if call.response_attributes:
            a.update(call.response_attributes)
        if call.error_type is not None:
            a[sc.ERROR_TYPE] = call.error_type
        if self._legacy:
            if u is not None:
                if u.input_tokens is not None:
                    a[sc.GEN_AI_USAGE_PROMPT_TOKENS] = u.input_tokens
                if u.output_tokens is not None:
                    a[sc.GEN_AI_USAGE_COMPLETION_TOKENS] = u.output_tokens
                total = u.total_tokens
                if total is None and u.input_tokens is not None and u.output_tokens is not None:
                    total = u.input_tokens + u.output_tokens
                if total is not None:
                    a[sc.LLM_USAGE_TOTAL_TOKENS] = total
                if u.cache_read_input_tokens is not None:
                    a[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS_LEGACY] = u.cache_read_input_tokens
                if u.cache_creation_input_tokens is not None:
                    a[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS_LEGACY] = u.cache_creation_input_tokens
                cache_type = _cache_type(u)
                if cache_type is not None:
                    a[sc.GEN_AI_PROMPT_CACHING] = cache_type
                    a[sc.GEN_AI_CACHE_TYPE] = cache_type
            fingerprint = call.response_attributes.get(sc.OPENAI_RESPONSE_SYSTEM_FINGERPRINT)
            if fingerprint is not None:
                a[sc.GEN_AI_OPENAI_SYSTEM_FINGERPRINT] = fingerprint
            # Finish reasons and Azure filter verdicts are metadata, not text: kept in every mode.
            if call.prompt_filter_results is not None:
                a[sc.GEN_AI_PROMPT_FILTER_RESULTS] = self.content.flat(call.prompt_filter_results)
            verdict: str | None = None  # the unindexed verdict (AR-016): see _filtered
            verdict_filtered = False
            for position, choice in enumerate(call.choices):
                if choice.finish_reason is not None:
                    a[f"{sc.GEN_AI_COMPLETION}.{position}.finish_reason"] = choice.finish_reason
                if choice.content_filter_results is not None:
                    text = self.content.flat(choice.content_filter_results)
                    a[f"{sc.GEN_AI_COMPLETION}.{position}.content_filter_results"] = text
                    filtered = _filtered(choice)
                    if verdict is None or (filtered and not verdict_filtered):
                        verdict, verdict_filtered = text, filtered
            if verdict is not None:
                a[sc.GEN_AI_COMPLETION_CONTENT_FILTER_RESULTS] = verdict
            if call.guardrail_id is not None or call.guardrail_assessments:
                a.update(guardrails.span_attributes(call))
        if self.capture.on_span and call.choices:
            self._response_content(call, a)
        return a

    def _response_content(self, call: LLMCall, a: dict[str, Any]) -> None:
        """Response content, in the same forms as :meth:`_request_content` (AR-012 / AR-014)."""
        policy = self.content
        a[sc.GEN_AI_OUTPUT_MESSAGES] = policy.output_messages(call.choices)
        if not (self._legacy and policy.legacy_form):
            return
        for position, choice in enumerate(call.choices):
            prefix = f"{sc.GEN_AI_COMPLETION}.{position}"
            a[f"{prefix}.role"] = choice.role
            if choice.content is not None:
                a[f"{prefix}.content"] = policy.flat(choice.content)
            if choice.reasoning:
                a[f"{prefix}.reasoning"] = policy.flat(choice.reasoning)
            self._legacy_tool_calls(prefix, choice.tool_calls, a)

    def metric_attributes(self, call: LLMCall | MetricSnapshot) -> dict[str, Any]:
        a: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: call.operation,
            sc.GEN_AI_PROVIDER_NAME: call.provider,
        }
        if self._legacy:
            a[sc.GEN_AI_SYSTEM] = call.system or sc.GEN_AI_SYSTEM_BY_PROVIDER.get(
                call.provider, call.provider
            )
        if call.request_model is not None:
            a[sc.GEN_AI_REQUEST_MODEL] = call.request_model
        if call.response_model is not None:
            a[sc.GEN_AI_RESPONSE_MODEL] = call.response_model
        if call.server_address is not None:
            a[sc.SERVER_ADDRESS] = call.server_address
            if call.server_port is not None:
                a[sc.SERVER_PORT] = call.server_port
        if call.error_type is not None:
            a[sc.ERROR_TYPE] = call.error_type
        return a


def _cache_type(u: Usage) -> str | None:
    """The span's one ``gen_ai.prompt_caching`` / ``gen_ai.cache.type`` value, None without caching.

    A call can both read and write the cache (Anthropic and Bedrock read a cached prefix and write
    the next breakpoint). ``read`` then wins: the call was a cache hit, which is what Dynatrace's
    cached-vs-non-cached chart counts (AR-022: ``read`` on a hit); the written tokens still reach
    ``gen_ai.usage.cache_creation.input_tokens`` and the ``write`` point of the counter.
    OpenLLMetry let whichever branch ran last (later: the larger count) win; a hit that happens to
    write more than it read would then show as a miss.
    """
    if u.cache_read_input_tokens:
        return sc.CACHE_TYPE_READ
    if u.cache_creation_input_tokens:
        return sc.CACHE_TYPE_WRITE
    return None


def _filtered(choice: Choice) -> bool:
    """True when Azure's filters acted on ``choice``: it ended for them, or a category says so.

    ``gen_ai.completion.content_filter_results`` has no choice index, and a call has one verdict
    per choice: it carries the first choice's, unless a later choice was filtered and the first
    was not (the guardrail cards count interventions, which a clean first choice would hide).
    """
    if choice.finish_reason == sc.FINISH_REASON_CONTENT_FILTER:
        return True
    verdict = choice.content_filter_results
    return isinstance(verdict, Mapping) and any(
        isinstance(category, Mapping) and category.get("filtered") is True for category in verdict.values()
    )


_SYSTEM_ROLES: Final = frozenset({sc.ROLE_SYSTEM, sc.ROLE_DEVELOPER})


def is_flat_content(key: str) -> bool:
    """Keys of the flattened (dynatrace profile) content attributes; the event carries JSON instead."""
    return sc.FLAT_CONTENT_KEY.match(key) is not None


__all__ = ["SpanAttributes", "is_flat_content"]
