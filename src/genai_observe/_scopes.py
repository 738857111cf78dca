"""The public step API: workflows, tasks, agents and tools of the app's own code, conversations,
and the caller's own attributes, as decorators and (async) context managers.

    @genai_observe.agent("planner")
    def plan(goal): ...                      # or async def, a generator, an async generator

    with genai_observe.conversation(session_id), genai_observe.attributes({"experiment": "B"}):
        plan("book a flight")

Steps are spans made by ``_core/steps.StepRecorder`` (the same names and attributes as the LangChain
and OpenAI Agents SDK steps); scopes live in the OpenTelemetry context (``_core/agent_context``), so
every GenAI span started inside one (LLM spans of every instrumented SDK, ``llm_call()``, steps)
carries the agent name, conversation id and the caller's attributes. Recording goes through the
live ``init()`` handle, else the global OpenTelemetry providers, like ``llm_call()``.

Nothing here raises into the app: a failure of ours is logged once at debug level and the function
runs untraced; the function's own return value and exception pass through unchanged.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from types import TracebackType
from typing import Any, Final, TypeVar, overload

from opentelemetry import context as otel_context

from ._core import semconv as sc
from ._core.agent_context import (
    AgentScope,
    clean_attributes,
    clean_name,
    with_agent,
    with_attributes,
    with_conversation,
    with_workflow,
)
from ._core.diagnostics import report_internal_error
from ._core.steps import Step, StepRecorder

F = TypeVar("F", bound=Callable[..., Any])
_STOPPED: Final = (GeneratorExit, asyncio.CancelledError)  # the consumer stopped: nothing failed


class _Active:
    """One entered scope: the context its code runs in and its step span (if any), ended once."""

    __slots__ = ("context", "step")

    def __init__(self, context: otel_context.Context | None, step: Step | None) -> None:
        self.context = context
        self.step = step

    def enter(self) -> object | None:
        if self.context is None:
            return None
        try:
            return otel_context.attach(self.context)
        except Exception as exc:
            report_internal_error("scopes.attach", exc)
            return None

    def leave(self, token: object | None) -> None:
        if token is None:
            return
        try:
            otel_context.detach(token)  # type: ignore[arg-type]
        except Exception as exc:
            report_internal_error("scopes.detach", exc)

    def end(self, output: Any = None, error: BaseException | None = None) -> None:
        step = self.step
        if step is None or step.ended:
            return
        try:
            step.end(output=output, error=None if isinstance(error, _STOPPED) else error)
        except Exception as exc:
            report_internal_error("scopes.end", exc)


_NOTHING: Final = _Active(None, None)


class _Scope:
    """A decorator and a context manager (sync and async) for one kind of scope.

    As a decorator it enters a fresh scope per call (per iteration of a generator), so one
    decorated function serves any number of threads and tasks at once. As a context manager the
    same object may be entered again (nested, or in concurrent tasks): each ``with`` leaves the
    entry it made.
    """

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: list[tuple[_Active, object | None]] = []

    def _open(self, fn: Callable[..., Any] | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Active:
        raise NotImplementedError

    def _safe_open(
        self, fn: Callable[..., Any] | None, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> _Active:
        try:
            return self._open(fn, args, kwargs or {})
        except Exception as exc:
            report_internal_error(f"scopes.open:{type(self).__name__}", exc)
            return _NOTHING

    # --- context manager -------------------------------------------------------------------------

    def __enter__(self) -> _Scope:
        active = self._safe_open(None)
        self._entries.append((active, active.enter()))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        entries = self._entries
        current = otel_context.get_current()
        # The entry of this task or thread: its context is the current one (else the latest).
        entry = next((e for e in reversed(entries) if e[0].context is current), None)
        if entry is None:
            entry = entries[-1] if entries else None
        if entry is None:
            return
        try:
            entries.remove(entry)  # atomic: another thread may be leaving its own entry
        except ValueError:
            return
        active, token = entry
        active.leave(token)
        active.end(error=exc)

    async def __aenter__(self) -> _Scope:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    # --- decorator -------------------------------------------------------------------------------

    def __call__(self, fn: F) -> F:
        return _decorate(self, fn)  # type: ignore[no-any-return]


def _decorate(scope: _Scope, fn: Any) -> Any:
    if isinstance(fn, (staticmethod, classmethod)):
        return type(fn)(_decorate(scope, fn.__func__))
    if not callable(fn):
        raise TypeError(f"genai_observe scopes decorate functions, not {type(fn).__name__}")
    if inspect.isasyncgenfunction(fn):
        return _async_generator_wrapper(scope, fn)
    if inspect.isgeneratorfunction(fn):
        return _generator_wrapper(scope, fn)
    if inspect.iscoroutinefunction(fn):
        return _coroutine_wrapper(scope, fn)
    return _function_wrapper(scope, fn)


def _function_wrapper(scope: _Scope, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        active = scope._safe_open(fn, args, kwargs)
        token = active.enter()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            active.leave(token)
            active.end(error=exc)
            raise
        active.leave(token)
        active.end(output=result)
        return result

    return wrapper


def _coroutine_wrapper(scope: _Scope, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        active = scope._safe_open(fn, args, kwargs)
        token = active.enter()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            active.leave(token)
            active.end(error=exc)
            raise
        active.leave(token)
        active.end(output=result)
        return result

    return wrapper


def _generator_wrapper(scope: _Scope, fn: Callable[..., Any]) -> Callable[..., Any]:
    # A generator function itself (inspect.isgeneratorfunction stays true for frameworks that ask):
    # the step starts at the first next() and covers the iteration.
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        gen = fn(*args, **kwargs)
        return (yield from _drive(gen, scope._safe_open(fn, args, kwargs)))

    return wrapper


def _drive(gen: Generator[Any, Any, Any], active: _Active) -> Generator[Any, Any, Any]:
    """Run ``gen`` with the scope current only while its own code runs (never while the consumer
    runs between items); end the step when it returns, raises, or is closed or abandoned."""
    send: Any = None
    throw: BaseException | None = None
    try:
        while True:
            token = active.enter()
            try:
                if throw is not None:
                    exc, throw = throw, None
                    item = gen.throw(exc)
                else:
                    item = gen.send(send)
            except StopIteration as stop:
                active.end()
                return stop.value
            finally:
                active.leave(token)
            try:
                send = yield item
            except GeneratorExit:
                token = active.enter()
                try:
                    gen.close()
                finally:
                    active.leave(token)
                active.end()
                raise
            except BaseException as exc:  # thrown in by the consumer: the generator's to handle
                throw = exc
    except BaseException as exc:
        active.end(error=exc)
        raise


def _async_generator_wrapper(scope: _Scope, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        agen = fn(*args, **kwargs)
        active = scope._safe_open(fn, args, kwargs)
        send: Any = None
        throw: BaseException | None = None
        try:
            while True:
                token = active.enter()
                try:
                    if throw is not None:
                        exc, throw = throw, None
                        item = await agen.athrow(exc)
                    else:
                        item = await agen.asend(send)
                except StopAsyncIteration:
                    active.end()
                    return
                finally:
                    active.leave(token)
                try:
                    send = yield item
                except GeneratorExit:
                    token = active.enter()
                    try:
                        await agen.aclose()
                    finally:
                        active.leave(token)
                    active.end()
                    raise
                except BaseException as exc:
                    throw = exc
        except BaseException as exc:
            active.end(error=exc)
            raise

    return wrapper


# --- the scopes ------------------------------------------------------------------------------------


def _inputs(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The call's arguments by parameter name (``self``/``cls`` left out), for content capture."""
    try:
        bound = inspect.signature(fn).bind_partial(*args, **kwargs)
        arguments = dict(bound.arguments)
        for implicit in ("self", "cls"):
            arguments.pop(implicit, None)
        return arguments or None  # no arguments: no input attribute
    except (TypeError, ValueError):
        return {"args": list(args), "kwargs": kwargs} if args or kwargs else None


class StepScope(_Scope):
    """A workflow, task, agent or tool step: a span, and for agents and workflows a scope."""

    __slots__ = ("_kind", "_name", "_tool_call_id")

    def __init__(self, kind: str, name: str | None, tool_call_id: str | None = None) -> None:
        super().__init__()
        self._kind = kind
        self._name = clean_name(name)
        self._tool_call_id = clean_name(tool_call_id)

    def __call__(self, fn: F) -> F:
        if self._name is None:  # the decorated function's name
            named = StepScope(self._kind, getattr(inspect.unwrap(fn), "__name__", None), self._tool_call_id)
            if named._name is None:
                named._name = self._kind
            return _decorate(named, fn)  # type: ignore[no-any-return]
        return _decorate(self, fn)  # type: ignore[no-any-return]

    def _open(self, fn: Callable[..., Any] | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Active:
        from . import _manual  # the OpenTelemetry SDK and the pipeline: at the first step, not at import

        kind, name = self._kind, self._name or self._kind
        recorder = _manual._recorder(sc.STEPS_SCOPE)
        inputs = _inputs(fn, args, kwargs) if fn is not None and recorder.capture.any else None
        step = StepRecorder(recorder).start_step(
            kind, name, workflow_name=None, parent=None, inputs=inputs, tool_call_id=self._tool_call_id
        )
        if step is not None:
            return _Active(step.context(), step)
        # No span (instrumentation suppressed): the scope still names the agent and workflow.
        if kind == sc.SPAN_KIND_AGENT:
            return _Active(with_agent(AgentScope(name)), None)
        if kind == sc.SPAN_KIND_WORKFLOW:
            return _Active(with_workflow(name), None)
        return _NOTHING


def _decorate_named(scope: StepScope, fn: Any) -> Any:
    return scope(fn)


class ConversationScope(_Scope):
    """``gen_ai.conversation.id`` on every GenAI span in the scope."""

    __slots__ = ("_conversation_id",)

    def __init__(self, conversation_id: str) -> None:
        super().__init__()
        if isinstance(conversation_id, int) and not isinstance(conversation_id, bool):
            conversation_id = str(conversation_id)
        self._conversation_id = clean_name(conversation_id)

    def _open(self, fn: Callable[..., Any] | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Active:
        if self._conversation_id is None:
            return _NOTHING
        return _Active(with_conversation(self._conversation_id), None)


class AttributesScope(_Scope):
    """The caller's own attributes on every GenAI span in the scope."""

    __slots__ = ("_attributes",)

    def __init__(self, attributes: Mapping[str, Any]) -> None:
        super().__init__()
        try:
            self._attributes = clean_attributes(attributes)
        except Exception as exc:
            report_internal_error("scopes.attributes", exc)
            self._attributes = ()

    def _open(self, fn: Callable[..., Any] | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Active:
        if not self._attributes:
            return _NOTHING
        return _Active(with_attributes(self._attributes), None)


# --- public functions ------------------------------------------------------------------------------


@overload
def workflow(name: F) -> F: ...
@overload
def workflow(name: str | None = None) -> StepScope: ...
def workflow(name: Any = None) -> Any:
    """A workflow step (the top of a run): ``@workflow``, ``@workflow("name")``, ``with workflow("name"):``.

    Steps inside it name it in ``traceloop.workflow.name`` (``dynatrace`` profile).
    """
    return _step(sc.SPAN_KIND_WORKFLOW, name)


@overload
def task(name: F) -> F: ...
@overload
def task(name: str | None = None) -> StepScope: ...
def task(name: Any = None) -> Any:
    """A task step: one unit of work inside a workflow or agent."""
    return _step(sc.SPAN_KIND_TASK, name)


@overload
def agent(name: F) -> F: ...
@overload
def agent(name: str | None = None) -> StepScope: ...
def agent(name: Any = None) -> Any:
    """An agent step (``invoke_agent {name}`` in the ``latest`` profile). Every GenAI span started
    inside it (LLM calls of any instrumented SDK, tools, nested steps) carries ``gen_ai.agent.name``;
    inside nested agents, the innermost agent's name."""
    return _step(sc.SPAN_KIND_AGENT, name)


@overload
def tool(name: F, *, call_id: str | None = None) -> F: ...
@overload
def tool(name: str | None = None, *, call_id: str | None = None) -> StepScope: ...
def tool(name: Any = None, *, call_id: str | None = None) -> Any:
    """A tool step (``execute_tool {name}`` in the ``latest`` profile); ``call_id``: the model's
    tool call id, when known (``gen_ai.tool.call.id``, ``latest`` profile)."""
    return _step(sc.SPAN_KIND_TOOL, name, call_id)


def _step(kind: str, name: Any, tool_call_id: str | None = None) -> Any:
    if isinstance(name, (staticmethod, classmethod)) or (callable(name) and not isinstance(name, str)):
        # used bare: @agent
        return _decorate_named(StepScope(kind, None, tool_call_id), name)
    return StepScope(kind, name if isinstance(name, str) else None, tool_call_id)


def conversation(conversation_id: str) -> ConversationScope:
    """``gen_ai.conversation.id`` on every GenAI span started in the scope (AR-041: Dynatrace groups
    prompts into threads by it). A conversation id the call itself sends (OpenAI's Responses API
    ``conversation``) wins; the innermost scope wins over enclosing ones."""
    return ConversationScope(conversation_id)


def attributes(values: Mapping[str, Any]) -> AttributesScope:
    """The caller's own attributes (experiment, model version, user tier: A/B testing) on every
    GenAI span started in the scope; nested scopes add to the enclosing ones (inner values win).

    Values must be OpenTelemetry attribute types (str, bool, int, float, or a homogeneous list of
    one of them); anything else is dropped, as are keys in the namespaces genai-observe writes
    (``gen_ai.``, ``llm.``, ``traceloop.``, ...). At most 32 keys, keys up to 128 characters,
    strings cut at 1024 characters, lists at 32 items.
    """
    return AttributesScope(values)


__all__ = [
    "AttributesScope",
    "ConversationScope",
    "StepScope",
    "agent",
    "attributes",
    "conversation",
    "task",
    "tool",
    "workflow",
]
