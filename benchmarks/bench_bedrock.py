"""Bedrock Runtime cost (boto3), uninstrumented vs instrumented, with the HTTP send stubbed in-process.

A ``before-send`` handler answers every request with canned wire bytes, so botocore still builds
and signs the request and parses real responses: rest-json for Converse and binary
``application/vnd.amazon.eventstream`` frames (prelude, CRC32s, string headers) for ConverseStream.
The frames come from the test rig's encoder, the one the instrumentation tests run against.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from tests.rig.bedrock_server import EVENTSTREAM, json_event

from genai_observe.instrumentation.bedrock import BedrockInstrumentor

from ._harness import Result, Scenario, instrument_toggle, per_chunk_estimate, run_scenarios

CHUNKS = 100
MODEL = "amazon.nova-lite-v1:0"
_USAGE = {"inputTokens": 20, "outputTokens": CHUNKS, "totalTokens": 20 + CHUNKS}
_CONVERSE = json.dumps(
    {
        "output": {
            "message": {"role": "assistant", "content": [{"text": "Hello! How can I help you today?"}]}
        },
        "stopReason": "end_turn",
        "usage": {"inputTokens": 20, "outputTokens": 9, "totalTokens": 29},
        "metrics": {"latencyMs": 321},
    }
).encode()
_FRAMES = [
    json_event("messageStart", {"role": "assistant"}),
    *(
        json_event("contentBlockDelta", {"delta": {"text": f"tok{i} "}, "contentBlockIndex": 0})
        for i in range(CHUNKS)
    ),
    json_event("contentBlockStop", {"contentBlockIndex": 0}),
    json_event("messageStop", {"stopReason": "end_turn"}),
    json_event("metadata", {"usage": _USAGE, "metrics": {"latencyMs": 321}}),
]
_STREAM = b"".join(_FRAMES)


class _Raw:
    """The part of urllib3's response botocore uses: ``stream()`` for event streams, ``read()``."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._done = False

    def stream(self, amt: int = 2**16, decode_content: bool | None = None) -> Iterator[bytes]:
        if not self._done:
            self._done = True
            yield self._data

    def read(self, amt: int | None = None, decode_content: bool | None = None) -> bytes:
        if self._done:
            return b""
        self._done = True
        return self._data

    def close(self) -> None:
        self._done = True


def _send(request: Any, **_: Any) -> AWSResponse:
    headers = {"x-amzn-requestid": "00000000-0000-0000-0000-000000000000"}
    if request.url.endswith("/converse-stream"):
        headers["content-type"] = EVENTSTREAM
        return AWSResponse(request.url, 200, headers, _Raw(_STREAM))
    headers["content-type"] = "application/json"
    headers["content-length"] = str(len(_CONVERSE))
    return AWSResponse(request.url, 200, headers, _Raw(_CONVERSE))


MESSAGES: Any = [{"role": "user", "content": [{"text": "Hello there!"}]}]
SYSTEM: Any = [{"text": "You are helpful."}]


def client() -> Any:
    """A bedrock-runtime client with fake credentials (nothing leaves the process)."""
    bedrock = boto3.session.Session().client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="AKIDBENCHMARK000000",
        aws_secret_access_key="bench-secret",
        aws_session_token="bench-token",
    )
    bedrock.meta.events.register("before-send.bedrock-runtime", _send)
    return bedrock


_CONFIG = {"maxTokens": 256}


def _converse(bedrock: Any) -> Any:
    return bedrock.converse(modelId=MODEL, messages=MESSAGES, system=SYSTEM, inferenceConfig=_CONFIG)


def _converse_stream(bedrock: Any) -> Any:
    response = bedrock.converse_stream(
        modelId=MODEL, messages=MESSAGES, system=SYSTEM, inferenceConfig=_CONFIG
    )
    return response["stream"]


def _scenario(name: str, make: Callable[[Any], Any], chunks: int = 0) -> Scenario:
    def setup() -> Callable[[bool], Any]:
        bedrock = client()
        return lambda _instrumented: make(bedrock)

    return Scenario(name, "bedrock", BedrockInstrumentor, setup, chunks)


def scenarios() -> list[Scenario]:
    """The calls of this suite, shared by the wall-clock run and the instruction counter."""
    return [
        _scenario("bedrock.converse", _converse),
        _scenario("bedrock.converse_stream", _converse_stream, len(_FRAMES)),
    ]


def run(handle: Any, iterations: int, warmup: int) -> list[Result]:
    toggle = instrument_toggle(BedrockInstrumentor(), handle)
    results = run_scenarios(scenarios(), toggle, iterations=iterations, warmup=warmup)
    per_chunk_estimate(results[1], results[0])
    return results
