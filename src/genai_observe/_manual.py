"""A manual API on the same recorder, for providers we do not instrument."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from ._core import semconv as sc
from ._core.config import capture_from_env, profile_from_env
from ._core.diagnostics import report_internal_error
from ._core.modes import CaptureMode, Profile
from ._core.record import Choice, LLMCall, Message, ToolCall, Usage
from ._core.recorder import Invocation, Recorder
from ._errors import ConfigurationError
from ._pipeline import bootstrap as _bootstrap

_log = logging.getLogger("genai_observe")
_lock = threading.Lock()
# Keyed by the handle's serial, its settings generation (0, 0 without init) and the instrumentation scope
# (this module's, and _scopes.py's step spans); at most a few.
_recorders: dict[tuple[int, int, str], Recorder] = {}
_SCOPE = "genai_observe.manual"


def _recorder(scope: str = _SCOPE) -> Recorder:
    """The recorder of the live ``init()`` handle, else of the global providers (no init())."""
    handle = _bootstrap.current()
    generation = (handle._serial, handle._generation) if handle is not None else (0, 0)
    key = (*generation, scope)
    with _lock:
        rec = _recorders.get(key)
        if rec is None:
            if any(k[:2] != generation for k in _recorders):
                _recorders.clear()  # one live handle at a time: never grows
            if handle is not None and handle.enabled:
                s = handle.settings
                rec = Recorder(
                    tracer_provider=handle.tracer_provider,
                    meter_provider=handle.meter_provider,
                    logger_provider=handle.logger_provider,
                    capture=s.capture,
                    profile=s.profile,
                    content=_bootstrap.content_policy(s),
                    scope=scope,
                )
            else:
                try:
                    capture, profile = capture_from_env(), profile_from_env()
                except ConfigurationError as exc:
                    # No init() validated these yet; a recording call must not raise for them.
                    _log.warning("%s; recording with the defaults", exc)
                    capture, profile = CaptureMode.SPAN_ONLY, Profile.DYNATRACE
                rec = Recorder(capture=capture, profile=profile, scope=scope)
            _recorders[key] = rec
        return rec


def _tool_calls(items: Sequence[Mapping[str, Any]] | None) -> list[ToolCall] | None:
    if not items:
        return None
    return [
        ToolCall(
            name=i.get("name"), arguments=i.get("arguments"), id=i.get("id"), type=i.get("type", "function")
        )
        for i in items
    ]


class LLMCallContext:
    """Context manager returned by :func:`llm_call`; records one operation.

    Inside the block call :meth:`set_response` (and :meth:`chunk` per streamed chunk). An exception
    leaving the block marks the operation failed and propagates unchanged.
    """

    def __init__(self, call: LLMCall) -> None:
        self._call = call
        self._inv: Invocation | None = None

    def __enter__(self) -> LLMCallContext:
        self._inv = _recorder().start(self._call)
        if self._inv is not None:
            self._inv.activate()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        inv = self._inv
        if inv is None:
            return
        inv.deactivate()
        if exc is not None:
            inv.fail(exc)
        else:
            inv.finish()

    def chunk(self) -> None:
        """Mark the arrival of a streamed chunk (for time-to-first-chunk and per-chunk timings)."""
        if self._inv is not None:
            self._call.stream = True
            self._inv.chunk()

    def set_response(
        self,
        *,
        content: Any = None,
        role: str = "assistant",
        finish_reason: str | None = None,
        tool_calls: Sequence[Mapping[str, Any]] | None = None,
        response_model: str | None = None,
        response_id: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cache_read_input_tokens: int | None = None,
        cache_creation_input_tokens: int | None = None,
        reasoning_output_tokens: int | None = None,
        embedding_vector_size: int | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        """Record the response. Call again to add further choices (``n > 1``)."""
        try:
            call = self._call
            if content is not None or finish_reason is not None or tool_calls:
                call.choices.append(
                    Choice(
                        index=len(call.choices),
                        role=role,
                        content=content,
                        finish_reason=finish_reason,
                        tool_calls=_tool_calls(tool_calls),
                    )
                )
            call.response_model = response_model or call.response_model
            call.response_id = response_id or call.response_id
            counts = {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cache_read_input_tokens": cache_read_input_tokens,
                "cache_creation_input_tokens": cache_creation_input_tokens,
                "reasoning_output_tokens": reasoning_output_tokens,
            }
            given = {k: v for k, v in counts.items() if v is not None}
            if given:  # merge: counts given in separate calls make one usage record
                usage = call.usage or Usage()
                for key, value in given.items():
                    setattr(usage, key, value)
                call.usage = usage
            if embedding_vector_size is not None:
                call.embedding_vector_size = embedding_vector_size
            if attributes:
                call.response_attributes.update(attributes)
        except Exception as exc:
            report_internal_error("manual.set_response", exc)


def llm_call(
    operation: str = sc.OP_CHAT,
    *,
    provider: str,
    model: str | None = None,
    messages: Sequence[Mapping[str, Any]] | None = None,
    system_instructions: Sequence[Any] | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
    server_address: str | None = None,
    server_port: int | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    stream: bool = False,
    attributes: Mapping[str, Any] | None = None,
) -> LLMCallContext:
    """Record one LLM call made with a client genai_observe does not instrument.

    ``messages`` are dicts with ``role`` and ``content`` (text or a list of parts), optionally
    ``tool_calls``/``tool_call_id``; ``tools`` are dicts with ``name``, ``description`` and
    ``parameters``. Nothing raised here reaches the caller except the block's own exceptions.
    """
    call = LLMCall(
        operation=operation,
        provider=provider,
        request_model=model,
        server_address=server_address,
        server_port=server_port,
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        stream=stream,
    )
    try:
        for m in messages or ():
            call.input_messages.append(
                Message(
                    role=str(m.get("role", "user")),
                    content=m.get("content"),
                    tool_calls=_tool_calls(m.get("tool_calls")),
                    tool_call_id=m.get("tool_call_id"),
                    name=m.get("name"),
                )
            )
        call.system_instructions = list(system_instructions) if system_instructions else None
        call.tool_definitions = [dict(t) for t in tools] if tools else None
        if attributes:
            call.request_attributes.update(attributes)
    except Exception as exc:
        report_internal_error("manual.llm_call", exc)
    return LLMCallContext(call)
