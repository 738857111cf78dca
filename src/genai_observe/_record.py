"""The provider-neutral record of one GenAI operation.

A provider adapter fills this from its SDK's request and response objects; only the recorder
(_recorder.py) turns it into spans, metrics and events. Plain slotted classes keep it cheap on
the hot path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import _semconv as sc


@dataclass(slots=True)
class ToolCall:
    """A tool/function call requested by the model (or echoed back in the input)."""

    name: str | None = None
    arguments: Any = None  # usually a JSON string as the provider sent it
    id: str | None = None
    type: str = "function"


@dataclass(slots=True)
class Message:
    """One input message. ``content`` is text, a list of parts (dicts), or None."""

    role: str
    content: Any = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(slots=True)
class Choice:
    """One output choice (candidate) of the model."""

    index: int = 0
    role: str = "assistant"
    content: Any = None
    finish_reason: str | None = None
    tool_calls: list[ToolCall] | None = None
    content_filter_results: Any = None  # Azure OpenAI; kept as the provider's structure
    reasoning: Any = None  # thinking/reasoning text where the provider returns it


@dataclass(slots=True)
class Usage:
    """Token counts as reported by the provider.

    ``input_tokens`` follows v1.41.0: it includes cached input tokens. Adapters for providers that
    report cached tokens separately (Anthropic) add them before filling this in.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    reasoning_output_tokens: int | None = None
    total_tokens: int | None = None


@dataclass(slots=True)
class LLMCall:
    """Everything known about one operation: request first, then response or error."""

    operation: str = sc.OP_CHAT
    provider: str = sc.PROVIDER_OPENAI
    system: str | None = None  # gen_ai.system override; default derives from provider
    request_model: str | None = None
    server_address: str | None = None
    server_port: int | None = None
    api_base: str | None = None  # base URL without credentials or query (gen_ai.openai.api_base)
    stream: bool = False

    # Request parameters (None: not sent)
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    stop_sequences: Sequence[str] | None = None
    seed: int | None = None
    choice_count: int | None = None
    encoding_formats: Sequence[str] | None = None
    output_type: str | None = None

    # Request content
    input_messages: list[Message] = field(default_factory=list)
    system_instructions: list[Any] | None = None  # text or parts, when separate from messages
    tool_definitions: list[Mapping[str, Any]] | None = None  # {"name", "description", "parameters"}
    prompt_filter_results: Any = None

    # Response
    response_id: str | None = None
    response_model: str | None = None
    choices: list[Choice] = field(default_factory=list)
    usage: Usage | None = None
    embedding_vector_size: int | None = None
    embedding_count: int | None = None
    # One entry per guardrail policy type that intervened (e.g. "content", "topic", "word",
    # "sensitive_information", "contextual_grounding"); counted by the recorder, never guessed.
    guardrail_activations: list[str] | None = None
    guardrail_id: str | None = None

    # Provider-specific attributes; keys come from _semconv, values are OTel attribute values.
    # request_attributes are set at span start, response_attributes when it ends.
    request_attributes: dict[str, Any] = field(default_factory=dict)
    response_attributes: dict[str, Any] = field(default_factory=dict)
    # Attributes only the dynatrace profile carries (e.g. gen_ai.openai.api_version).
    legacy_attributes: dict[str, Any] = field(default_factory=dict)

    # Outcome
    error_type: str | None = None
