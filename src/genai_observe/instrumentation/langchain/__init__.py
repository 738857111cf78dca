"""Instrumentation of LangChain (``langchain_core``) and LangGraph through a callback handler.

No user code changes: ``BaseCallbackManager.__init__`` is wrapped so every callback manager
LangChain builds carries our handler, as an inheritable handler, so child runs see it too. The
handler (``_handler.py``) turns the run tree into workflow/task/agent/tool/retriever steps and LLM
spans. See docs/langchain.md for the span tree and the one-LLM-span policy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from types import ModuleType
from typing import Any, ClassVar

from opentelemetry import context as otel_context

from ..._recorder import report_internal_error
from .._base import GenAIInstrumentor


class LangChainInstrumentor(GenAIInstrumentor):
    """Adds a span-building callback handler to every LangChain callback manager.

    Usable on its own: ``LangChainInstrumentor().instrument(tracer_provider=..., meter_provider=...)``.
    """

    name: ClassVar[str] = "langchain"
    module: ClassVar[str] = "langchain_core"
    requirements: ClassVar[tuple[str, ...]] = ("langchain-core >= 0.3",)

    _handler: Any = None

    def _uninstrument(self, **kwargs: Any) -> None:
        handler = self._handler
        if handler is not None:
            handler.active = False  # managers built earlier still hold it: it goes quiet
        self._handler = None
        super()._uninstrument(**kwargs)

    @property
    def handler(self) -> Any:
        """The live callback handler (None before the first LangChain import or when off)."""
        return self._handler

    def _patch(self, module: ModuleType) -> None:
        from ._handler import GenAICallbackHandler

        handler = GenAICallbackHandler(self.recorder)
        self._handler = handler

        def init_wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            wrapped(*args, **kwargs)
            if handler.active:
                try:
                    instance.add_handler(handler, inherit=True)
                except Exception as exc:
                    report_internal_error("langchain.add_handler", exc)

        self._wrap("langchain_core.callbacks.base", "BaseCallbackManager.__init__", init_wrapper)
        # A delegated model run makes its step current from inside a callback; these wrappers put
        # the caller's context back when the model method returns (or per streamed chunk).
        for module_name, cls in (
            ("langchain_core.language_models.chat_models", "BaseChatModel"),
            ("langchain_core.language_models.llms", "BaseLLM"),
        ):
            self._wrap(module_name, f"{cls}.generate", _restore_sync)
            self._wrap(module_name, f"{cls}.agenerate", _restore_async)
            self._wrap(module_name, f"{cls}.stream", _restore_stream)
            self._wrap(module_name, f"{cls}.astream", _restore_astream)


def _restore_sync(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    token = _snapshot()
    try:
        return wrapped(*args, **kwargs)
    finally:
        _restore(token)


async def _restore_async(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    token = _snapshot()
    try:
        return await wrapped(*args, **kwargs)
    finally:
        _restore(token)


def _restore_stream(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return _restoring_iterator(wrapped(*args, **kwargs))


def _restore_astream(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return _restoring_async_iterator(wrapped(*args, **kwargs))


def _restoring_iterator(inner: Iterator[Any]) -> Iterator[Any]:
    """Yields ``inner``'s items; whatever a callback made current during a step is undone after it."""
    try:
        while True:
            token = _snapshot()
            try:
                item = next(inner)
            except StopIteration:
                return
            finally:
                _restore(token)
            yield item
    finally:
        close = getattr(inner, "close", None)
        if close is not None:
            close()


async def _restoring_async_iterator(inner: AsyncIterator[Any]) -> AsyncIterator[Any]:
    try:
        while True:
            token = _snapshot()
            try:
                item = await inner.__anext__()
            except StopAsyncIteration:
                return
            finally:
                _restore(token)
            yield item
    finally:
        aclose = getattr(inner, "aclose", None)
        if aclose is not None:
            await aclose()


def _snapshot() -> object | None:
    try:
        return otel_context.attach(otel_context.get_current())
    except Exception as exc:
        report_internal_error("langchain.snapshot", exc)
        return None


def _restore(token: object | None) -> None:
    if token is not None:
        try:
            otel_context.detach(token)  # type: ignore[arg-type]
        except Exception as exc:
            report_internal_error("langchain.restore", exc)


__all__ = ["LangChainInstrumentor"]
