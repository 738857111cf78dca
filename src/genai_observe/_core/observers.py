"""Who else wants to know when an operation ends.

The core calls these at the end of each LLM call and each step; the export pipeline sets them
(its business events: the audit trail, usage logs, the response-id index of
``record_evaluation``). The core thus knows no exporter, and while nobody watches, an ending costs
one attribute read. An observer must never raise (the core calls it outside its own guards).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


class Observers:
    __slots__ = ("llm_end", "step_end", "step_input")

    def __init__(self) -> None:
        # (invocation, the span's end attributes, duration in seconds)
        self.llm_end: Callable[[Any, Mapping[str, Any], float], None] | None = None
        # (step, its output, the exception it failed with)
        self.step_end: Callable[[Any, Any, BaseException | None], None] | None = None
        # whether a step's input must be kept for step_end
        self.step_input: Callable[[], bool] | None = None


OBSERVERS = Observers()
