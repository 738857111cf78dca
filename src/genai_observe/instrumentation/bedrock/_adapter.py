"""Reads ``bedrock-runtime`` requests and responses into the neutral :class:`LLMCall`: the entry
points the wrapper calls (the request's record and plan, each operation's response reader).

botocore hands us plain dicts (the API parameters, the parsed response), and InvokeModel bodies
are each model family's own JSON; one reader per family turns them into the record. Nothing here
imports botocore.

Conventions (see docs/bedrock.md):

* ``gen_ai.request.model``: the foundation model id. Cross-region inference profile ids lose their
  geography prefix (``us.anthropic.claude-...`` -> ``anthropic.claude-...``); ARNs of foundation
  models and system inference profiles resolve to that id; ARNs of opaque resources
  (provisioned/imported/custom models, application inference profiles, prompt routers, SageMaker
  endpoints) become their ``type/id`` resource part. The id as given goes to ``aws.bedrock.model_id``
  when it differs.
* ``Usage.input_tokens`` includes cache reads and writes: Bedrock reports input tokens without them
  (Converse ``inputTokens``, Anthropic ``input_tokens``, the token-count headers), so they are added.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ..._core import semconv as sc
from ..._core.diagnostics import report_internal_error
from ..._core.record import LLMCall
from .._kit.endpoints import host_port
from ._converse import converse_request, converse_response
from ._invoke import MAX_BODY_BYTES, invoke_request, invoke_response
from ._models import MEDIA, ModelRef, resolve_model
from ._plan import Plan, finish_common
from ._streams import ConverseStream, InvokeStream, StreamState
from ._tokens import content_length

# The surface the wrapper (__init__.py) and the body proxy (_body.py) use; the readers behind it
# live in modules named for what they read: _models (ids, families), _content (blocks), _tokens,
# _guardrails, _converse, _invoke (per-family bodies), _streams (accumulators), _fields.
__all__ = [
    "AWS_BEDROCK_MODEL_ID",
    "CONVERSE",
    "CONVERSE_STREAM",
    "INVOKE",
    "INVOKE_STREAM",
    "MAX_BODY_BYTES",
    "MEDIA",
    "OPERATIONS",
    "SERVICE",
    "ConverseStream",
    "InvokeStream",
    "ModelRef",
    "Plan",
    "StreamState",
    "client_endpoint",
    "content_length",
    "converse_response",
    "finish_common",
    "invoke_response",
    "new_call",
    "resolve_model",
]

AWS_BEDROCK_MODEL_ID: Final = sc.AWS_BEDROCK_MODEL_ID

SERVICE: Final = "bedrock-runtime"
INVOKE: Final = "InvokeModel"
INVOKE_STREAM: Final = "InvokeModelWithResponseStream"
CONVERSE: Final = "Converse"
CONVERSE_STREAM: Final = "ConverseStream"
OPERATIONS: Final = frozenset({INVOKE, INVOKE_STREAM, CONVERSE, CONVERSE_STREAM})


def client_endpoint(client: Any) -> tuple[str | None, int | None]:
    try:
        url = client.meta.endpoint_url
    except Exception:
        return None, None
    return host_port(url) if isinstance(url, str) else (None, None)


def new_call(
    operation: str, params: Mapping[str, Any], address: str | None, port: int | None
) -> tuple[LLMCall, Plan]:
    """The record and plan for one call; never raises for odd input (the call still gets a span)."""
    model_id = params.get("modelId")
    ref = resolve_model(model_id) if isinstance(model_id, str) and model_id else ModelRef("", "", False)
    stream = operation in (INVOKE_STREAM, CONVERSE_STREAM)
    call = LLMCall(
        operation=sc.OP_CHAT,
        provider=sc.PROVIDER_AWS_BEDROCK,
        request_model=ref.model or None,
        server_address=address,
        server_port=port,
        stream=stream,
    )
    if ref.given and ref.given != ref.model:
        call.request_attributes[AWS_BEDROCK_MODEL_ID] = ref.given
    plan = Plan(operation, ref)
    try:
        if operation in (CONVERSE, CONVERSE_STREAM):
            converse_request(call, params)
        else:
            invoke_request(call, plan, params)
    except Exception as exc:
        report_internal_error("bedrock.request", exc)
    return call, plan
