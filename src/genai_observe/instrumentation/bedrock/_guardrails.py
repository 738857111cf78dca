"""Guardrails: the guardrail a request names, and what its trace and action say it did."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..._core import semconv as sc
from ..._core.record import LLMCall
from ._fields import as_list, as_map

INTERVENED: Final = "INTERVENED"
NONE: Final = "NONE"
# Guardrail assessment policy -> gen_ai.guardrail.type
_POLICY_TYPES: Final = (
    ("contentPolicy", "content"),
    ("topicPolicy", "topic"),
    ("wordPolicy", "word"),
    ("sensitiveInformationPolicy", "sensitive_information"),
    ("contextualGroundingPolicy", "contextual_grounding"),
)


def guardrail_id(identifier: str) -> str:
    """A guardrail ARN names the guardrail after ``guardrail/``; plain ids stay as they are."""
    if identifier.startswith("arn:") and "guardrail/" in identifier:
        return identifier.rsplit("guardrail/", 1)[-1] or identifier
    return identifier


def guardrail_request(call: LLMCall, identifier: Any, version: Any) -> None:
    if not isinstance(identifier, str) or not identifier:
        return
    gid = guardrail_id(identifier)
    call.guardrail_id = gid
    call.request_attributes[sc.AWS_BEDROCK_GUARDRAIL_ID] = gid
    if isinstance(version, str) and version:
        call.request_attributes[sc.AWS_BEDROCK_GUARDRAIL_VERSION] = version


def _assessments(trace: Mapping[str, Any]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    """(guardrail id, assessment) pairs of a guardrail trace, Converse or InvokeModel shape."""
    for key in ("inputAssessment", "input"):  # {id: assessment}
        for gid, assessment in as_map(trace.get(key)).items():
            yield str(gid), as_map(assessment)
    for gid, assessments in as_map(trace.get("outputAssessments")).items():  # {id: [assessment]}
        for assessment in as_list(assessments):
            yield str(gid), as_map(assessment)
    for item in as_list(trace.get("outputs")):  # [{id: assessment}]
        for gid, assessment in as_map(item).items():
            yield str(gid), as_map(assessment)


def _policy_acted(policy: Mapping[str, Any]) -> bool:
    """True when any finding of the policy has an action other than NONE (BLOCKED, ANONYMIZED)."""
    for findings in policy.values():
        for finding in as_list(findings):
            action = as_map(finding).get("action")
            if isinstance(action, str) and action and action != NONE:
                return True
    return False


def intervened_policies(trace: Mapping[str, Any]) -> tuple[list[str], str | None]:
    """(policy types that acted, in a fixed order; the first guardrail id named in the trace)."""
    acted: set[str] = set()
    first_id: str | None = None
    for gid, assessment in _assessments(trace):
        first_id = first_id or gid
        for key, kind in _POLICY_TYPES:
            if kind not in acted and _policy_acted(as_map(assessment.get(key))):
                acted.add(kind)
    return [kind for _, kind in _POLICY_TYPES if kind in acted], first_id


@dataclass(slots=True)
class GuardrailSignals:
    action: str | None = None  # amazon-bedrock-guardrailAction (InvokeModel)
    trace: Mapping[str, Any] | None = None  # the "guardrail" part of the trace
    stop_reason: str | None = None  # Converse stopReason

    def note_action(self, action: Any) -> None:
        if isinstance(action, str) and action and self.action != INTERVENED:
            self.action = action


def apply_guardrail(call: LLMCall, signals: GuardrailSignals) -> None:
    """aws.bedrock.guardrail.action and the activations: only types that acted, only if it intervened."""
    types: list[str] = []
    traced_id: str | None = None
    if signals.trace:
        types, traced_id = intervened_policies(signals.trace)
    intervened = signals.action == INTERVENED or signals.stop_reason == "guardrail_intervened" or bool(types)
    if call.guardrail_id is None:
        if traced_id is None:
            return  # no guardrail in the request and none in the response
        call.guardrail_id = traced_id  # applied without being named (an enforced guardrail)
        call.response_attributes[sc.AWS_BEDROCK_GUARDRAIL_ID] = traced_id
    call.response_attributes[sc.AWS_BEDROCK_GUARDRAIL_ACTION] = INTERVENED if intervened else NONE
    if intervened and types:
        call.guardrail_activations = types
