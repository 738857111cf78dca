"""Our own failures: logged once per place at debug level, never raised into the app."""

from __future__ import annotations

import logging

_log = logging.getLogger("genai_observe")
_reported: set[str] = set()


def report_internal_error(where: str, exc: BaseException | None = None) -> None:
    """Log a failure of our own code once per place, at debug level, and never raise."""
    if where in _reported:
        return
    _reported.add(where)  # bounded: `where` is always a literal
    try:
        _log.debug("genai_observe: internal error in %s (reported once)", where, exc_info=exc)
    except Exception:
        pass
