"""What the request said, kept for reading the response, and what every successful response adds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..._core import semconv as sc
from ..._core.record import LLMCall
from ._fields import as_map
from ._models import UNKNOWN, ModelRef


@dataclass(slots=True)
class Plan:
    """What the request said, kept for reading the response."""

    operation: str
    ref: ModelRef
    family: str = UNKNOWN


def finish_common(call: LLMCall, plan: Plan, result: Any) -> None:
    """What every successful response adds: the AWS request id, the answering model."""
    request_id = as_map(as_map(result).get("ResponseMetadata")).get("RequestId")
    if isinstance(request_id, str) and request_id:
        call.response_attributes[sc.AWS_REQUEST_ID] = request_id
    if call.response_model is None and plan.ref.foundation:
        call.response_model = plan.ref.model  # a foundation model id is the model that answered
