"""Zero-code bootstrap, run inside the application's interpreter before its code.

Whatever goes wrong here, the application must still start: a configuration error or any other
failure is reported as one line on stderr and the app runs uninstrumented.
"""

from __future__ import annotations

import sys

_done = False


def run() -> None:
    global _done
    if _done:
        return
    _done = True
    try:
        from .._errors import ConfigurationError
        from .._pipeline.bootstrap import init_automatic

        try:
            init_automatic()  # the app's own init(), if it calls one, applies its settings to this
        except ConfigurationError as exc:
            _say(f"{exc}; the application runs uninstrumented")
    except Exception as exc:  # never stop the application from starting
        from .._core.content import mask_credentials

        _say(
            f"genai_observe: bootstrap failed ({type(exc).__name__}: {mask_credentials(str(exc))[:300]}); "
            "the application runs uninstrumented"
        )


def _say(message: str) -> None:
    try:
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
    except Exception:
        pass
