"""Token counts from every place Bedrock reports them: response headers, stream invocation metrics,
Converse usage and the models' own usage fields; Bedrock counts input without cache reads and writes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..._core.record import Usage, token_count
from ._fields import as_int, as_map, first_of


@dataclass(slots=True)
class Tokens:
    """Token counts as Bedrock reports them: ``input`` without cache reads and writes."""

    input: int | None = None
    output: int | None = None
    cache_read: int | None = None
    cache_write: int | None = None

    def merge(self, other: Tokens) -> Tokens:
        """Fields of ``self`` win; missing ones come from ``other``."""
        return Tokens(
            self.input if self.input is not None else other.input,
            self.output if self.output is not None else other.output,
            self.cache_read if self.cache_read is not None else other.cache_read,
            self.cache_write if self.cache_write is not None else other.cache_write,
        )

    def usage(self) -> Usage | None:
        if (
            self.input is None
            and self.output is None
            and self.cache_read is None
            and self.cache_write is None
        ):
            return None
        # Checked before adding up: a bogus count must not hide inside a plausible sum.
        fresh, output = token_count(self.input), token_count(self.output)
        read, write = token_count(self.cache_read), token_count(self.cache_write)
        total_input = None
        if fresh is not None:
            total_input = fresh + (read or 0) + (write or 0)
        total = total_input + output if total_input is not None and output is not None else None
        return Usage(
            input_tokens=total_input,
            output_tokens=output,
            cache_read_input_tokens=read,
            cache_creation_input_tokens=write,
            total_tokens=total,
        )


_HEADER_TOKENS: Final = (
    "x-amzn-bedrock-input-token-count",
    "x-amzn-bedrock-output-token-count",
    "x-amzn-bedrock-cache-read-input-token-count",
    "x-amzn-bedrock-cache-write-input-token-count",
)


def _headers(result: Mapping[str, Any]) -> Mapping[str, Any]:
    return as_map(as_map(result.get("ResponseMetadata")).get("HTTPHeaders"))


def header_tokens(result: Mapping[str, Any]) -> Tokens:
    """InvokeModel: the token-count headers Bedrock sends for every model (what AWS bills)."""
    h = _headers(result)
    return Tokens(*(as_int(h.get(name)) for name in _HEADER_TOKENS))


def metrics_tokens(metrics: Mapping[str, Any]) -> Tokens:
    """``amazon-bedrock-invocationMetrics`` of the last stream chunk."""
    return Tokens(
        as_int(metrics.get("inputTokenCount")),
        as_int(metrics.get("outputTokenCount")),
        as_int(metrics.get("cacheReadInputTokenCount")),
        as_int(metrics.get("cacheWriteInputTokenCount")),
    )


def converse_tokens(usage: Mapping[str, Any]) -> Tokens:
    return Tokens(
        as_int(usage.get("inputTokens")),
        as_int(usage.get("outputTokens")),
        as_int(first_of(usage, "cacheReadInputTokens", "cacheReadInputTokenCount")),
        as_int(first_of(usage, "cacheWriteInputTokens", "cacheWriteInputTokenCount")),
    )


def anthropic_tokens(u: Mapping[str, Any]) -> Tokens:
    return Tokens(
        as_int(u.get("input_tokens")),
        as_int(u.get("output_tokens")),
        as_int(u.get("cache_read_input_tokens")),
        as_int(u.get("cache_creation_input_tokens")),
    )


def content_length(result: Mapping[str, Any]) -> int | None:
    return as_int(_headers(result).get("content-length"))
