"""The provider-neutral record of one GenAI operation.

A provider adapter fills this from its SDK's request and response objects; only the recorder
(_recorder.py) turns it into spans, metrics and events. Plain slotted classes keep it cheap on
the hot path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Final

from . import semconv as sc


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

    def checked(self) -> Usage | None:
        """A copy keeping only plausible counts (see :func:`token_count`); None if none is left.

        Adapters copy what the provider sent as is; the recorder calls this once, before any count
        reaches an attribute or a metric, so a bogus count is handled in one place for every
        provider.
        """
        counts = {f.name: token_count(getattr(self, f.name)) for f in fields(self)}
        return Usage(**counts) if any(v is not None for v in counts.values()) else None


# The largest count kept: 2**53, the last integer a double holds exactly (histogram sums are
# doubles). Far above any real call, far below the int64 limit past which OTLP encoding fails.
MAX_TOKEN_COUNT: Final = 2**53


def token_count(value: Any) -> int | None:
    """``value`` as a token count, or None when it cannot be one.

    Providers (and proxies imitating them) have sent negative counts, floats and 1e20; exported as
    is they make the OTLP encoder print a traceback per attribute or the SDK warn per point. A
    count that is not a whole number in ``0..MAX_TOKEN_COUNT`` is treated as absent, silently.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= MAX_TOKEN_COUNT else None
    if isinstance(value, float) and value.is_integer() and 0 <= value <= MAX_TOKEN_COUNT:
        return int(value)
    return None


@dataclass(slots=True)
class GuardrailFinding:
    """One thing a guardrail policy found (or, for contextual grounding, scored).

    ``policy`` is a ``semconv.GUARDRAIL_POLICY_*`` value; ``name`` is what was found, never the
    matched text: a content filter type, a topic name, a PII entity type or regex name (``kind``
    says which), a word list (``CUSTOM`` or a managed list), a grounding type.
    """

    policy: str
    name: str | None
    action: str | None = None  # BLOCKED, ANONYMIZED, NONE (detected, let through)
    confidence: str | None = None  # content filters
    score: float | None = None  # contextual grounding
    kind: str | None = None  # sensitive information: GUARDRAIL_KIND_PII | GUARDRAIL_KIND_REGEX


@dataclass(slots=True)
class GuardrailAssessment:
    """One guardrail's assessment of a call's input or of one output (bounded by the provider code)."""

    guardrail_id: str | None
    direction: str  # semconv.GUARDRAIL_INPUT | GUARDRAIL_OUTPUT
    findings: list[GuardrailFinding] = field(default_factory=list)
    latency_ms: float | None = None
    guarded_characters: int | None = None

    def acted(self, policy: str) -> bool:
        return any(f.policy == policy and f.action not in (None, "", "NONE") for f in self.findings)


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
    # A guardrail that ran on the call: its id and version, whether it intervened (None: no
    # guardrail ran, or none is known to have), and what its trace says each policy found.
    guardrail_id: str | None = None
    guardrail_version: str | None = None
    guardrail_intervened: bool | None = None
    guardrail_assessments: list[GuardrailAssessment] | None = None

    # Provider-specific attributes; keys come from _semconv, values are OTel attribute values.
    # request_attributes are set at span start, response_attributes when it ends.
    request_attributes: dict[str, Any] = field(default_factory=dict)
    response_attributes: dict[str, Any] = field(default_factory=dict)
    # Attributes only the dynatrace profile carries (e.g. gen_ai.openai.api_version).
    legacy_attributes: dict[str, Any] = field(default_factory=dict)

    # Outcome
    error_type: str | None = None
