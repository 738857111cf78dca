"""Flush telemetry before a SIGTERM or SIGINT with the default disposition ends the process.

A process killed by a signal's default action runs no ``atexit`` hook, so whatever the batch
processors and the metric reader still hold is lost. That is not only the case of a script that
ignores signals: uvicorn, gunicorn's uvicorn worker and asyncio's ``remove_signal_handler`` put
the default disposition back after a graceful stop, and uvicorn then re-raises the signal so that
its parent sees it. Kubernetes, systemd, supervisord and ``docker stop`` all send SIGTERM.

Wherever the disposition of SIGTERM or SIGINT would be the default (``SIG_DFL``), a stand-in
handler takes its place: it flushes (bounded by the shutdown timeout), restores ``SIG_DFL`` and
raises the signal again, so the process still dies from it and its parent sees exactly that.
``signal.signal`` and ``signal.getsignal`` are wrapped so that the stand-in is invisible: setting
``SIG_DFL`` installs it, reading returns ``SIG_DFL``, and any other handler replaces it as usual.
A handler the application installs (before or after ``init()``) is never touched; when it exits
normally ``atexit`` flushes, and when it puts the default back the stand-in comes in again.
"""

from __future__ import annotations

import functools
import signal
import threading
from collections.abc import Callable
from typing import Any

_GUARDED: frozenset[int] = frozenset({int(signal.SIGTERM), int(signal.SIGINT)})

_original_signal = signal.signal
_original_getsignal = signal.getsignal

# What the stand-in calls before the signal's default action; None when nothing is set up. It
# returns True to hold the signal back until ``uninstall()`` (a shutdown is running on this thread).
_flush: Callable[[], bool] | None = None
_flushing = False
_held: int | None = None


def _on_signal(signum: int, frame: Any) -> None:
    """The stand-in for SIG_DFL: flush, then let the default action happen."""
    global _flushing, _held
    flush = _flush
    # A second signal during the flush, or while one is held back, takes effect at once.
    if flush is not None and not _flushing and _held is None:
        _flushing = True
        try:
            hold = flush()
        except BaseException:  # whatever happens, the signal's own action follows
            hold = False
        finally:
            _flushing = False
        if hold:
            _held = signum
            return
    _default_action(signum)


def _default_action(signum: int) -> None:
    _original_signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)
    # Still alive: the kernel ignores a default-disposition signal sent to PID 1, or the signal is
    # blocked. Keep the stand-in for the next one, unless something replaced SIG_DFL meanwhile.
    if _flush is not None and _original_getsignal(signum) == signal.SIG_DFL:
        _original_signal(signum, _on_signal)


def _number(signalnum: Any) -> int | None:
    try:
        return int(signalnum)
    except (TypeError, ValueError):
        return None


def _wants_stand_in(signalnum: Any, handler: Any) -> bool:
    return (
        _flush is not None
        and _number(signalnum) in _GUARDED
        and isinstance(handler, int)
        and handler == signal.SIG_DFL
        and threading.current_thread() is threading.main_thread()
    )


def _signal(signalnum: Any, handler: Any) -> Any:
    """``signal.signal`` with SIG_DFL of SIGTERM/SIGINT meaning "our stand-in", invisibly."""
    previous = _original_signal(signalnum, _on_signal if _wants_stand_in(signalnum, handler) else handler)
    return signal.Handlers.SIG_DFL if previous is _on_signal else previous


def _getsignal(signalnum: Any) -> Any:
    """``signal.getsignal`` reporting the stand-in as SIG_DFL."""
    current = _original_getsignal(signalnum)
    return signal.Handlers.SIG_DFL if current is _on_signal else current


# Named and documented as the originals, for code that introspects them.
functools.update_wrapper(_signal, _original_signal)
functools.update_wrapper(_getsignal, _original_getsignal)


def install(flush: Callable[[], bool]) -> None:
    """Flush with ``flush`` before a default-disposition SIGTERM/SIGINT ends the process.

    Handlers can only be set from the main thread; from another thread only the wrappers are
    installed, so that a later SIG_DFL set in the main thread still gets the stand-in.
    """
    global _flush
    _flush = flush
    if signal.signal is not _signal:
        signal.signal = _signal
    if signal.getsignal is not _getsignal:
        signal.getsignal = _getsignal
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in _GUARDED:
        try:
            if _original_getsignal(signum) == signal.SIG_DFL:
                _original_signal(signum, _on_signal)
        except (OSError, ValueError):  # not settable here (an embedded interpreter, a sandbox)
            pass


def uninstall() -> None:
    """Back to the plain default dispositions and the unwrapped ``signal`` functions; then the
    default action of a signal held back meanwhile."""
    global _flush, _held
    _flush = None
    held, _held = _held, None
    main = threading.current_thread() is threading.main_thread()
    if main:
        for signum in _GUARDED:
            try:
                if _original_getsignal(signum) is _on_signal:
                    _original_signal(signum, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
    # Only our own wrappers are taken back: one another library put over ours stays.
    if signal.signal is _signal:
        signal.signal = _original_signal
    if signal.getsignal is _getsignal:
        signal.getsignal = _original_getsignal
    if held is not None and main:  # the signal that came during the shutdown, now
        _default_action(held)
