"""What the reliability tests share: instrumenting providers on in-memory telemetry, what a caller
saw (comparable with and without instrumentation), and finding the LLM spans.

The providers are the real SDKs against the local servers of tests/rig (their fixtures are
registered in tests/conftest.py).
"""

from __future__ import annotations

import itertools
import re
import ssl
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import SpanKind

from genai_observe._core import semconv as sc
from genai_observe.instrumentation.anthropic import AnthropicInstrumentor
from genai_observe.instrumentation.bedrock import BedrockInstrumentor
from genai_observe.instrumentation.langchain import LangChainInstrumentor
from genai_observe.instrumentation.ollama import OllamaInstrumentor
from genai_observe.instrumentation.openai import OpenAIInstrumentor
from tests.conftest import Telemetry

PROVIDERS = ("openai", "anthropic", "bedrock", "ollama", "langchain")
INSTRUMENTORS: dict[str, Any] = {
    "openai": OpenAIInstrumentor,
    "anthropic": AnthropicInstrumentor,
    "bedrock": BedrockInstrumentor,
    "ollama": OllamaInstrumentor,
    "langchain": LangChainInstrumentor,
}
# gen_ai.provider.name of each provider's LLM spans.
PROVIDER_NAMES = {
    "openai": sc.PROVIDER_OPENAI,
    "anthropic": sc.PROVIDER_ANTHROPIC,
    "bedrock": sc.PROVIDER_AWS_BEDROCK,
    "ollama": sc.PROVIDER_OLLAMA,
    "langchain": sc.PROVIDER_LANGCHAIN,
}

ANTHROPIC_MODEL = "claude-rel"
BEDROCK_MODEL = "amazon.nova-lite-v1:0"
BEDROCK_CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"
OLLAMA_MODEL = "llama-rel"


# The fixture serving each provider's calls, and the instrumentations those calls go through
# (LangChain: ChatOpenAI over openai).
SERVERS = {
    "openai": "openai_server",
    "anthropic": "anthropic_server",
    "bedrock": "bedrock_server",
    "ollama": "ollama_server",
    "langchain": "openai_server",
}
INSTRUMENTATIONS = {
    "openai": ("openai",),
    "anthropic": ("anthropic",),
    "bedrock": ("bedrock",),
    "ollama": ("ollama",),
    "langchain": ("langchain", "openai"),
}


@contextmanager
def instrumented(telemetry: Telemetry, *names: str, **options: Any) -> Iterator[list[Any]]:
    """The named instrumentations on, recording into ``telemetry``; off again afterwards."""
    active: list[Any] = []
    try:
        for name in names:
            instrumentor = INSTRUMENTORS[name]()
            if instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.uninstrument()
            instrumentor.instrument(**telemetry.instrument_kwargs(**options))
            active.append(instrumentor)
        yield active
    finally:
        for instrumentor in reversed(active):
            instrumentor.uninstrument()


# --- SDK clients for the rigs ----------------------------------------------------------------------

# The rigs speak plain HTTP, yet every httpx client loads the CA bundle into a new SSL context
# (~40 ms a client): one shared context keeps client creation cheap.
TLS = ssl.create_default_context()


def openai_client(server: Any, *, is_async: bool = False, **options: Any) -> Any:
    import openai

    if is_async:
        return server.async_client(http_client=openai.DefaultAsyncHttpxClient(verify=TLS), **options)
    return server.client(http_client=openai.DefaultHttpxClient(verify=TLS), **options)


def anthropic_client(server: Any, *, is_async: bool = False, **options: Any) -> Any:
    import anthropic

    if is_async:
        return server.async_client(http_client=anthropic.DefaultAsyncHttpxClient(verify=TLS), **options)
    return server.client(http_client=anthropic.DefaultHttpxClient(verify=TLS), **options)


def ollama_client(server: Any, *, is_async: bool = False, **options: Any) -> Any:
    return (server.async_client if is_async else server.client)(verify=TLS, **options)


def bedrock_client(server: Any, **config: Any) -> Any:
    """boto3 ``bedrock-runtime`` for the rig, without retries (each request consumes one reply)."""
    config.setdefault("retries", {"total_max_attempts": 1})
    return server.client(**config)


# --- what the caller saw -----------------------------------------------------------------------

# Ids the rigs number per response or request (msg_mock000012, req_mock000003, chatcmpl-mock000001,
# toolu_mock...): they differ between two otherwise identical calls.
_RIG_IDS = re.compile(r"\b([A-Za-z]+[-_]mock)[0-9a-f]+\b")
_VOLATILE_KEYS = frozenset({"created"})


def scrub(value: Any) -> Any:
    """``value`` with the per-response ids of the rigs replaced, for comparing two calls."""
    if isinstance(value, str):
        return _RIG_IDS.sub(r"\1#", value)
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if k not in _VOLATILE_KEYS}
    if isinstance(value, (list, tuple)):
        return type(value)(scrub(v) for v in value)
    return value


@dataclass(frozen=True)
class Seen:
    """What the caller saw: ``("ok", result)`` or ``("raise", (chunks before, type, message))``.

    Equality ignores the exception object itself (kept for the span checks)."""

    kind: str
    value: Any
    error: BaseException | None = field(default=None, compare=False, repr=False)


def _raised(got: list[Any], exc: BaseException) -> Seen:
    return Seen("raise", (scrub(got), type(exc), scrub(str(exc))), exc)


def settle(call: Callable[[list[Any]], Any]) -> Seen:
    """Run ``call(got)``; a stream appends its chunks to ``got`` as they arrive."""
    got: list[Any] = []
    try:
        value = call(got)
    except Exception as exc:
        return _raised(got, exc)
    return Seen("ok", scrub(value))


async def asettle(call: Callable[[list[Any]], Awaitable[Any]]) -> Seen:
    got: list[Any] = []
    try:
        value = await call(got)
    except Exception as exc:
        return _raised(got, exc)
    return Seen("ok", scrub(value))


def dump(obj: Any) -> Any:
    """A pydantic model (every SDK's results) as plain data; anything else as it is."""
    model_dump = getattr(obj, "model_dump", None)
    if callable(model_dump):
        return model_dump(warnings=False)
    return obj


def error_type(exc: BaseException) -> str:
    """The documented ``error.type`` (docs/telemetry.md#errors): the AWS error code, else the class."""
    response = getattr(exc, "response", None)
    error = response.get("Error") if isinstance(response, dict) else None
    code = error.get("Code") if isinstance(error, dict) else None
    return code if isinstance(code, str) and code else type(exc).__name__


# --- spans ---------------------------------------------------------------------------------------


def llm_spans(telemetry: Telemetry) -> list[ReadableSpan]:
    """The LLM spans (CLIENT spans with a GenAI operation); LangChain steps are INTERNAL."""
    return [
        s
        for s in telemetry.spans()
        if s.kind is SpanKind.CLIENT and sc.GEN_AI_OPERATION_NAME in (s.attributes or {})
    ]


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def ancestry(span: ReadableSpan, spans: list[ReadableSpan]) -> list[ReadableSpan]:
    """``span``'s exported ancestors, nearest first."""
    by_id = {s.context.span_id: s for s in spans}
    out: list[ReadableSpan] = []
    current = span
    while current.parent is not None and current.parent.span_id in by_id:
        current = by_id[current.parent.span_id]
        out.append(current)
    return out


# --- LangChain chains ----------------------------------------------------------------------------


def fake_chain(text: str, model_cls: Any = None) -> Any:
    """prompt | a langchain-core fake chat model answering ``text`` | parser (no provider SDK)."""
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    usage = {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}
    answer = AIMessage(content=text, usage_metadata=usage)
    model = (model_cls or GenericFakeChatModel)(messages=itertools.repeat(answer))
    return ChatPromptTemplate.from_messages([("user", "{q}")]) | model | StrOutputParser()


def openai_chain(base_url: str, model: str = "gpt-rel", **options: Any) -> Any:
    """prompt | ChatOpenAI (langchain-openai, the real openai SDK underneath) | parser.

    The async HTTP client is the chain's own: langchain-openai's shared default one is bound to the
    event loop that first used it, and every ``asyncio.run`` has a new loop.
    """
    import openai
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_openai import ChatOpenAI

    options.setdefault("max_retries", 0)
    options.setdefault("http_client", openai.DefaultHttpxClient(verify=TLS))
    options.setdefault("http_async_client", openai.DefaultAsyncHttpxClient(verify=TLS))
    chat = ChatOpenAI(model=model, base_url=base_url, api_key="test", **options)
    return ChatPromptTemplate.from_messages([("user", "{q}")]) | chat | StrOutputParser()


class SpanCounter(SpanProcessor):
    """A span processor that sees every span start and end: a span that started and never ended
    is invisible to an exporter, so "every started span ended" needs this."""

    def __init__(self) -> None:
        self.started: dict[int, str] = {}
        self.ended: list[int] = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self.started[span.context.span_id] = span.name

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append(span.context.span_id)

    def open(self) -> list[str]:
        """Names of the spans that started and have not ended."""
        done = set(self.ended)
        return [name for span_id, name in self.started.items() if span_id not in done]

    def ended_twice(self) -> list[int]:
        return [span_id for span_id in set(self.ended) if self.ended.count(span_id) > 1]


def count_spans(telemetry: Telemetry) -> SpanCounter:
    counter = SpanCounter()
    telemetry.tracer_provider.add_span_processor(counter)
    return counter
