"""The base of every provider instrumentor: lazy patching and one Recorder per instrumentor.

Patching happens in a wrapt post-import hook, so a provider SDK the application never imports
costs nothing, and an SDK imported after ``init()`` is still instrumented. Already-imported SDKs
are patched at once (wrapt fires the hook immediately).
"""

from __future__ import annotations

import copy
import sys
import threading
from collections.abc import Callable, Collection
from types import MethodType, ModuleType
from typing import Any, ClassVar

import wrapt
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap

from ..._core.config import capture_from_env, profile_from_env
from ..._core.config import capture_mode as _capture_mode
from ..._core.config import resolve_profile as _resolve_profile
from ..._core.content import ContentPolicy
from ..._core.diagnostics import report_internal_error
from ..._core.recorder import Recorder
from .operations import Operation, wrapper


class _SeeThroughMethod:
    """copy, deepcopy and pickle of a method we wrapped behave as for the SDK's own method.

    wrapt raises NotImplementedError there; the SDK's helpers keep bound methods in their state
    (openai's stream managers hold ``partial(self.create, ...)``), so copying such an object would
    fail only with us. A bound method is, as in Python, looked up again on its (copied) instance;
    a function is itself to ``copy`` and is pickled by reference to the class that holds it.
    """

    __slots__ = ()
    __wrapped__: Any
    _self_parent: Any

    def _self_reduced(self) -> Any:
        """What pickle gets: a bound method's ``(getattr, (instance, name))``, a function's reference
        (a class attribute: ``(getattr, (class, name))``; a module's: its name); None if unknown."""
        wrapped = self.__wrapped__
        if isinstance(wrapped, MethodType):
            return getattr, (wrapped.__self__, wrapped.__func__.__name__)
        parent: Any = getattr(self, "_self_parent", None) or self
        owner = getattr(parent, "_self_genai_owner", None)
        attribute = getattr(parent, "_self_genai_attribute", None)
        if isinstance(owner, ModuleType):
            return attribute
        return (getattr, (owner, attribute)) if owner is not None else None

    def __copy__(self) -> Any:
        if not isinstance(self.__wrapped__, MethodType):
            return self  # functions are immutable to copy
        function, args = self._self_reduced()
        return function(*args)

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        if not isinstance(self.__wrapped__, MethodType):
            return self
        function, args = self._self_reduced()
        return function(*copy.deepcopy(args, memo))

    def __reduce_ex__(self, protocol: Any) -> Any:
        reduced = self._self_reduced()
        return reduced if reduced is not None else self.__wrapped__.__reduce_ex__(protocol)

    def __reduce__(self) -> Any:
        return self.__reduce_ex__(0)


class _BoundMethodWrapper(_SeeThroughMethod, wrapt.BoundFunctionWrapper):  # type: ignore[type-arg]
    pass


class _MethodWrapper(_SeeThroughMethod, wrapt.FunctionWrapper):  # type: ignore[type-arg]
    __bound_function_wrapper__ = _BoundMethodWrapper


class GenAIInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Subclasses name the module to hook and implement ``_patch`` with ``self._wrap``."""

    name: ClassVar[str] = ""
    module: ClassVar[str] = ""
    requirements: ClassVar[tuple[str, ...]] = ()

    # Per instrumentor (set on first use) and re-entrant: one _patch may import a module that
    # another instrumentor hooks, and that hook must not wait on a lock its caller holds.
    _lock: threading.RLock

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._lock = threading.RLock()

    def instrumentation_dependencies(self) -> Collection[str]:
        return self.requirements

    # --- BaseInstrumentor hooks ---------------------------------------------------------------

    def _instrument(self, **kwargs: Any) -> None:
        capture = kwargs.get("capture")
        profile = kwargs.get("profile")
        # Used on their own, instrumentors take the same values init() does (enums or strings,
        # validated the same way); absent ones come from the environment.
        self.recorder = Recorder(
            tracer_provider=kwargs.get("tracer_provider"),
            meter_provider=kwargs.get("meter_provider"),
            logger_provider=kwargs.get("logger_provider"),
            capture=_capture_mode(capture, None) if capture is not None else capture_from_env(),
            profile=_resolve_profile(profile) if profile is not None else profile_from_env(),
            content=kwargs.get("content") if isinstance(kwargs.get("content"), ContentPolicy) else None,
        )
        self._wrapped: list[tuple[Any, str]] = []
        self._active = True
        if not getattr(self, "_hook_registered", False):
            self._hook_registered = True
            wrapt.register_post_import_hook(self._on_import, self.module)
        else:
            loaded = sys.modules.get(self.module)
            if loaded is not None:
                self._on_import(loaded)

    def configure(self, *, capture: Any, profile: Any, content: ContentPolicy | None = None) -> None:
        """Apply new content settings to an instrumented instrumentor, without re-patching."""
        recorder: Recorder | None = getattr(self, "recorder", None)
        if recorder is not None:
            recorder.configure(
                capture=_capture_mode(capture, None),
                profile=_resolve_profile(profile),
                content=content if content is not None else recorder.content,
            )

    def _uninstrument(self, **kwargs: Any) -> None:
        with self._lock:
            self._active = False
            for owner, attribute in reversed(self._wrapped):
                try:
                    unwrap(owner, attribute)
                except Exception as exc:
                    report_internal_error(f"{self.name}.unwrap", exc)
            self._wrapped = []

    def _on_import(self, module: ModuleType) -> None:
        with self._lock:
            if not getattr(self, "_active", False) or self._wrapped:
                return
            try:
                self._patch(module)
            except Exception as exc:
                report_internal_error(f"{self.name}.patch", exc)

    # --- for subclasses -------------------------------------------------------------------------

    def _patch(self, module: ModuleType) -> None:
        raise NotImplementedError

    def _when_imported(self, module_name: str, patch: Callable[[], None]) -> None:
        """Run ``patch`` now if ``module_name`` is loaded, else from its post-import hook.

        For an SDK's submodules the application may never import (openai's Responses API alone
        costs ~200 ms to import): we must not import them either. ``patch`` must read the
        instrumentor's current state, since the hook of an earlier ``instrument()`` stays
        registered and is the one that runs (once).
        """
        if module_name in sys.modules:
            self._run_patch(patch)
            return
        registered: set[str] = self.__dict__.setdefault("_import_hooks", set())
        if module_name in registered:
            return
        registered.add(module_name)
        wrapt.register_post_import_hook(lambda _module: self._run_patch(patch), module_name)

    def _run_patch(self, patch: Callable[[], None]) -> None:
        with self._lock:
            if not getattr(self, "_active", False):
                return
            try:
                patch()
            except Exception as exc:
                report_internal_error(f"{self.name}.patch_on_import", exc)

    def _wrap_operation(self, op: Operation, **hooks: Any) -> bool:
        """Wrap the SDK method ``op`` declares with the kit's one wrapper (see operations.py)."""
        return self._wrap(op.module, op.path, wrapper(self.recorder, op, **hooks))

    def _wrap(self, module_name: str, path: str, wrapper: Any) -> bool:
        """Wrap ``module_name.path`` (e.g. ``"openai.resources.chat"``, ``"Completions.create"``).

        A target missing in this SDK version is skipped, so older/newer SDKs are instrumented as far
        as they match.
        """
        try:
            owner, attribute, original = wrapt.resolve_path(module_name, path)
            if hasattr(original, "_self_genai_observe"):  # wrapt 2: FunctionWrapper is no ObjectProxy
                return False  # already ours (e.g. a second instrumentor instance)
            patched = wrapt.wrap_object(module_name, path, _MethodWrapper, (wrapper,))
            try:
                patched._self_genai_observe = True
                patched._self_genai_owner = owner  # a function is pickled by reference to it
                patched._self_genai_attribute = attribute
            except Exception:
                pass
            self._wrapped.append((owner, attribute))
            return True
        except (AttributeError, ImportError) as exc:
            report_internal_error(f"{self.name}.wrap:{module_name}.{path}", exc)
            return False
