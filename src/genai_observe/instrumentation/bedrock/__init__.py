"""Instrumentation of Amazon Bedrock Runtime through ``botocore`` (boto3 and anything built on it).

One wrapper on ``botocore.client.BaseClient._make_api_call`` sees every API call of every client,
including clients created before ``init()``; it records only the ``bedrock-runtime`` operations
InvokeModel, InvokeModelWithResponseStream, Converse and ConverseStream and passes everything else
straight through. Patching is lazy (on ``import botocore``). See docs/bedrock.md.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, ClassVar

from ..._core.diagnostics import report_internal_error
from ..._core.record import LLMCall
from ..._core.recorder import Invocation, Recorder
from ..._core.streams import SyncStreamProxy
from .._kit.base import GenAIInstrumentor
from .._kit.calls import run_sync
from . import _adapter as ad
from ._body import observe_body

__all__ = ["BedrockInstrumentor"]


class BedrockInstrumentor(GenAIInstrumentor):
    """Instruments ``bedrock-runtime`` calls made with botocore/boto3.

    Usable on its own: ``BedrockInstrumentor().instrument(tracer_provider=..., meter_provider=...)``.
    """

    name: ClassVar[str] = "bedrock"
    module: ClassVar[str] = "botocore"
    requirements: ClassVar[tuple[str, ...]] = ("botocore >= 1.34",)

    def _patch(self, module: ModuleType) -> None:
        self._wrap("botocore.client", "BaseClient._make_api_call", self._wrapper())

    def _wrapper(self) -> Callable[..., Any]:
        recorder: Recorder = self.recorder
        keep_text = recorder.capture.any
        operations = ad.OPERATIONS

        def make_api_call(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            call: _Call | None = None
            try:
                operation = args[0] if args else kwargs.get("operation_name")
                # Every other AWS call takes this path: a type check and one set lookup.
                if (
                    isinstance(operation, str)
                    and operation in operations
                    and instance.meta.service_model.service_name == ad.SERVICE
                ):
                    params = args[1] if len(args) > 1 else kwargs.get("api_params")
                    if isinstance(params, dict):
                        call = _Call(operation, params, instance, keep_text)
            except Exception as exc:  # our own failure: the call goes ahead untraced
                report_internal_error("bedrock.dispatch", exc)
            if call is None:
                return wrapped(*args, **kwargs)
            return run_sync(recorder, call.build, wrapped, args, kwargs, call.on_result)

        return make_api_call


class _Call:
    """One Bedrock API call: builds the record, then reads (or wraps) what botocore returned."""

    __slots__ = ("_client", "_keep_text", "_operation", "_params", "_plan")

    def __init__(self, operation: str, params: dict[str, Any], client: Any, keep_text: bool) -> None:
        self._operation = operation
        self._params = params
        self._client = client
        self._keep_text = keep_text
        self._plan: ad.Plan | None = None

    def build(self) -> LLMCall:
        address, port = ad.client_endpoint(self._client)
        call, self._plan = ad.new_call(self._operation, self._params, address, port)
        return call

    def on_result(self, inv: Invocation, result: Any) -> Any:
        plan = self._plan
        if plan is None or not isinstance(result, dict):
            inv.finish()
            return result
        operation = self._operation
        if operation == ad.CONVERSE:
            inv.finish(lambda call: ad.converse_response(call, plan, result))
            return result
        if operation == ad.INVOKE:
            # The body is observed as the caller reads it; the span ends when that reading ends.
            return observe_body(inv, plan, result)
        key = "stream" if operation == ad.CONVERSE_STREAM else "body"
        stream = result.get(key)
        if stream is None:
            inv.finish(lambda call: ad.finish_common(call, plan, result))
            return result
        state: ad.StreamState = (
            ad.ConverseStream(self._keep_text)
            if operation == ad.CONVERSE_STREAM
            else ad.InvokeStream(plan.family, self._keep_text)
        )

        def fill(call: LLMCall) -> None:
            state.fill(call, plan, result)

        # The caller iterates/closes the proxy exactly like botocore's EventStream; the span ends
        # when the stream is exhausted, closed, fails, or is dropped unfinished.
        result[key] = SyncStreamProxy(stream, inv, state.on_event, fill)
        return result
