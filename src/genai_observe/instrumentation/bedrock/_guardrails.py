"""Guardrails: the guardrail a request names, and what its trace and action say it did.

The trace (sent only when the request asks for it) becomes neutral ``GuardrailAssessment``s: one per
guardrail and input or output, with each policy's findings by category and Bedrock's
``invocationMetrics`` (processing latency, guarded characters). The core turns them into the
guardrail attributes and metrics (``_core/guardrails.py``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..._core import semconv as sc
from ..._core.record import GuardrailAssessment, GuardrailFinding, LLMCall
from ._fields import as_int, as_list, as_map, as_num, as_str

INTERVENED: Final = "INTERVENED"
NONE: Final = "NONE"
# Bounds on what one call keeps: a trace has one input and a few output assessments, and each
# policy a handful of findings; anything beyond is dropped, never grown without limit.
MAX_ASSESSMENTS: Final = 16
MAX_FINDINGS: Final = 64
CUSTOM_WORDS: Final = "customWords"

# Trace policy -> (neutral policy, [(finding list, field naming the finding, kind)])
_POLICIES: Final = (
    ("contentPolicy", sc.GUARDRAIL_POLICY_CONTENT, (("filters", "type", None),)),
    ("topicPolicy", sc.GUARDRAIL_POLICY_TOPIC, (("topics", "name", None),)),
    (
        "wordPolicy",
        sc.GUARDRAIL_POLICY_WORD,
        ((CUSTOM_WORDS, None, None), ("managedWordLists", "type", None)),
    ),
    (
        "sensitiveInformationPolicy",
        sc.GUARDRAIL_POLICY_SENSITIVE_INFORMATION,
        (("piiEntities", "type", sc.GUARDRAIL_KIND_PII), ("regexes", "name", sc.GUARDRAIL_KIND_REGEX)),
    ),
    ("contextualGroundingPolicy", sc.GUARDRAIL_POLICY_CONTEXTUAL_GROUNDING, (("filters", "type", None),)),
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
        call.guardrail_version = version
        call.request_attributes[sc.AWS_BEDROCK_GUARDRAIL_VERSION] = version


def _assessments(trace: Mapping[str, Any]) -> Iterable[tuple[str, str, Mapping[str, Any]]]:
    """(guardrail id, direction, assessment) of a guardrail trace, Converse or InvokeModel shape."""
    for key in ("inputAssessment", "input"):  # {id: assessment}
        for gid, assessment in as_map(trace.get(key)).items():
            yield str(gid), sc.GUARDRAIL_INPUT, as_map(assessment)
    for gid, assessments in as_map(trace.get("outputAssessments")).items():  # {id: [assessment]}
        for assessment in as_list(assessments):
            yield str(gid), sc.GUARDRAIL_OUTPUT, as_map(assessment)
    for item in as_list(trace.get("outputs")):  # [{id: assessment}]
        for gid, assessment in as_map(item).items():
            yield str(gid), sc.GUARDRAIL_OUTPUT, as_map(assessment)


def _findings(assessment: Mapping[str, Any]) -> list[GuardrailFinding]:
    """What each policy found, by category only: the matched text (``match``) is never kept."""
    out: list[GuardrailFinding] = []
    for key, policy, lists in _POLICIES:
        body = as_map(assessment.get(key))
        for list_key, name_key, kind in lists:
            for item in as_list(body.get(list_key)):
                if len(out) >= MAX_FINDINGS:
                    return out
                f = as_map(item)
                name = (
                    sc.GUARDRAIL_WORD_LIST_CUSTOM
                    if list_key == CUSTOM_WORDS
                    else as_str(f.get(name_key or ""))
                )
                out.append(
                    GuardrailFinding(
                        policy=policy,
                        name=name,
                        action=as_str(f.get("action")),
                        confidence=as_str(f.get("confidence")),
                        score=as_num(f.get("score")),
                        kind=kind,
                    )
                )
    return out


def read_assessments(trace: Mapping[str, Any]) -> list[GuardrailAssessment]:
    """The neutral assessments of a trace, with Bedrock's per-assessment invocation metrics."""
    out: list[GuardrailAssessment] = []
    for gid, direction, raw in _assessments(trace):
        if len(out) >= MAX_ASSESSMENTS:
            break
        metrics = as_map(raw.get("invocationMetrics"))
        guarded = as_map(as_map(metrics.get("guardrailCoverage")).get("textCharacters")).get("guarded")
        out.append(
            GuardrailAssessment(
                guardrail_id=gid,
                direction=direction,
                findings=_findings(raw),
                latency_ms=as_num(metrics.get("guardrailProcessingLatency")),
                guarded_characters=as_int(guarded),
            )
        )
    return out


@dataclass(slots=True)
class GuardrailSignals:
    action: str | None = None  # amazon-bedrock-guardrailAction (InvokeModel)
    trace: Mapping[str, Any] | None = None  # the "guardrail" part of the trace
    stop_reason: str | None = None  # Converse stopReason

    def note_action(self, action: Any) -> None:
        if isinstance(action, str) and action and self.action != INTERVENED:
            self.action = action


def apply_guardrail(call: LLMCall, signals: GuardrailSignals) -> None:
    """aws.bedrock.guardrail.action, whether it intervened, and the trace's assessments."""
    assessments = read_assessments(signals.trace) if signals.trace else []
    acted = any(f.action not in (None, NONE) for a in assessments for f in a.findings)
    intervened = signals.action == INTERVENED or signals.stop_reason == "guardrail_intervened" or acted
    if call.guardrail_id is None:
        traced_id = next((a.guardrail_id for a in assessments if a.guardrail_id), None)
        if traced_id is None:
            return  # no guardrail in the request and none in the response
        call.guardrail_id = traced_id  # applied without being named (an enforced guardrail)
        call.response_attributes[sc.AWS_BEDROCK_GUARDRAIL_ID] = traced_id
    call.response_attributes[sc.AWS_BEDROCK_GUARDRAIL_ACTION] = INTERVENED if intervened else NONE
    call.guardrail_intervened = intervened
    call.guardrail_assessments = assessments or None
