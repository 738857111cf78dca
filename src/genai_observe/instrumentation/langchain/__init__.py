"""Instrumentation of LangChain (``langchain_core``) and LangGraph through a callback handler.

No user code changes: ``BaseCallbackManager.__init__`` is wrapped so every callback manager
LangChain builds carries our handler, as an inheritable handler, so child runs see it too. The
handler (``_handler.py``) turns the run tree into workflow/task/agent/tool/retriever steps and LLM
spans; ``_context.py`` makes steps and model runs current while their own code runs;
``_nvidia.py`` records ``NVIDIAEmbeddings`` calls, which emit no callbacks. See docs/langchain.md
for the span tree and the one-LLM-span policy.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, ClassVar, Final

from ..._core.diagnostics import report_internal_error
from .._kit.base import GenAIInstrumentor
from . import _context

# Modules whose ``set_config_context`` (looked up as a module global when a step runs) is wrapped
# so that a step's own code runs with the step's span current (see _context.py).
# The defining module comes last, so that the others, imported here if they were not yet, take the
# original by name and get a wrapper of their own (undone on uninstrument). A module that imports
# it by name later keeps our wrapper; it asks the live handler, so it is inert while we are off.
_CORE_STEP_MODULES: Final = (
    "langchain_core.runnables.base",
    "langchain_core.runnables.fallbacks",
    "langchain_core.tools.base",
    "langchain_core.runnables.config",
)
# Imported only by apps that use them: patched from their own post-import hooks.
_LANGGRAPH_STEP_MODULE: Final = "langgraph._internal._runnable"
_NVIDIA_EMBEDDINGS_MODULE: Final = "langchain_nvidia_ai_endpoints.embeddings"  # = _nvidia.MODULE


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
        # A model run is made current from inside a callback; these wrappers note the model class
        # for the handler and put the caller's context back when the model method returns (or per
        # streamed chunk).
        for module_name, cls in (
            ("langchain_core.language_models.chat_models", "BaseChatModel"),
            ("langchain_core.language_models.llms", "BaseLLM"),
        ):
            self._wrap(module_name, f"{cls}.generate", _context.model_sync)
            self._wrap(module_name, f"{cls}.agenerate", _context.model_async)
            self._wrap(module_name, f"{cls}.stream", _context.model_stream)
            self._wrap(module_name, f"{cls}.astream", _context.model_astream)
        self._wrap(
            "langchain_core.language_models.llms", "BaseLLM._agenerate_helper", _context.llm_agenerate_helper
        )
        scope = _context.step_scope(self._step_context)
        for module_name in _CORE_STEP_MODULES:
            self._wrap(module_name, "set_config_context", scope)
        self._step_scope = scope
        self._when_imported(_LANGGRAPH_STEP_MODULE, self._patch_langgraph)
        self._when_imported(_NVIDIA_EMBEDDINGS_MODULE, self._patch_nvidia)

    def _step_context(self, config: Any) -> Any:
        handler = self._handler
        return handler.step_context(config) if handler is not None else None

    # --- modules outside langchain_core, patched when they are imported --------------------------
    # Their hooks stay registered across instrument() calls and may fire before this instance's
    # _patch has run (no handler, no step scope yet): then there is nothing to patch with.

    def _patch_langgraph(self) -> None:
        if self._handler is None:
            return
        self._wrap(_LANGGRAPH_STEP_MODULE, "set_config_context", self._step_scope)

    def _patch_nvidia(self) -> None:
        if self._handler is None:
            return
        from . import _nvidia

        for method in _nvidia.METHODS:
            self._wrap(_nvidia.MODULE, f"{_nvidia.CLASS}.{method}", _nvidia.wrapper(self.recorder, method))
        self._wrap(_nvidia.MODULE, f"{_nvidia.CLASS}._process_response", _nvidia.process_response)


__all__ = ["LangChainInstrumentor"]
