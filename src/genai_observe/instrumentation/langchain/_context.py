"""Which OpenTelemetry context LangChain's own code runs in.

The callback handler builds spans from ``parent_run_id`` and never relies on the current context.
Code that is not LangChain (an ``openai`` call inside a ``RunnableLambda``, a ``@tool`` function or
a LangGraph node) only sees the current context, so these wrappers make the right step current
while that code runs, and only then:

- Steps: LangChain and LangGraph run a step's own code inside ``set_config_context(child_config)``,
  a context manager that copies the caller's context and sets the child config in the copy. The
  config's callback manager names the step (``parent_run_id``). :func:`step_scope` wraps that
  context manager: on enter it attaches the step's span context *inside the copy*, on exit it
  detaches it there. The caller's context is never touched, so nothing can leak out of a step,
  across runs or into a streaming consumer's loop body, and every token is detached in the context
  it was attached in (also when the step raises or a stream is abandoned).
- Model runs: ``BaseChatModel``/``BaseLLM`` ``generate``/``agenerate``/``stream``/``astream`` are
  wrapped to note the model's class (:data:`MODEL_SCOPE`, read by the handler to classify the
  run) and to put the caller's context back when they return or yield, because the handler makes
  the model run current from inside ``on_chat_model_start``/``on_llm_start`` (there is no
  ``set_config_context`` around a model's provider call). ``BaseLLM.agenerate`` runs those
  callbacks in tasks of their own (``asyncio.gather``), where attaching is lost; the handler also
  leaves the context in the scope, and ``BaseLLM._agenerate_helper`` is wrapped to make it current
  (and detach it) around the provider call in the caller's task.

Nothing here imports LangChain.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextvars import Context, ContextVar, Token
from typing import Any

from opentelemetry import context as otel_context

from ..._core.diagnostics import report_internal_error


class ModelScope:
    """One call of a wrapped model method: the model's class, and the context the handler made
    current for the run it started (``pending``, for callbacks that ran in another task)."""

    __slots__ = ("cls", "pending")

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.pending: otel_context.Context | None = None

    def make_current(self, context: otel_context.Context) -> None:
        """From the handler: current for the rest of the model method (undone by its wrapper)."""
        self.pending = context
        otel_context.attach(context)


# The innermost wrapped model method running, None outside. Set and reset by the wrappers below,
# in the caller's context; read by the handler.
MODEL_SCOPE: ContextVar[ModelScope | None] = ContextVar("genai_observe_langchain_model", default=None)

StepContextOf = Callable[[Any], "otel_context.Context | None"]


# --- steps -----------------------------------------------------------------------------------------


def step_scope(context_of: StepContextOf) -> Callable[..., Any]:
    """A wrapt wrapper for ``set_config_context(config, ...)``; ``context_of(config)`` -> the context
    to make current inside the copied context (the step named by ``config``), or None."""

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        manager = wrapped(*args, **kwargs)
        try:
            target = context_of(args[0] if args else kwargs.get("config"))
        except Exception as exc:
            report_internal_error("langchain.step_context", exc)
            return manager
        return manager if target is None else _StepScope(manager, target)

    return wrapper


class _StepScope:
    """Enters LangChain's context manager, then attaches ``target`` in the Context it yields."""

    __slots__ = ("_context", "_inner", "_target", "_token")

    def __init__(self, inner: Any, target: otel_context.Context) -> None:
        self._inner = inner
        self._target = target
        self._context: Context | None = None
        self._token: Any = None

    def __enter__(self) -> Any:
        ctx = self._inner.__enter__()
        if isinstance(ctx, Context):
            try:
                self._token = ctx.run(otel_context.attach, self._target)
                self._context = ctx
            except Exception as exc:
                report_internal_error("langchain.step_attach", exc)
        return ctx

    def __exit__(self, *exc_info: Any) -> Any:
        token, ctx = self._token, self._context
        self._token = self._context = None
        if token is not None and ctx is not None:
            try:
                ctx.run(otel_context.detach, token)
            except Exception as exc:
                report_internal_error("langchain.step_detach", exc)
        return self._inner.__exit__(*exc_info)


def callbacks_parent(config: Any) -> Any:
    """The run id a config's callback manager reports children to (the step being run), or None."""
    if not isinstance(config, Mapping):
        return None
    return getattr(config.get("callbacks"), "parent_run_id", None)


# --- model runs ------------------------------------------------------------------------------------


def model_sync(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    scope = _enter(instance)
    try:
        return wrapped(*args, **kwargs)
    finally:
        _leave(scope)


async def model_async(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    scope = _enter(instance)
    try:
        return await wrapped(*args, **kwargs)
    finally:
        _leave(scope)


def model_stream(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return _scoped_iterator(wrapped(*args, **kwargs), instance)


def model_astream(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return _scoped_async_iterator(wrapped(*args, **kwargs), instance)


def _scoped_iterator(inner: Iterator[Any], instance: Any) -> Iterator[Any]:
    """Yields ``inner``'s items; whatever a callback made current while producing one is undone."""
    try:
        while True:
            scope = _enter(instance)
            try:
                item = next(inner)
            except StopIteration:
                return
            finally:
                _leave(scope)
            yield item
    finally:
        close = getattr(inner, "close", None)
        if close is not None:
            close()


async def _scoped_async_iterator(inner: AsyncIterator[Any], instance: Any) -> AsyncIterator[Any]:
    """Yields ``inner``'s items like :func:`_scoped_iterator`, but never closes ``inner`` itself.

    Once this generator is done, nothing else holds ``inner``, so the event loop's async-generator
    finaliser closes it at once, exactly as it would without us. Closing it from here as well
    raced with that finaliser when a stream was dropped (both in one garbage collection), and
    asyncio logged "aclose(): asynchronous generator is already running".
    """
    while True:
        scope = _enter(instance)
        try:
            item = await inner.__anext__()
        except StopAsyncIteration:
            return
        finally:
            _leave(scope)
        yield item


async def llm_agenerate_helper(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """``BaseLLM._agenerate_helper``: the provider call, after callbacks ran in gathered tasks."""
    scope = MODEL_SCOPE.get()
    pending = scope.pending if scope is not None else None
    token = None
    if pending is not None:
        try:
            token = otel_context.attach(pending)
        except Exception as exc:
            report_internal_error("langchain.llm_attach", exc)
    try:
        return await wrapped(*args, **kwargs)
    finally:
        if token is not None:
            try:
                otel_context.detach(token)
            except Exception as exc:
                report_internal_error("langchain.llm_detach", exc)


_Scope = tuple["Token[ModelScope | None] | None", "object | None"]


def _enter(instance: Any) -> _Scope:
    """Note the model class and snapshot the current OTel context (restored by :func:`_leave`)."""
    try:
        marker = MODEL_SCOPE.set(ModelScope(type(instance)))
    except Exception as exc:
        report_internal_error("langchain.model_scope", exc)
        marker = None
    try:
        token = otel_context.attach(otel_context.get_current())
    except Exception as exc:
        report_internal_error("langchain.snapshot", exc)
        token = None
    return marker, token


def _leave(scope: _Scope) -> None:
    marker, token = scope
    if token is not None:
        try:
            # Back to the snapshot: also drops what the handler attached after it for this run.
            otel_context.detach(token)  # type: ignore[arg-type]
        except Exception as exc:
            report_internal_error("langchain.restore", exc)
    if marker is not None:
        try:
            MODEL_SCOPE.reset(marker)
        except Exception as exc:
            report_internal_error("langchain.model_scope_reset", exc)
