"""Run by the interpreter at start-up when genai-observe-instrument put this folder on PYTHONPATH.

First the ``sitecustomize`` the environment already had (if any) runs, exactly as it would have
without us; then genai_observe bootstraps from the environment.
"""

from __future__ import annotations

import importlib
import os
import sys


def _bootstrap() -> None:
    try:
        from genai_observe._zerocode.autoinit import run
    except Exception as exc:  # e.g. genai_observe not importable in this interpreter
        sys.stderr.write(
            f"genai_observe: cannot bootstrap ({type(exc).__name__}: {exc}); running uninstrumented\n"
        )
    else:
        run()


def _run_previous_sitecustomize() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    ours = sys.modules.get("sitecustomize")
    saved = list(sys.path)
    sys.path[:] = [p for p in saved if os.path.abspath(p or os.curdir) != here]
    try:
        sys.modules.pop("sitecustomize", None)
        try:
            importlib.import_module("sitecustomize")
        except ModuleNotFoundError as exc:
            if exc.name != "sitecustomize":
                raise
    except Exception as exc:  # the environment's own sitecustomize failed: say so, go on
        sys.stderr.write(f"genai_observe: the existing sitecustomize raised {type(exc).__name__}: {exc}\n")
    finally:
        # Our folder stays off sys.path: the application's imports see the path it would have had.
        sys.path[:] = [p for p in saved if os.path.abspath(p or os.curdir) != here]
        if "sitecustomize" not in sys.modules and ours is not None:
            sys.modules["sitecustomize"] = ours


def _disabled() -> bool:
    return any(
        os.environ.get(name, "").strip().lower() in ("true", "1", "yes", "on")
        for name in ("GENAI_OBSERVE_DISABLED", "OTEL_SDK_DISABLED")
    )


_run_previous_sitecustomize()

if not _disabled():  # switched off: not even an import of genai_observe
    _bootstrap()
