"""``record_evaluation()``: the result of judging one GenAI response, linked to its span.

The AI Observability app's evaluation view reads business events of type
``gen_ai.evaluation.result`` and de-duplicates them on span id + evaluation name, so each result
names the span it judges: the current span by default, or one picked by ``span_context`` or by
``response_id`` (looked up in the bounded index the recorder fills at span end). The same result
is the OpenTelemetry event ``gen_ai.evaluation.result`` (a log record in the evaluated span's
trace context) wherever logs are exported.

Misusing the API (a wrong type, a blank name, both selectors at once) raises ``TypeError`` or
``ValueError`` naming the argument, as a programming error should. Nothing that depends on run
time does: no current span, an unknown or forgotten response id, a full queue or no ``init()``
only make it return False (logged once at debug level).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import get_logger_provider
from opentelemetry.trace import SpanContext

from ._core import semconv as sc
from ._core.content import ContentPolicy
from ._core.diagnostics import report_internal_error
from ._pipeline import bizevents as _bizevents
from ._version import __version__

_log = logging.getLogger("genai_observe")
_reported: set[str] = set()

_CONTENT_ARGUMENTS = frozenset({"explanation", "question", "answer"})


def _once(reason: str) -> None:
    if reason not in _reported:
        _reported.add(reason)  # bounded: reasons are literals
        _log.debug("genai_observe: evaluation result not recorded: %s (reported once)", reason)


def _check(
    name: object, score_value: object, texts: Mapping[str, object], span_context: object, response_id: object
) -> None:
    """Programming errors, named: raised before anything is recorded."""
    if not isinstance(name, str):
        raise TypeError(f"record_evaluation: name must be a str, not {type(name).__name__}")
    if not name.strip():
        raise ValueError("record_evaluation: name must not be blank")
    if score_value is not None and (
        isinstance(score_value, bool)
        or not isinstance(score_value, (int, float))
        or not math.isfinite(score_value)
    ):
        raise TypeError("record_evaluation: score_value must be a finite int or float")
    for argument, value in texts.items():
        if value is not None and not isinstance(value, str):
            raise TypeError(f"record_evaluation: {argument} must be a str, not {type(value).__name__}")
    if span_context is not None and not isinstance(span_context, SpanContext):
        raise TypeError("record_evaluation: span_context must be an opentelemetry.trace.SpanContext")
    if response_id is not None and not isinstance(response_id, str):
        raise TypeError("record_evaluation: response_id must be a str")
    if span_context is not None and response_id is not None:
        raise ValueError("record_evaluation: pass span_context or response_id, not both")


def record_evaluation(
    name: str,
    *,
    score_value: float | None = None,
    score_label: str | None = None,
    explanation: str | None = None,
    method: str | None = None,
    scoring_format: str | None = None,
    evaluation_type: str | None = None,
    version: str | None = None,
    spec_id: str | None = None,
    question: str | None = None,
    answer: str | None = None,
    error_type: str | None = None,
    span_context: SpanContext | None = None,
    response_id: str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> bool:
    """Record one evaluation result for a GenAI span; True when it was recorded.

    ``score_label`` is the verdict the app shows (``pass``/``fail``); ``method`` e.g.
    ``llm_as_judge``; ``scoring_format`` ``binary`` or ``numeric``; ``evaluation_type``
    ``ready_made`` or ``custom``. ``explanation``, ``question`` and ``answer`` quote content: they
    are kept only with content capture on, masked and capped like prompts.
    """
    texts = {
        "score_label": score_label,
        "method": method,
        "scoring_format": scoring_format,
        "evaluation_type": evaluation_type,
        "version": version,
        "spec_id": spec_id,
        "error_type": error_type,
        "explanation": explanation,
        "question": question,
        "answer": answer,
    }
    _check(name, score_value, texts, span_context, response_id)
    if attributes is not None and not isinstance(attributes, Mapping):
        raise TypeError("record_evaluation: attributes must be a mapping")
    try:
        return _record(name, score_value, texts, span_context, response_id, attributes)
    except Exception as exc:
        report_internal_error("evaluation.record", exc)
        return False


_FIELDS = {
    "score_label": sc.GEN_AI_EVALUATION_SCORE_LABEL,
    "method": sc.GEN_AI_EVALUATION_METHOD,
    "scoring_format": sc.GEN_AI_EVALUATION_SCORING_FORMAT,
    "evaluation_type": sc.GEN_AI_EVALUATION_TYPE,
    "version": sc.GEN_AI_EVALUATION_VERSION,
    "spec_id": sc.GEN_AI_EVALUATION_SPEC_ID,
    "error_type": sc.ERROR_TYPE,
    "explanation": sc.GEN_AI_EVALUATION_EXPLANATION,
    "question": sc.GEN_AI_EVALUATION_INPUT_QUESTION,
    "answer": sc.GEN_AI_EVALUATION_INPUT_ANSWER,
}


def _record(
    name: str,
    score_value: float | None,
    texts: Mapping[str, str | None],
    span_context: SpanContext | None,
    response_id: str | None,
    attributes: Mapping[str, Any] | None,
) -> bool:
    from ._core.config import capture_from_env
    from ._core.modes import CaptureMode
    from ._pipeline import bootstrap as _bootstrap

    provider: Any = None
    model: Any = None
    if response_id is not None:
        found = _bizevents.RESPONSES.find(response_id)
        if found is None:
            _once("unknown or forgotten response_id")
            return False
        context, provider, model = found
    elif span_context is not None:
        context = span_context
    else:
        span = trace.get_current_span()
        context = span.get_span_context()
        provider = _bizevents._span_attribute(span, sc.GEN_AI_PROVIDER_NAME)
        model = _bizevents._span_attribute(span, sc.GEN_AI_RESPONSE_MODEL) or _bizevents._span_attribute(
            span, sc.GEN_AI_REQUEST_MODEL
        )
        response_id = _bizevents._span_attribute(span, sc.GEN_AI_RESPONSE_ID)
    if not context.is_valid:
        _once("no span to evaluate (no current span and no span_context or response_id)")
        return False

    handle = _bootstrap.current()
    if handle is not None and handle.enabled:
        capture = handle.settings.capture
        policy = ContentPolicy(handle.settings.max_content_length, handle.settings.redact)
    else:
        try:
            capture = capture_from_env()
        except Exception:  # an invalid variable: no content, rather than raising
            capture = CaptureMode.NO_CONTENT
        policy = ContentPolicy()

    pipeline = _bizevents.active()
    service = pipeline.service if pipeline is not None else ""
    fields: dict[str, Any] = {sc.EVENT_TYPE: sc.EVENT_TYPE_EVALUATION_RESULT}
    if service:
        fields[sc.EVENT_PROVIDER] = service
        fields[sc.SERVICE_NAME] = service
    fields[sc.GEN_AI_EVALUATION_NAME] = name.strip()
    if score_value is not None:
        fields[sc.GEN_AI_EVALUATION_SCORE_VALUE] = score_value
    for argument, key in _FIELDS.items():
        value = texts.get(argument)
        if value is None:
            continue
        if argument in _CONTENT_ARGUMENTS:
            if not capture.any:
                continue  # content: only with capture on
            value = policy.text(value)
        fields[key] = value
    if isinstance(response_id, str):
        fields[sc.GEN_AI_RESPONSE_ID] = response_id
    if isinstance(provider, str):
        fields[sc.GEN_AI_PROVIDER_NAME] = provider
    if isinstance(model, str):
        fields[sc.GEN_AI_MODEL] = model
    for key, value in (attributes or {}).items():
        if isinstance(key, str) and key not in fields and isinstance(value, (str, bool, int, float)):
            fields[key] = policy.text(value) if isinstance(value, str) else value

    now = time.time_ns()
    item = _bizevents.Item(_bizevents.EVALUATION, fields, context, now)
    if pipeline is not None:
        pipeline.submit(item)
        return True
    # No init(): the OpenTelemetry event only, into the global logger provider (a no-op unless the
    # application set one up).
    logger = get_logger_provider().get_logger("genai_observe.events", __version__)
    _bizevents.OtlpLogEmitter(logger).emit(item)
    return True
