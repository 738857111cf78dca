"""Dynatrace's own audit, applied to what a real OTLP receiver decodes (dynatrace-app-contract.md).

The AI Observability app's audit merges the attributes of every span of one trace (resource
included; the first non-empty value wins) and gives FAIL (a required rule missing), PASS (all
required present) or FULL (every optional rule present too). Issue 15 asked for FULL, with the
primary attributes, for the scenarios a new user tries: OpenAI chat with a system prompt and cached
tokens inside an agent and a conversation, and Azure OpenAI with filter results. (Bedrock's
guardrail and cache rules: tests/instrumentation/test_bedrock.py, tests/core/test_prompt_caching.py.)
"""

from __future__ import annotations

from typing import Any

import genai_observe
from genai_observe._core import semconv as sc
from tests.rig.openai_server import OpenAIMockServer
from tests.rig.otlp_receiver import OTLPReceiver

# (rule, attribute names, any one of which satisfies it), from the contract's span table.
REQUIRED = [
    ("AR-002/AR-001", ("gen_ai.provider.name", "gen_ai.system")),
    ("AR-003", ("service.name",)),
    ("AR-004", ("gen_ai.request.model",)),
    ("AR-005", ("gen_ai.response.model",)),
    ("AR-006", ("gen_ai.usage.input_tokens",)),  # the primary names: no fallback accepted here
    ("AR-007", ("gen_ai.usage.output_tokens",)),
]
OPTIONAL = [
    ("AR-008", ("gen_ai.operation.name",)),
    ("AR-009", ("llm.request.type",)),
    ("AR-010", ("gen_ai.agent.name",)),
    ("AR-011", ("gen_ai.input.messages",)),
    ("AR-012", ("gen_ai.output.messages",)),
    ("AR-043", ("gen_ai.system_instructions",)),
    ("AR-041", ("gen_ai.conversation.id",)),
    ("AR-042", ("gen_ai.request.temperature",)),
]
OPENAI = [("AR-022", ("gen_ai.prompt_caching",)), ("AR-023", ("gen_ai.cache.type",))]
AZURE = [
    ("AR-015", ("gen_ai.prompt.prompt_filter_results",)),
    ("AR-016", ("gen_ai.completion.content_filter_results",)),
]


def merged(receiver: OTLPReceiver) -> dict[str, Any]:
    """The audit's view of the one trace: every span's attributes and its resource, first wins."""
    spans = receiver.spans()
    assert len({s.trace_id for s in spans}) == 1, "one trace"
    out: dict[str, Any] = {}
    for span in spans:
        for key, value in {**span.resource_attributes, **span.attributes}.items():
            if value not in (None, "", [], ()):
                out.setdefault(key, value)
    return out


def verdict(attributes: dict[str, Any], required: list[Any], optional: list[Any]) -> tuple[str, list[str]]:
    missing_required = [rule for rule, names in required if not any(n in attributes for n in names)]
    missing_optional = [rule for rule, names in optional if not any(n in attributes for n in names)]
    if missing_required:
        return "FAIL", missing_required
    return ("FULL" if not missing_optional else "PASS"), missing_optional


def run(receiver: OTLPReceiver, server: OpenAIMockServer, *, azure: bool) -> dict[str, Any]:
    handle = genai_observe.init(
        endpoint=receiver.url,
        service_name="audit-app",
        capture_content=True,
        instrumentations=["openai"],
        metric_export_interval_ms=60_000,
    )
    server.script(usage={"cached_tokens": 40})
    client = server.azure_client() if azure else server.client()
    with genai_observe.agent("travel-planner"), genai_observe.conversation("thread-42"):
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "system", "content": "You plan trips."},
                {"role": "user", "content": "Three days in Lisbon?"},
            ],
            temperature=0.2,
        )
    handle.shutdown()
    return merged(receiver)


def test_openai_chat_is_full(otlp_receiver: OTLPReceiver, openai_server: OpenAIMockServer) -> None:
    attributes = run(otlp_receiver, openai_server, azure=False)
    assert verdict(attributes, REQUIRED, OPTIONAL + OPENAI) == ("FULL", [])
    # The prompts table's content is the user's prompt, the system prompt has its own column.
    assert "Three days in Lisbon?" in attributes["gen_ai.input.messages"]
    assert "You plan trips." in attributes["gen_ai.system_instructions"]
    # AR-025, AR-044/AR-024, AR-045: the metrics the dashboards chart.
    names = {m.name for m in otlp_receiver.metrics()}
    assert {sc.METRIC_OPERATION_DURATION, sc.METRIC_TOKEN_USAGE, sc.METRIC_PROMPT_CACHING} <= names
    token_types = {
        p.attributes[sc.GEN_AI_TOKEN_TYPE]
        for p in otlp_receiver.metrics(sc.METRIC_TOKEN_USAGE)[0].data_points
    }
    assert {"input", "output"} <= token_types


def test_azure_chat_is_full(otlp_receiver: OTLPReceiver, openai_server: OpenAIMockServer) -> None:
    attributes = run(otlp_receiver, openai_server, azure=True)
    assert verdict(attributes, REQUIRED + AZURE, OPTIONAL) == ("FULL", [])
