"""Instrumentation of the ``ollama`` client (Ollama's native API: chat, generate, embed, embeddings).

``Client`` and ``AsyncClient`` are patched at class level, so clients created before ``init()`` are
covered. The module-level functions (``ollama.chat``, ...) are methods bound to a default client
when ``ollama`` is imported, so patching the class does not reach them: they are re-bound here, and
restored on uninstrument. See docs/ollama.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, ClassVar

from ..._core.record import LLMCall
from ..._core.recorder import Invocation, Recorder
from .._kit.base import GenAIInstrumentor
from .._kit.operations import Operation
from . import _adapter as ad

RequestReader = Callable[[ad.Server, Mapping[str, Any]], LLMCall]
ResponseReader = Callable[[LLMCall, Any], None]

# method -> (request reader, response reader, can it stream)
_METHODS: dict[str, tuple[RequestReader, ResponseReader, bool]] = {
    "chat": (ad.chat_request, ad.chat_response, True),
    "generate": (ad.generate_request, ad.generate_response, True),
    "embed": (ad.embed_request, ad.embed_response, False),  # ollama >= 0.3
    "embeddings": (ad.embeddings_request, ad.embeddings_response, False),
}
_CLASSES = (("Client", False), ("AsyncClient", True))


class _Generation:
    """Shared by the wrappers of one instrument() call; off after uninstrument(), so a wrapper the
    application still holds (``from ollama import chat`` after init) stops recording."""

    __slots__ = ("active",)

    def __init__(self) -> None:
        self.active = True

    def __call__(self) -> bool:
        return self.active


class OllamaInstrumentor(GenAIInstrumentor):
    """Instruments ``ollama`` chat/generate/embed/embeddings, sync, async and module-level.

    Usable on its own: ``OllamaInstrumentor().instrument(tracer_provider=..., meter_provider=...)``.
    """

    name: ClassVar[str] = "ollama"
    module: ClassVar[str] = "ollama"
    requirements: ClassVar[tuple[str, ...]] = ("ollama >= 0.1.9",)

    def _instrument(self, **kwargs: Any) -> None:
        self._generation = _Generation()
        super()._instrument(**kwargs)

    def _uninstrument(self, **kwargs: Any) -> None:
        generation = getattr(self, "_generation", None)
        if generation is not None:
            generation.active = False
        super()._uninstrument(**kwargs)

    def _patch(self, module: ModuleType) -> None:
        client_cls = getattr(module, "Client", None)
        for method, (read_request, read_response, streams) in _METHODS.items():
            for class_name, is_async in _CLASSES:
                cls = getattr(module, class_name, None)
                original = getattr(cls, method, None) if cls is not None else None
                if original is None:  # e.g. embed before ollama 0.3
                    continue
                path = f"{class_name}.{method}"
                self._wrap_operation(
                    _operation(path, original, read_request, read_response, streams, is_async),
                    active=self._generation,
                )
            self._wrap_module_function(module, client_cls, method, read_request, read_response, streams)

    def _wrap_module_function(
        self,
        module: ModuleType,
        client_cls: Any,
        method: str,
        read_request: RequestReader,
        read_response: ResponseReader,
        streams: bool,
    ) -> None:
        """``ollama.chat`` & co.: the default client's bound methods, captured at import."""
        function = getattr(module, method, None)
        owner = getattr(function, "__self__", None)
        if (
            function is None
            or hasattr(function, "_self_genai_observe")  # already ours
            or not isinstance(client_cls, type)
            or not isinstance(owner, client_cls)
        ):
            return
        self._wrap_operation(
            _operation(method, function, read_request, read_response, streams, False), active=self._generation
        )


def _generator(inv: Invocation, result: Any, is_async: bool) -> bool:
    """A stream is a (async) generator, whatever the request said; the request itself starts on
    its first chunk."""
    return hasattr(type(result), "__anext__" if is_async else "__next__") and not isinstance(result, Mapping)


def _stream(recorder: Recorder, _call: LLMCall) -> ad.Stream:
    return ad.Stream(recorder.capture.any, 2 * recorder.content.max_length + 4096)


def _operation(
    path: str,
    original: Any,
    read_request: RequestReader,
    read_response: ResponseReader,
    streams: bool,
    is_async: bool,
) -> Operation:
    """A client method (or module function) as the kit's contract: its positional arguments are
    named from the method's signature, the server read from the client."""
    names = ad.positional_names(original)

    def request(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> LLMCall:
        return read_request(ad.server_of(instance), ad.arguments(names, args, kwargs))

    request.__qualname__ = read_request.__qualname__  # failures are reported by the reader's name
    return Operation(
        "ollama",
        path,
        request,
        read_response,
        stream=_stream if streams else None,
        is_async=is_async,
        streams=_generator,
    )


__all__ = ["OllamaInstrumentor"]
