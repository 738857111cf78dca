"""Guardrail assessments (``LLMCall.guardrail_*``) as span attributes and metric points.

The names are those Dynatrace reads (docs/bedrock.md#guardrails): the span attributes its audit
and guardrail cards look for, and OpenLLMetry's Bedrock guardrail metrics its dashboard charts.
What was matched (the words, the PII itself) is content and never leaves: findings carry only
the category a policy found. Pure functions: the recorder writes the attributes at span end and
records the points on the metrics worker thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final

from opentelemetry.metrics import Counter, Histogram, Meter

from . import semconv as sc
from .local_metrics import CounterSpec, HistogramSpec, sdk_counters, sdk_histograms
from .record import GuardrailAssessment, GuardrailFinding, LLMCall

# policy -> the span attribute listing what it found (contextual grounding has its own score)
_LISTED: Final = (
    (sc.GUARDRAIL_POLICY_CONTENT, sc.GEN_AI_BEDROCK_GUARDRAIL_CONTENT),
    (sc.GUARDRAIL_POLICY_SENSITIVE_INFORMATION, sc.GEN_AI_BEDROCK_GUARDRAIL_SENSITIVE_INFO),
    (sc.GUARDRAIL_POLICY_TOPIC, sc.GEN_AI_BEDROCK_GUARDRAIL_TOPICS),
    (sc.GUARDRAIL_POLICY_WORD, sc.GEN_AI_BEDROCK_GUARDRAIL_WORDS),
)
_POLICY_ORDER: Final = (
    sc.GUARDRAIL_POLICY_CONTENT,
    sc.GUARDRAIL_POLICY_TOPIC,
    sc.GUARDRAIL_POLICY_WORD,
    sc.GUARDRAIL_POLICY_SENSITIVE_INFORMATION,
    sc.GUARDRAIL_POLICY_CONTEXTUAL_GROUNDING,
)
# policy -> the metric each of its findings counts in
_FINDING_METRIC: Final = {
    sc.GUARDRAIL_POLICY_CONTENT: sc.METRIC_GUARDRAIL_CONTENT,
    sc.GUARDRAIL_POLICY_SENSITIVE_INFORMATION: sc.METRIC_GUARDRAIL_SENSITIVE_INFO,
    sc.GUARDRAIL_POLICY_TOPIC: sc.METRIC_GUARDRAIL_TOPICS,
    sc.GUARDRAIL_POLICY_WORD: sc.METRIC_GUARDRAIL_WORDS,
}


def _findings(assessments: Iterable[GuardrailAssessment]) -> Iterator[GuardrailFinding]:
    for assessment in assessments:
        yield from assessment.findings


def span_attributes(call: LLMCall) -> dict[str, Any]:
    """The dynatrace profile's guardrail attributes of a call (empty when no guardrail ran).

    ``activation`` is a boolean (did the guardrail intervene), the per-policy attributes the
    sorted distinct categories found (string arrays: what the cards list and filter on), and
    ``contextual`` the lowest grounding score with its ``grounding_type`` (the one that decides
    whether the answer is blocked); every score goes to the metric.
    """
    a: dict[str, Any] = {}
    if call.guardrail_id is not None:
        a[sc.GEN_AI_GUARDRAIL_ID] = call.guardrail_id
    if call.guardrail_version is not None:
        a[sc.GEN_AI_GUARDRAIL_VERSION] = call.guardrail_version
    if call.guardrail_intervened is not None:
        a[sc.GEN_AI_BEDROCK_GUARDRAIL_ACTIVATION] = call.guardrail_intervened
    assessments = call.guardrail_assessments
    if not assessments:
        return a
    found: dict[str, set[str]] = {}
    lowest: GuardrailFinding | None = None
    for f in _findings(assessments):
        if f.policy == sc.GUARDRAIL_POLICY_CONTEXTUAL_GROUNDING:
            if f.score is not None and (lowest is None or lowest.score is None or f.score < lowest.score):
                lowest = f
        elif f.name:
            found.setdefault(f.policy, set()).add(f.name)
    for policy, key in _LISTED:
        names = found.get(policy)
        if names:
            a[key] = sorted(names)
    if lowest is not None and lowest.score is not None:
        a[sc.GEN_AI_BEDROCK_GUARDRAIL_CONTEXTUAL] = float(lowest.score)
        if lowest.name:
            a[sc.GEN_AI_GUARDRAIL_GROUNDING_TYPE] = lowest.name
    return a


def metric_points(
    guardrail_id: str | None,
    intervened: bool | None,
    assessments: Sequence[GuardrailAssessment] | None,
    base: dict[str, Any],
) -> list[tuple[str, float, dict[str, Any]]]:
    """(metric name, value, attributes) of a call's guardrail metrics.

    Only what an assessment reports makes a point: a policy that did not run, or found nothing,
    adds no series. ``activation`` counts 1 per policy and direction that acted (an action other
    than NONE; once a call however many outputs were assessed), or, when the guardrail
    intervened and no trace says which policy acted, 1 without those two dimensions (the
    policy is never guessed).
    """
    points: list[tuple[str, float, dict[str, Any]]] = []
    if guardrail_id is None and not assessments:
        return points
    guard = {**base, sc.GEN_AI_GUARDRAIL_ID: guardrail_id or ""}
    acted: set[tuple[str, str, str]] = set()  # (guardrail, direction, policy): counted once a call
    for assessment in assessments or ():
        at = {**guard, sc.GEN_AI_GUARDRAIL_TYPE: assessment.direction}
        if assessment.guardrail_id and assessment.guardrail_id != guardrail_id:
            at[sc.GEN_AI_GUARDRAIL_ID] = assessment.guardrail_id
        for policy in _POLICY_ORDER:
            key = (at[sc.GEN_AI_GUARDRAIL_ID], assessment.direction, policy)
            if key not in acted and assessment.acted(policy):
                acted.add(key)
                activation = {**at, sc.GEN_AI_GUARDRAIL_POLICY: policy}
                points.append((sc.METRIC_GUARDRAIL_ACTIVATIONS, 1, activation))
        for f in assessment.findings:
            fa = dict(at)
            if f.action:
                fa[sc.GEN_AI_GUARDRAIL_ACTION] = f.action
            if f.policy == sc.GUARDRAIL_POLICY_CONTEXTUAL_GROUNDING:
                if f.score is not None:
                    if f.name:
                        fa[sc.GEN_AI_GUARDRAIL_GROUNDING_TYPE] = f.name
                    points.append((sc.METRIC_GUARDRAIL_CONTEXTUAL, float(f.score), fa))
                continue
            metric = _FINDING_METRIC.get(f.policy)
            if metric is None:
                continue
            if f.name:
                fa[_dimension(f)] = f.name
            if f.confidence:
                fa[sc.GEN_AI_GUARDRAIL_CONFIDENCE] = f.confidence
            points.append((metric, 1, fa))
        if assessment.guarded_characters is not None:
            points.append((sc.METRIC_GUARDRAIL_COVERAGE, assessment.guarded_characters, at))
        if assessment.latency_ms is not None:
            points.append((sc.METRIC_GUARDRAIL_LATENCY, assessment.latency_ms, at))
    if intervened and not acted:
        points.append((sc.METRIC_GUARDRAIL_ACTIVATIONS, 1, guard))
    return points


def _dimension(f: GuardrailFinding) -> str:
    if f.policy == sc.GUARDRAIL_POLICY_CONTENT:
        return sc.GEN_AI_GUARDRAIL_CONTENT
    if f.policy == sc.GUARDRAIL_POLICY_TOPIC:
        return sc.GEN_AI_GUARDRAIL_TOPIC
    if f.policy == sc.GUARDRAIL_POLICY_WORD:
        return sc.GEN_AI_GUARDRAIL_WORD_LIST
    return sc.GEN_AI_GUARDRAIL_PATTERN if f.kind == sc.GUARDRAIL_KIND_REGEX else sc.GEN_AI_GUARDRAIL_PII


_COUNTERS: Final = (
    CounterSpec(
        sc.METRIC_GUARDRAIL_ACTIVATIONS,
        "{activation}",
        "Guardrail interventions, by policy type and input/output.",
    ),
    CounterSpec(sc.METRIC_GUARDRAIL_CONTENT, "{finding}", "Guardrail content filter findings."),
    CounterSpec(
        sc.METRIC_GUARDRAIL_SENSITIVE_INFO,
        "{finding}",
        "Guardrail sensitive information findings (PII entities, regexes).",
    ),
    CounterSpec(sc.METRIC_GUARDRAIL_TOPICS, "{finding}", "Guardrail denied topic findings."),
    CounterSpec(sc.METRIC_GUARDRAIL_WORDS, "{finding}", "Guardrail word filter findings."),
    CounterSpec(sc.METRIC_GUARDRAIL_COVERAGE, "{char}", "Characters the guardrail assessed."),
)
_HISTOGRAMS: Final = (
    HistogramSpec(
        sc.METRIC_GUARDRAIL_CONTEXTUAL,
        "1",
        "Guardrail contextual grounding scores, by grounding type.",
        sc.GUARDRAIL_SCORE_BUCKETS,
    ),
    HistogramSpec(
        sc.METRIC_GUARDRAIL_LATENCY,
        "ms",
        "Guardrail processing latency per assessment.",
        sc.GUARDRAIL_LATENCY_BUCKETS_MS,
    ),
)


def instruments(meter: Meter) -> dict[str, Counter | Histogram]:
    """The guardrail family (docs/bedrock.md#guardrails), by metric name."""
    return {**sdk_counters(meter, _COUNTERS), **sdk_histograms(meter, _HISTOGRAMS)}
