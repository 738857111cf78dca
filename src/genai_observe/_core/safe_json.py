"""JSON from providers, read and written without ever raising.

``json`` recurses once per nesting level and raises ``RecursionError`` (not ``ValueError``) past
the interpreter's recursion limit, about 1,000 levels: a model's tool-call arguments can be nested
that deep. Caught as a parse error, the whole document would be lost (an InvokeModel body with its
token counts and finish reason); instead the values nested deeper than :data:`MAX_DEPTH` are
replaced by :data:`TOO_DEEP` and the rest is kept.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

MAX_DEPTH: Final = 64
TOO_DEEP: Final = "<nested too deep>"  # the marker _content uses for the same cut

# A JSON string (escapes included), or a bracket outside of one.
_TOKENS: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


def loads(data: Any, default: Any = None) -> Any:
    """``json.loads(data)``; ``default`` for anything that is not JSON, cut at MAX_DEPTH if too deep."""
    try:
        return json.loads(data)
    except RecursionError:
        pass
    except (ValueError, TypeError):  # UnicodeDecodeError is a ValueError
        return default
    try:
        text = data.decode(json.detect_encoding(data)) if isinstance(data, (bytes, bytearray)) else str(data)
        return json.loads(_cut(text))
    except (ValueError, RecursionError):
        return default


def _cut(text: str) -> str:
    """``text`` with every value that opens below MAX_DEPTH replaced by the TOO_DEEP string."""
    parts: list[str] = []
    depth = 0
    kept_from = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth == MAX_DEPTH + 1:
                parts.append(text[kept_from : match.start()])
                parts.append(f'"{TOO_DEEP}"')
        elif token in ("]", "}"):
            if depth == MAX_DEPTH + 1:
                kept_from = match.end()
            depth -= 1
    parts.append(text[kept_from:] if depth <= MAX_DEPTH else "")
    return "".join(parts)


def dumps(value: Any, **options: Any) -> str | None:
    """``json.dumps(value)``, levels past MAX_DEPTH as TOO_DEEP; None for what JSON cannot hold."""
    try:
        return json.dumps(value, **options)
    except RecursionError:
        pass
    except (ValueError, TypeError):
        return None
    try:
        return json.dumps(_shallow(value, 0), **options)
    except (ValueError, TypeError, RecursionError):
        return None


def _shallow(value: Any, depth: int) -> Any:
    if isinstance(value, dict):
        return {k: _shallow(v, depth + 1) for k, v in value.items()} if depth < MAX_DEPTH else TOO_DEEP
    if isinstance(value, (list, tuple)):
        return [_shallow(v, depth + 1) for v in value] if depth < MAX_DEPTH else TOO_DEEP
    return value
