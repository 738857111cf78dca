"""Where a client sends its requests, read once per client: ``server.address`` and ``server.port``.

Every provider reads its client's base URL the same way; the per-client answers are kept in weak
dictionaries, so they go with the clients and are never unbounded.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar
from urllib.parse import SplitResult, urlsplit

T = TypeVar("T")


@functools.lru_cache(maxsize=64)
def host_port(url: str) -> tuple[str | None, int | None]:
    """(host, port) of ``url``: the host lower-cased, the port defaulting by scheme; None where the
    URL has no host, or a port that is not a number."""
    host, port, _parts = split(url)
    return host, port


def split(url: str) -> tuple[str | None, int | None, SplitResult]:
    """:func:`host_port` and the split URL, for readers that also need its path or scheme."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower() or None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80 if parts.scheme == "http" else None)
    except ValueError:
        port = None
    return host, port, parts


class PerClient(Generic[T]):
    """What ``compute(client, *context)`` says of each client, computed once while the client lives
    (``context``, the same for every call, is not part of the key)."""

    __slots__ = ("_cache", "_compute")

    def __init__(self, compute: Callable[..., T]) -> None:
        self._compute = compute
        self._cache: weakref.WeakKeyDictionary[Any, T] = weakref.WeakKeyDictionary()

    def __call__(self, client: Any, *context: Any) -> T:
        try:
            cached = self._cache.get(client)
        except TypeError:  # not weakly referenceable (or unhashable): computed every time
            return self._compute(client, *context)
        if cached is None:
            cached = self._compute(client, *context)
            try:
                self._cache[client] = cached
            except TypeError:
                pass
        return cached

    def __len__(self) -> int:
        return len(self._cache)
