"""Replays the recorded Ollama traffic through the real ``ollama`` client and our instrumentation.

For each recorded request (chat, generate, embed, embeddings; streamed or not), the recorded
request is sent again through the instrumented client method against a server answering with the
recorded response; the span must carry what the recorded response says (model, token counts,
timings, finish reason, text, vector size). A second test checks that the fake Ollama server of
the test rig answers with the same fields as the real server did. Skipped without ``../shared``.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from typing import Any

import ollama
import pytest

from genai_observe.instrumentation.ollama import OllamaInstrumentor
from genai_observe.instrumentation.ollama import _adapter as ad
from tests.conftest import Telemetry
from tests.rig.ollama_server import OllamaMockServer
from tests.rig.replay import Interaction, ReplayServer, interactions

ENDPOINTS = ("/api/chat", "/api/generate", "/api/embed", "/api/embeddings")
CASES = interactions("ollama", ENDPOINTS)
METHODS = {
    "/api/chat": "chat",
    "/api/generate": "generate",
    "/api/embed": "embed",
    "/api/embeddings": "embeddings",
}
TIMINGS = dict(ad.TIMINGS)

needs_recordings = pytest.mark.skipif(not CASES, reason="recorded traffic (../shared/recorded) not available")


def _ids(case: Interaction) -> str:
    return case.label()


@pytest.fixture(scope="module")
def replay() -> Iterator[ReplayServer]:
    server = ReplayServer()
    yield server
    server.stop()


def _kwargs(method: Any, body: dict[str, Any]) -> dict[str, Any]:
    """The recorded JSON body as keyword arguments of the client method (None and unknown keys dropped)."""
    accepted = set(inspect.signature(method).parameters)
    return {k: v for k, v in body.items() if k in accepted and v is not None}


def _lines(case: Interaction) -> list[dict[str, Any]]:
    """The recorded answer as JSON objects: one, or one per NDJSON line."""
    out = []
    for raw in case.body.decode("utf-8", "replace").splitlines():
        if raw.strip():
            try:
                value = json.loads(raw)
            except ValueError:
                continue
            if isinstance(value, dict):
                out.append(value)
    return out


def _expected(case: Interaction) -> dict[str, Any]:
    """What the recorded response says, in our attribute names."""
    lines = _lines(case)
    if not lines:
        return {}
    final = lines[-1]
    exp: dict[str, Any] = {}
    if case.path.endswith("/api/embeddings"):
        exp["gen_ai.embeddings.dimension.count"] = len(final["embedding"])
        return exp
    exp["gen_ai.response.model"] = final.get("model")
    exp["gen_ai.usage.input_tokens"] = final.get("prompt_eval_count")
    exp["gen_ai.usage.output_tokens"] = final.get("eval_count")
    for field, attribute in TIMINGS.items():
        if isinstance(final.get(field), int):
            exp[attribute] = final[field] / 1e9
    if case.path.endswith("/api/embed"):
        exp["gen_ai.embeddings.dimension.count"] = len(final["embeddings"][0])
        return {k: v for k, v in exp.items() if v is not None}
    if case.path.endswith("/api/chat"):
        text = "".join((line.get("message") or {}).get("content") or "" for line in lines)
    else:
        text = "".join(line.get("response") or "" for line in lines)
    if text:
        exp["gen_ai.completion.0.content"] = text
    if final.get("done_reason"):
        exp["gen_ai.completion.0.finish_reason"] = final["done_reason"]
    return {k: v for k, v in exp.items() if v is not None}


@needs_recordings
@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_replay(case: Interaction, replay: ReplayServer, telemetry: Telemetry) -> None:
    body = case.request_json()
    if not isinstance(body, dict):
        pytest.skip("request body is not JSON")
    name = METHODS[next(e for e in ENDPOINTS if case.path.endswith(e))]
    if not hasattr(ollama.Client, name):
        pytest.skip(f"this ollama has no {name}()")
    chat_params = inspect.signature(ollama.Client.chat).parameters
    if "tools" not in chat_params and any(m.get("role") == "tool" for m in body.get("messages") or ()):
        pytest.skip("this ollama has no tool messages")
    with telemetry.instrumenting(OllamaInstrumentor()):
        replay.current = case
        method = getattr(ollama.Client(host=replay.url), name)
        error: Exception | None = None
        try:
            result = method(**_kwargs(method, body))
            if body.get("stream"):
                for _ in result:
                    pass
        except ollama.ResponseError as exc:
            error = exc
    spans = telemetry.spans()
    assert len(spans) == 1, case.label()
    attributes = dict(spans[0].attributes or {})
    if case.status >= 400:
        assert error is not None and attributes["error.type"] == "ResponseError"
        return
    assert error is None
    assert attributes["gen_ai.request.model"] == body.get("model")
    assert attributes["gen_ai.provider.name"] == "ollama" and attributes["gen_ai.system"] == "Ollama"
    assert attributes["server.address"] == "127.0.0.1"
    assert bool(attributes.get("gen_ai.request.stream")) == bool(body.get("stream"))
    expected = _expected(case)
    assert expected, case.label()
    for key, value in expected.items():
        assert attributes.get(key) == value, f"{case.label()}: {key}"
    if body.get("messages"):
        first = body["messages"][0]
        assert attributes["gen_ai.prompt.0.role"] == first["role"]
    if isinstance(body.get("prompt"), str) and body["prompt"] and "generate" in case.path:
        assert attributes["gen_ai.prompt.0.content"] == body["prompt"]


@needs_recordings
@pytest.mark.parametrize(
    ("endpoint", "stream"),
    [
        ("/api/chat", False),
        ("/api/chat", True),
        ("/api/generate", False),
        ("/api/generate", True),
        ("/api/embeddings", False),
    ],
)
def test_rig_answers_like_the_recorded_server(endpoint: str, stream: bool) -> None:
    """Every field the real server sent (per line kind) is also in the fake server's answer."""
    recorded = [
        c
        for c in CASES
        if c.path.endswith(endpoint)
        and c.status < 400
        and isinstance(c.request_json(), dict)
        and bool(c.request_json().get("stream")) == stream
    ]
    if not recorded:
        pytest.skip(f"no recorded {'streamed ' if stream else ''}{endpoint} answer")
    case = recorded[0]
    real = _lines(case)
    body = dict(case.request_json())
    with OllamaMockServer() as server:
        method = getattr(server.client(), METHODS[endpoint])
        result = method(**_kwargs(method, body))
        if stream:
            list(result)
        fake = _lines_of(server.last_request, server)
    assert _shape(real[-1]) <= _shape(fake[-1]), case.label()
    if stream:
        assert _shape(real[0]) <= _shape(fake[0]), case.label()
        assert all(line.get("done") is False for line in fake[:-1])


def _shape(obj: dict[str, Any], prefix: str = "") -> set[str]:
    keys = set()
    for key, value in obj.items():
        keys.add(prefix + key)
        if isinstance(value, dict):
            keys |= _shape(value, f"{prefix}{key}.")
    return keys


def _lines_of(request: Any, server: OllamaMockServer) -> list[dict[str, Any]]:
    """Re-ask the fake server the same request over plain HTTP and split its answer into objects."""
    import urllib.request

    req = urllib.request.Request(
        server.url + request.path, data=request.raw_body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as response:
        text = response.read().decode()
    return [json.loads(line) for line in text.splitlines() if line.strip()]
