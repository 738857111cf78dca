"""The InvokeModel response body (issue 13, item 6): genai-observe observes it as the app reads it.

botocore's ``StreamingBody`` is a live HTTP body. With genai-observe, ``invoke_model()`` must return
when botocore returns (before a slow body arrived), every way of reading the body must give the
same bytes and raise the same exceptions as without it, and its other methods must keep working.
The span ends when the body has been read to the end, is closed, fails, or is dropped unread:
exactly once, and its duration covers the read.

Each transparency case makes the same call against the Bedrock rig twice, uninstrumented and then
instrumented, and compares what the caller saw.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import botocore.exceptions
import botocore.response
import pytest
from opentelemetry.trace import StatusCode

from genai_observe._core import semconv as sc
from genai_observe.instrumentation.bedrock import _adapter as bedrock_ad
from tests.conftest import Telemetry
from tests.rig.bedrock_server import BedrockMockServer, Reply

from ._providers import (
    BEDROCK_CLAUDE,
    SpanCounter,
    attrs,
    bedrock_client,
    count_spans,
    instrumented,
    llm_spans,
    settle,
)

pytestmark = pytest.mark.usefixtures("aws_env")

REQUEST = json.dumps(
    {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "hi"}],
    }
)
TEXT = "A long answer. " * 200
# Indented, so that the body has lines (iter_lines, readline) and spans several 1 KiB chunks.
ANSWER = json.dumps(
    {
        "id": "msg_body",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-haiku-20240307",
        "content": [{"type": "text", "text": TEXT}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 21, "output_tokens": 9},
    },
    indent=1,
).encode()
HEADER_USAGE = (13, 7)  # the rig's token-count headers (the default Usage), which win over the body
BODY_DELAY = 1.0


def _invoke(server: BedrockMockServer, **config: Any) -> dict[str, Any]:
    response: dict[str, Any] = bedrock_client(server, **config).invoke_model(
        modelId=BEDROCK_CLAUDE, body=REQUEST
    )
    return response


def _read_n(body: Any, got: list[Any]) -> Any:
    while chunk := body.read(100):
        got.append(chunk)
    return got


def _read_exact(body: Any, got: list[Any]) -> Any:
    got.append(body.read(len(ANSWER)))  # exactly Content-Length, no final empty read
    return got


def _readinto(body: Any, got: list[Any]) -> Any:
    buffer = bytearray(300)
    while n := body.readinto(buffer):
        got.append(bytes(buffer[:n]))
    return got


def _extend(got: list[Any], items: Iterator[Any]) -> list[Any]:
    for item in items:
        got.append(item)
    return got


def _readline(body: Any, got: list[Any]) -> Any:
    while line := body.readline():
        got.append(line)
    return got


def _with_raw(body: Any, got: list[Any]) -> Any:
    with body as raw:  # StreamingBody's context manager hands out the raw urllib3 stream
        got.append(raw.read())
    return got


# How an app reads the body; each appends what it received to ``got`` (kept when reading raises).
READERS: dict[str, Callable[[Any, list[Any]], Any]] = {
    "read": lambda body, got: [*got, body.read()],
    "read-n": _read_n,
    "read-exact": _read_exact,
    "readinto": _readinto,
    "iter_chunks": lambda body, got: _extend(got, body.iter_chunks(64)),
    "iter_lines": lambda body, got: _extend(got, body.iter_lines()),
    "iter": lambda body, got: _extend(got, iter(body)),
    "next": lambda body, got: _extend(got, iter(lambda: next(body, b""), b"")),
    "readline": _readline,
    "readlines": lambda body, got: [*got, *body.readlines()],
    "json.load": lambda body, got: [*got, json.load(body)],
    "with-raw": _with_raw,
}
if not hasattr(botocore.response.StreamingBody, "readinto"):  # botocore < 1.35
    del READERS["readinto"]


@pytest.fixture
def counter(telemetry: Telemetry) -> SpanCounter:
    return count_spans(telemetry)


def _one_span_ended_once(telemetry: Telemetry, counter: SpanCounter) -> dict[str, Any]:
    assert counter.open() == [] and counter.ended_twice() == []
    (span,) = llm_spans(telemetry)
    return attrs(span)


# --- (a) a slow body ---------------------------------------------------------------------------


def test_invoke_model_returns_before_a_slow_body_arrives(
    bedrock_server: BedrockMockServer, telemetry: Telemetry, counter: SpanCounter
) -> None:
    """The server sends the headers at once and the body a second later: ``invoke_model()``
    returns at once, with genai-observe as without it; the span ends after the body was read."""
    for instrument in (False, True):
        bedrock_server.script(Reply(body=ANSWER, body_delay=BODY_DELAY))
        with instrumented(telemetry, *(("bedrock",) if instrument else ())):
            client = bedrock_client(bedrock_server)  # made before the clock starts: it takes a while
            started = time.perf_counter()
            response = client.invoke_model(modelId=BEDROCK_CLAUDE, body=REQUEST)
            returned = time.perf_counter() - started
            assert returned < BODY_DELAY / 2, (instrument, returned)
            assert llm_spans(telemetry) == []  # the body is still on its way
            assert response["body"].read() == ANSWER
    a = _one_span_ended_once(telemetry, counter)
    (span,) = llm_spans(telemetry)
    assert span.end_time is not None and span.start_time is not None
    assert (span.end_time - span.start_time) / 1e9 >= BODY_DELAY * 0.9  # the duration covers the body
    assert a["gen_ai.completion.0.content"] == TEXT and a[sc.STREAM_END_REASON] == "exhausted"


# --- (b) every way of reading, complete and truncated --------------------------------------------


@pytest.mark.parametrize("truncate", [False, True], ids=["complete", "truncated"])
@pytest.mark.parametrize("reader", list(READERS))
def test_every_reader_sees_the_same_bytes_and_errors(
    bedrock_server: BedrockMockServer, telemetry: Telemetry, counter: SpanCounter, reader: str, truncate: bool
) -> None:
    """A truncated body (``Content-Length`` larger than what is sent, then the connection closes)
    gives the app the same data, then the same exception, as without genai-observe."""

    def call(got: list[Any]) -> Any:
        return READERS[reader](_invoke(bedrock_server)["body"], got)

    bedrock_server.script(Reply(body=ANSWER, truncate=truncate))
    without = settle(call)
    bedrock_server.script(Reply(body=ANSWER, truncate=truncate))
    with instrumented(telemetry, "bedrock"):
        seen = settle(call)
        gc.collect()
    assert seen == without
    a = _one_span_ended_once(telemetry, counter)
    (span,) = llm_spans(telemetry)
    assert (a[sc.GEN_AI_USAGE_INPUT_TOKENS], a[sc.GEN_AI_USAGE_OUTPUT_TOKENS]) == HEADER_USAGE
    if without.kind == "raise":
        assert without.error is not None and seen.error is not None
        assert span.status.status_code is StatusCode.ERROR
        assert a[sc.ERROR_TYPE] == type(seen.error).__name__ and a[sc.STREAM_END_REASON] == "error"
    else:
        assert span.status.status_code is StatusCode.UNSET and sc.ERROR_TYPE not in a
    if truncate:
        assert "gen_ai.completion.0.content" not in a  # half a body is not parsed
    else:
        assert a["gen_ai.completion.0.content"] == TEXT
        assert a[sc.GEN_AI_RESPONSE_ID] == "msg_body"
        assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
        assert a[sc.STREAM_END_REASON] == "exhausted"


# --- (c) the body's other methods -----------------------------------------------------------------


def _other_methods(body: Any, got: list[Any]) -> Any:
    got.append(isinstance(body, botocore.response.StreamingBody))
    got.append(body.set_socket_timeout(5.0))
    got.append(body.tell())
    got.append(body.read(10))
    got.append(body.tell())
    got.append(body.readable())
    got.append(type(body._raw_stream).__name__)
    got.append(body._content_length)
    got.append(body.close())
    got.append(body.close())
    got.append(body.read())  # after close(): botocore raises IncompleteReadError
    return got


def test_the_body_methods_work_as_without(
    bedrock_server: BedrockMockServer, telemetry: Telemetry, counter: SpanCounter
) -> None:
    """``set_socket_timeout()``, ``tell()``, ``close()``, ``_raw_stream`` ... as without genai-observe;
    ``close()`` before the end ends the span as ``closed``, once (a read after it fails for the app
    as without genai-observe, and does not end the span again)."""

    def call(got: list[Any]) -> Any:
        bedrock_server.script(Reply(body=ANSWER))
        return _other_methods(_invoke(bedrock_server)["body"], got)

    without = settle(call)
    with instrumented(telemetry, "bedrock"):
        seen = settle(call)
        gc.collect()
    assert seen == without
    got, error, _ = without.value
    assert got == [True, None, 0, ANSWER[:10], 10, True, "HTTPResponse", str(len(ANSWER)), None, None]
    assert error is botocore.exceptions.IncompleteReadError
    a = _one_span_ended_once(telemetry, counter)
    assert a[sc.STREAM_END_REASON] == "closed" and sc.ERROR_TYPE not in a
    assert (a[sc.GEN_AI_USAGE_INPUT_TOKENS], a[sc.GEN_AI_USAGE_OUTPUT_TOKENS]) == HEADER_USAGE


# --- (d) a body never read ------------------------------------------------------------------------


def test_a_body_never_read_ends_its_span_once_when_dropped(
    bedrock_server: BedrockMockServer, telemetry: Telemetry, counter: SpanCounter
) -> None:
    """The span stays open while the app holds the unread body, and ends as ``abandoned`` when it
    drops it, with what the response headers tell (token counts, request id)."""
    with instrumented(telemetry, "bedrock"):
        response = _invoke(bedrock_server)
        assert llm_spans(telemetry) == [] and len(counter.open()) == 1
        raw = response["body"]._raw_stream  # to release the connection afterwards
        request_id = response["ResponseMetadata"]["RequestId"]
        del response
        gc.collect()
        raw.close()
    a = _one_span_ended_once(telemetry, counter)
    (span,) = llm_spans(telemetry)
    assert a[sc.STREAM_END_REASON] == "abandoned" and span.status.status_code is StatusCode.UNSET
    assert (a[sc.GEN_AI_USAGE_INPUT_TOKENS], a[sc.GEN_AI_USAGE_OUTPUT_TOKENS]) == HEADER_USAGE
    assert a[sc.AWS_REQUEST_ID] == request_id
    assert "gen_ai.completion.0.content" not in a


def test_sixty_unread_bodies_end_sixty_spans(
    bedrock_server: BedrockMockServer, telemetry: Telemetry, counter: SpanCounter
) -> None:
    with instrumented(telemetry, "bedrock"):
        client = bedrock_client(bedrock_server)
        for _ in range(60):
            client.invoke_model(modelId=BEDROCK_CLAUDE, body=REQUEST)  # result dropped at once
        gc.collect()
    assert counter.open() == [] and counter.ended_twice() == []
    spans = llm_spans(telemetry)
    assert len(spans) == 60 and {attrs(s)[sc.STREAM_END_REASON] for s in spans} == {"abandoned"}


# --- (e) a complete read, and the buffer's cap ----------------------------------------------------


def test_a_full_read_records_usage_and_content(
    bedrock_server: BedrockMockServer, telemetry: Telemetry, counter: SpanCounter
) -> None:
    with instrumented(telemetry, "bedrock"):
        bedrock_server.script(Reply(body=ANSWER))
        response = _invoke(bedrock_server)
        assert llm_spans(telemetry) == []  # open until the app has read the body
        assert json.loads(response["body"].read())["content"][0]["text"] == TEXT
        a = _one_span_ended_once(telemetry, counter)  # at the end of the body, not at the drop
    assert (
        a["gen_ai.completion.0.content"] == TEXT and a[sc.GEN_AI_RESPONSE_MODEL] == "claude-3-haiku-20240307"
    )
    assert (a[sc.GEN_AI_USAGE_INPUT_TOKENS], a[sc.GEN_AI_USAGE_OUTPUT_TOKENS]) == HEADER_USAGE
    assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",) and a[sc.STREAM_END_REASON] == "exhausted"
    assert a[sc.AWS_REQUEST_ID] == response["ResponseMetadata"]["RequestId"]


@pytest.mark.parametrize("length", ["known", "unknown"])
def test_a_body_over_the_cap_is_not_kept(
    bedrock_server: BedrockMockServer,
    telemetry: Telemetry,
    counter: SpanCounter,
    monkeypatch: pytest.MonkeyPatch,
    length: str,
) -> None:
    """Over the cap, the app still gets every byte; the span has what the headers tell, no content.
    With a known ``Content-Length`` nothing is kept from the start; without one, the copy is
    dropped when the bytes read pass the cap."""
    monkeypatch.setattr(bedrock_ad, "MAX_BODY_BYTES", len(ANSWER) // 3)
    if length == "unknown":  # the rig always sends Content-Length: make it unread
        monkeypatch.setattr(bedrock_ad, "content_length", lambda result: None)
    bedrock_server.script(Reply(body=ANSWER))
    with instrumented(telemetry, "bedrock"):
        assert b"".join(_invoke(bedrock_server)["body"].iter_chunks(100)) == ANSWER
    a = _one_span_ended_once(telemetry, counter)
    assert a[sc.STREAM_END_REASON] == "exhausted" and "gen_ai.completion.0.content" not in a
    assert (a[sc.GEN_AI_USAGE_INPUT_TOKENS], a[sc.GEN_AI_USAGE_OUTPUT_TOKENS]) == HEADER_USAGE


def test_a_body_of_unknown_length_under_the_cap_is_recorded(
    bedrock_server: BedrockMockServer,
    telemetry: Telemetry,
    counter: SpanCounter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a ``Content-Length``, the end of the body is the empty read that follows it."""
    monkeypatch.setattr(bedrock_ad, "content_length", lambda result: None)
    bedrock_server.script(Reply(body=ANSWER))
    with instrumented(telemetry, "bedrock"):
        body = _invoke(bedrock_server)["body"]
        assert body.read(len(ANSWER)) == ANSWER
        assert llm_spans(telemetry) == []  # the end is not known yet
        assert body.read(1) == b""
        a = _one_span_ended_once(telemetry, counter)
    assert a[sc.STREAM_END_REASON] == "exhausted" and a["gen_ai.completion.0.content"] == TEXT
