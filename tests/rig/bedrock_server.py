"""A fake Amazon Bedrock Runtime REST API on 127.0.0.1 for driving the real ``boto3`` client in tests.

It answers the four ``bedrock-runtime`` operations the way botocore expects them on the wire:

* ``POST /model/{modelId}/invoke``                       model-native JSON body, token-count headers
* ``POST /model/{modelId}/invoke-with-response-stream``  AWS event stream of ``chunk`` events
* ``POST /model/{modelId}/converse``                     Converse JSON
* ``POST /model/{modelId}/converse-stream``              AWS event stream of Converse events

Event streams use the binary ``application/vnd.amazon.eventstream`` framing (prelude with total and
headers length, prelude CRC32, string headers, payload, message CRC32), written by
:func:`encode_message` and sent with chunked transfer encoding, one HTTP chunk per event.

InvokeModel bodies follow each model family's native format, chosen from the model id and the
request body: Anthropic Claude (messages and legacy text completion), Amazon Titan text and
embeddings, Amazon Nova, Meta Llama, Cohere Command / Command R / Embed, Mistral (prompt and chat),
AI21 Jurassic-2 and Jamba, and an OpenAI-style fallback for anything else (imported models).

By default every answer is deterministic (``DEFAULT_TEXT``, ``DEFAULT_USAGE``). Tests change the
next answers with :meth:`BedrockMockServer.script` (a queue of :class:`Reply`) and inspect what the
SDK sent through :attr:`BedrockMockServer.requests`::

    with BedrockMockServer() as server:
        server.script(Reply(text="Hi", usage=Usage(input=3, output=1)))
        client = server.client()
        client.converse(modelId="amazon.nova-lite-v1:0", messages=[...])
        assert server.last_request.operation == "Converse"

Only the standard library is used at import time; :meth:`BedrockMockServer.client` imports boto3.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import struct
import sys
import threading
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:  # pragma: no cover - typing only
    from botocore.client import BaseClient

__all__ = [
    "DEFAULT_EMBEDDING_DIMENSIONS",
    "DEFAULT_TEXT",
    "DEFAULT_USAGE",
    "EVENTSTREAM",
    "FIXED_DATE",
    "BedrockMockServer",
    "Guardrail",
    "RecordedRequest",
    "Reply",
    "ToolUse",
    "Usage",
    "chunk_event",
    "decode_messages",
    "encode_message",
    "exception_event",
    "json_event",
]

EVENTSTREAM = "application/vnd.amazon.eventstream"
DEFAULT_TEXT = "Hello from the fake Bedrock model."
DEFAULT_EMBEDDING_DIMENSIONS = 8
FIXED_DATE = "Mon, 01 Jan 2024 00:00:00 GMT"
"""Every response carries this Date header, so answers are byte-identical across runs."""

_STRING = 7  # event-stream header value type: UTF-8 string with a 2-byte length


# --------------------------------------------------------------------------- #
# AWS event-stream framing
# --------------------------------------------------------------------------- #


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (total length, headers length), prelude CRC32, headers,
    payload, message CRC32 (over everything before it). Header values are strings (type 7)."""
    encoded = bytearray()
    for name, value in headers.items():
        raw_name, raw_value = name.encode("utf-8"), value.encode("utf-8")
        encoded += struct.pack(">B", len(raw_name)) + raw_name
        encoded += struct.pack(">BH", _STRING, len(raw_value)) + raw_value
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF) + bytes(encoded) + payload
    return message + struct.pack(">I", zlib.crc32(message) & 0xFFFFFFFF)


def decode_messages(data: bytes) -> list[tuple[dict[str, str], bytes]]:
    """The inverse of :func:`encode_message` for a whole stream (string headers only); checks CRCs."""
    out: list[tuple[dict[str, str], bytes]] = []
    offset = 0
    while offset < len(data):
        total, headers_length = struct.unpack_from(">II", data, offset)
        (prelude_crc,) = struct.unpack_from(">I", data, offset + 8)
        if zlib.crc32(data[offset : offset + 8]) & 0xFFFFFFFF != prelude_crc:
            raise ValueError("prelude CRC mismatch")
        (message_crc,) = struct.unpack_from(">I", data, offset + total - 4)
        if zlib.crc32(data[offset : offset + total - 4]) & 0xFFFFFFFF != message_crc:
            raise ValueError("message CRC mismatch")
        headers: dict[str, str] = {}
        pos, end = offset + 12, offset + 12 + headers_length
        while pos < end:
            name_length = data[pos]
            name = data[pos + 1 : pos + 1 + name_length].decode("utf-8")
            pos += 1 + name_length
            kind = data[pos]
            if kind != _STRING:
                raise ValueError(f"header type {kind} not supported")
            (value_length,) = struct.unpack_from(">H", data, pos + 1)
            headers[name] = data[pos + 3 : pos + 3 + value_length].decode("utf-8")
            pos += 3 + value_length
        out.append((headers, data[end : offset + total - 4]))
        offset += total
    return out


def json_event(event_type: str, payload: Mapping[str, Any]) -> bytes:
    """A Converse stream event (``messageStart``, ``contentBlockDelta``, ``metadata``, ...)."""
    return encode_message(
        {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"},
        json.dumps(payload).encode("utf-8"),
    )


def chunk_event(chunk: Mapping[str, Any]) -> bytes:
    """An InvokeModelWithResponseStream ``chunk`` event: ``{"bytes": base64(json(chunk))}``."""
    data = base64.b64encode(json.dumps(chunk).encode("utf-8")).decode("ascii")
    return json_event("chunk", {"bytes": data})


def exception_event(exception_type: str, message: str, **extra: Any) -> bytes:
    """A modeled stream exception (``modelStreamErrorException``, ``throttlingException``, ...)."""
    return encode_message(
        {
            ":exception-type": exception_type,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        json.dumps({"message": message, **extra}).encode("utf-8"),
    )


# --------------------------------------------------------------------------- #
# Scripting model
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Usage:
    """Token counts the fake model reports. ``input`` excludes cached tokens, as Bedrock reports it."""

    input: int = 13
    output: int = 7
    cache_read: int = 0
    cache_write: int = 0


DEFAULT_USAGE = Usage()


@dataclass(frozen=True)
class ToolUse:
    """A tool call the fake model "decides" to make."""

    name: str
    input: Mapping[str, Any] = field(default_factory=dict)
    id: str = "tooluse_fake0001"


@dataclass(frozen=True)
class Guardrail:
    """How the guardrail named in the request behaves.

    ``policies`` are the policy types that intervene ("content", "topic", "word",
    "sensitive_information", "contextual_grounding"); empty means the guardrail ran and let
    everything through (its trace then carries only ``NONE`` findings). ``on`` says whether the
    findings are on the input (the prompt is blocked) or on the model output. The trace is only
    sent when the request enabled it, like the real service.
    """

    policies: tuple[str, ...] = ()
    on: str = "output"
    blocked_message: str = "Sorry, the model cannot answer this question."

    @property
    def intervened(self) -> bool:
        return bool(self.policies)


@dataclass
class Reply:
    """The next answer of the server. Every field is optional; unset fields take the defaults.

    * ``status``/``error``/``message``: an AWS error response (JSON body, ``x-amzn-errortype``).
    * ``stream_error``: for streams, an exception event of this type (``modelStreamErrorException``)
      after ``stream_error_after`` events; ``drop_after``: close the connection after that many
      events (the transport breaks mid-stream).
    * ``body``/``events``: raw overrides (bytes of the JSON body / encoded event-stream messages).
    * ``token_headers``: send the ``X-Amzn-Bedrock-*-Token-Count`` headers on InvokeModel.
    * ``invocation_metrics``: put ``amazon-bedrock-invocationMetrics`` in the last stream chunk.
    * ``delay``: seconds to wait before answering (a client ``read_timeout`` below it times out).
    * ``truncate``: JSON answers (Converse, InvokeModel) send half their body, with the full
      ``Content-Length``, then close the connection.
    * ``body_delay``: JSON answers send their status and headers at once, then wait this many
      seconds before the body (a slow body: the client has the response before its body arrived).
    """

    text: str | None = None
    stop_reason: str | None = None
    usage: Usage | None = None
    tool_use: ToolUse | None = None
    reasoning: str | None = None
    guardrail: Guardrail | None = None
    status: int = 200
    error: str | None = None
    message: str | None = None
    stream_error: str | None = None
    stream_error_after: int = 2
    drop_after: int | None = None
    body: bytes | None = None
    events: Sequence[bytes] | None = None
    content_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    token_headers: bool = True
    invocation_metrics: bool = True
    embedding_dimensions: int | None = None
    response_model: str | None = None
    delay: float = 0.0
    truncate: bool = False
    body_delay: float = 0.0


@dataclass
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    operation: str
    model_id: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


_ROUTE = re.compile(
    r"^/model/(?P<model>[^/]+)/(?P<action>invoke|invoke-with-response-stream|converse|converse-stream)$"
)
_OPERATIONS = {
    "invoke": "InvokeModel",
    "invoke-with-response-stream": "InvokeModelWithResponseStream",
    "converse": "Converse",
    "converse-stream": "ConverseStream",
}
_ERROR_STATUS = {
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ThrottlingException": 429,
    "ModelTimeoutException": 408,
    "InternalServerException": 500,
    "ServiceUnavailableException": 503,
    "ValidationException": 400,
    "ServiceQuotaExceededException": 400,
    "ModelNotReadyException": 429,
    "ModelErrorException": 424,
    "ModelStreamErrorException": 424,
}
_POLICY_FINDINGS: Mapping[str, tuple[str, str, dict[str, Any]]] = {
    # type -> (policy key, list key, finding without action)
    "content": (
        "contentPolicy",
        "filters",
        {"type": "VIOLENCE", "confidence": "HIGH", "filterStrength": "HIGH"},
    ),
    "topic": ("topicPolicy", "topics", {"name": "investment-advice", "type": "DENY"}),
    "word": ("wordPolicy", "customWords", {"match": "frobnicate"}),
    "sensitive_information": (
        "sensitiveInformationPolicy",
        "piiEntities",
        {"match": "jane@example.com", "type": "EMAIL"},
    ),
    "contextual_grounding": (
        "contextualGroundingPolicy",
        "filters",
        {"type": "GROUNDING", "threshold": 0.75, "score": 0.12},
    ),
}
_ACTION = {"sensitive_information": "ANONYMIZED"}


# --------------------------------------------------------------------------- #
# Model families
# --------------------------------------------------------------------------- #


def family_of(model_id: str, body: Any) -> str:
    """Which native body format the fake model speaks (from the model id, else the body shape)."""
    m = model_id.lower()
    b = body if isinstance(body, Mapping) else {}
    if "embed" in m or "texts" in b:
        return "cohere_embed" if "cohere" in m or "texts" in b else "titan_embed"
    if "anthropic" in m or "anthropic_version" in b:
        return "anthropic" if "messages" in b else "anthropic_text"
    if "nova" in m or "schemaVersion" in b:
        return "nova"
    if "titan" in m or "inputText" in b:
        return "titan"
    if "llama" in m or "meta." in m or "max_gen_len" in b:
        return "meta"
    if "cohere" in m:
        return "cohere_chat" if "message" in b else "cohere"
    if "mistral" in m:
        return "openai_chat" if "messages" in b else "mistral"
    if "ai21" in m or "jamba" in m:
        return "openai_chat" if "messages" in b else "ai21_j2"
    if "messages" in b:
        return "openai_chat"
    return "openai_text"


_DEFAULT_STOP = {
    "anthropic": "end_turn",
    "anthropic_text": "stop_sequence",
    "titan": "FINISH",
    "nova": "end_turn",
    "meta": "stop",
    "cohere": "COMPLETE",
    "cohere_chat": "COMPLETE",
    "mistral": "stop",
    "openai_chat": "stop",
    "openai_text": "stop",
    "ai21_j2": "endoftext",
    "converse": "end_turn",
}
_TOOL_STOP = {
    "anthropic": "tool_use",
    "nova": "tool_use",
    "converse": "tool_use",
    "openai_chat": "tool_calls",
}


@dataclass
class _Answer:
    """What the fake model says, independent of the wire format."""

    family: str
    model_id: str
    text: str
    stop: str
    usage: Usage
    tool: ToolUse | None
    reasoning: str | None
    response_id: str
    guard: _GuardOutcome | None
    response_model: str | None

    def pieces(self, n: int = 3) -> list[str]:
        """The text split into ``n`` roughly equal stream deltas (concatenation == text)."""
        text = self.text
        if not text:
            return []
        size = max(1, -(-len(text) // n))
        return [text[i : i + size] for i in range(0, len(text), size)]

    def tool_json(self) -> str:
        return json.dumps(dict(self.tool.input) if self.tool else {}, separators=(",", ":"))


@dataclass
class _GuardOutcome:
    guardrail_id: str
    config: Guardrail
    trace: bool

    def assessment(self, intervene: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "invocationMetrics": {
                "guardrailProcessingLatency": 120,
                "usage": {"contentPolicyUnits": 1, "topicPolicyUnits": 1, "wordPolicyUnits": 1},
                "guardrailCoverage": {"textCharacters": {"guarded": 40, "total": 40}},
            }
        }
        if intervene:
            for kind in self.config.policies:
                policy, items, finding = _POLICY_FINDINGS[kind]
                entry = {**finding, "action": _ACTION.get(kind, "BLOCKED"), "detected": True}
                out.setdefault(policy, {})[items] = [entry]
        else:
            # A guardrail that looked and let the text through: findings with action NONE.
            out["contextualGroundingPolicy"] = {
                "filters": [{"type": "GROUNDING", "threshold": 0.75, "score": 0.98, "action": "NONE"}]
            }
        return out

    def converse_trace(self) -> dict[str, Any]:
        on_input = self.config.on == "input" and self.config.intervened
        on_output = self.config.on != "input" and self.config.intervened
        trace: dict[str, Any] = {"inputAssessment": {self.guardrail_id: self.assessment(on_input)}}
        if not on_input:
            trace["outputAssessments"] = {self.guardrail_id: [self.assessment(on_output)]}
            trace["modelOutput"] = ["(the unguarded model output)"]
        return {"guardrail": trace}

    def invoke_trace(self) -> dict[str, Any]:
        on_input = self.config.on == "input" and self.config.intervened
        on_output = self.config.on != "input" and self.config.intervened
        trace: dict[str, Any] = {"input": {self.guardrail_id: self.assessment(on_input)}}
        if not on_input:
            trace["outputs"] = [{self.guardrail_id: self.assessment(on_output)}]
        return {"guardrail": trace}


def _bare_model(model_id: str) -> str:
    """The model name as Anthropic reports it in the body (``claude-3-haiku-20240307``)."""
    name = model_id.rsplit("/", 1)[-1].split(":", 1)[0]
    name = name.split(".", 2)[-1] if name.count(".") >= 2 else name.split(".", 1)[-1]
    return re.sub(r"-v\d+$", "", name)


def _usage_fields(u: Usage) -> dict[str, int]:
    return {"inputTokenCount": u.input, "outputTokenCount": u.output}


def _invocation_metrics(u: Usage, cache: bool) -> dict[str, int]:
    metrics = {**_usage_fields(u), "invocationLatency": 321, "firstByteLatency": 123}
    if cache:
        metrics["cacheReadInputTokenCount"] = u.cache_read
        metrics["cacheWriteInputTokenCount"] = u.cache_write
    return metrics


def _invoke_body(a: _Answer, request: Mapping[str, Any], dims: int) -> dict[str, Any]:
    """The non-streamed InvokeModel body of each family."""
    u, f = a.usage, a.family
    if f == "anthropic":
        content: list[dict[str, Any]] = []
        if a.reasoning:
            content.append({"type": "thinking", "thinking": a.reasoning, "signature": "sig"})
        if a.text:
            content.append({"type": "text", "text": a.text})
        if a.tool:
            content.append(
                {"type": "tool_use", "id": a.tool.id, "name": a.tool.name, "input": dict(a.tool.input)}
            )
        usage: dict[str, int] = {"input_tokens": u.input, "output_tokens": u.output}
        if u.cache_read or u.cache_write:
            usage["cache_creation_input_tokens"] = u.cache_write
            usage["cache_read_input_tokens"] = u.cache_read
        return {
            "id": a.response_id,
            "type": "message",
            "role": "assistant",
            "model": a.response_model or _bare_model(a.model_id),
            "content": content,
            "stop_reason": a.stop,
            "stop_sequence": None,
            "usage": usage,
        }
    if f == "anthropic_text":
        return {"type": "completion", "completion": a.text, "stop_reason": a.stop, "stop": "\n\nHuman:"}
    if f == "titan":
        return {
            "inputTextTokenCount": u.input,
            "results": [{"tokenCount": u.output, "outputText": a.text, "completionReason": a.stop}],
        }
    if f == "titan_embed":
        size = int(request.get("dimensions") or dims)
        return {"embedding": [round(0.01 * i, 3) for i in range(size)], "inputTextTokenCount": u.input}
    if f == "cohere_embed":
        texts = list(request.get("texts") or [])
        return {
            "id": a.response_id,
            "embeddings": [[round(0.02 * i, 3) for i in range(dims)] for _ in texts],
            "texts": texts,
            "response_type": "embeddings_floats",
        }
    if f == "nova":
        nova_content: list[dict[str, Any]] = []
        if a.reasoning:
            nova_content.append({"reasoningContent": {"reasoningText": {"text": a.reasoning}}})
        if a.text:
            nova_content.append({"text": a.text})
        if a.tool:
            nova_content.append(
                {"toolUse": {"toolUseId": a.tool.id, "name": a.tool.name, "input": dict(a.tool.input)}}
            )
        return {
            "output": {"message": {"role": "assistant", "content": nova_content}},
            "stopReason": a.stop,
            "usage": {
                "inputTokens": u.input,
                "outputTokens": u.output,
                "totalTokens": u.input + u.output + u.cache_read + u.cache_write,
                "cacheReadInputTokenCount": u.cache_read,
                "cacheWriteInputTokenCount": u.cache_write,
            },
        }
    if f == "meta":
        return {
            "generation": a.text,
            "prompt_token_count": u.input,
            "generation_token_count": u.output,
            "stop_reason": a.stop,
        }
    if f == "cohere":
        return {
            "id": a.response_id,
            "generations": [{"id": "gen-1", "text": a.text, "finish_reason": a.stop}],
            "prompt": request.get("prompt"),
        }
    if f == "cohere_chat":
        out: dict[str, Any] = {
            "response_id": a.response_id,
            "text": a.text,
            "generation_id": "gen-1",
            "finish_reason": a.stop,
            "chat_history": [],
        }
        if a.tool:
            out["tool_calls"] = [{"name": a.tool.name, "parameters": dict(a.tool.input)}]
        return out
    if f == "mistral":
        return {"outputs": [{"text": a.text, "stop_reason": a.stop}]}
    if f == "ai21_j2":
        return {
            "id": 1234,
            "prompt": {
                "text": request.get("prompt"),
                "tokens": [{"generatedToken": {"token": "t"}}] * u.input,
            },
            "completions": [
                {
                    "data": {"text": a.text, "tokens": [{"generatedToken": {"token": "t"}}] * u.output},
                    "finishReason": {"reason": a.stop},
                }
            ],
        }
    message: dict[str, Any] = {"role": "assistant", "content": a.text}
    if a.tool:
        message["tool_calls"] = [
            {
                "id": a.tool.id,
                "type": "function",
                "function": {"name": a.tool.name, "arguments": a.tool_json()},
            }
        ]
    choice: dict[str, Any] = {"index": 0, "finish_reason": a.stop}
    if f == "openai_text":
        choice["text"] = a.text
    else:
        choice["message"] = message
    return {
        "id": a.response_id,
        "object": "chat.completion" if f == "openai_chat" else "text_completion",
        "model": a.response_model or a.model_id,
        "choices": [choice],
        "usage": {
            "prompt_tokens": u.input,
            "completion_tokens": u.output,
            "total_tokens": u.input + u.output,
        },
    }


def _invoke_chunks(a: _Answer) -> list[dict[str, Any]]:
    """The streamed InvokeModel chunks of each family (without invocation metrics)."""
    u, f = a.usage, a.family
    pieces = a.pieces()
    if f == "anthropic":
        start_usage: dict[str, int] = {"input_tokens": u.input, "output_tokens": 1}
        if u.cache_read or u.cache_write:
            start_usage["cache_creation_input_tokens"] = u.cache_write
            start_usage["cache_read_input_tokens"] = u.cache_read
        out: list[dict[str, Any]] = [
            {
                "type": "message_start",
                "message": {
                    "id": a.response_id,
                    "type": "message",
                    "role": "assistant",
                    "model": a.response_model or _bare_model(a.model_id),
                    "content": [],
                    "stop_reason": None,
                    "usage": start_usage,
                },
            }
        ]
        index = 0
        if a.reasoning:
            out.append(
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "thinking", "thinking": ""},
                }
            )
            out.append(
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "thinking_delta", "thinking": a.reasoning},
                }
            )
            out.append({"type": "content_block_stop", "index": index})
            index += 1
        if pieces:
            out.append(
                {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
            )
            out.extend(
                {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": p}}
                for p in pieces
            )
            out.append({"type": "content_block_stop", "index": index})
            index += 1
        if a.tool:
            out.append(
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "tool_use", "id": a.tool.id, "name": a.tool.name, "input": {}},
                }
            )
            args = a.tool_json()
            half = len(args) // 2
            for part in (args[:half], args[half:]):
                out.append(
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": part},
                    }
                )
            out.append({"type": "content_block_stop", "index": index})
        out.append(
            {
                "type": "message_delta",
                "delta": {"stop_reason": a.stop, "stop_sequence": None},
                "usage": {"output_tokens": u.output},
            }
        )
        out.append({"type": "message_stop"})
        return out
    if f == "anthropic_text":
        chunks = [{"type": "completion", "completion": p, "stop_reason": None, "stop": None} for p in pieces]
        chunks.append({"type": "completion", "completion": "", "stop_reason": a.stop, "stop": "\n\nHuman:"})
        return chunks
    if f == "titan":
        chunks = [{"outputText": p, "index": 0} for p in pieces]
        chunks[0]["inputTextTokenCount"] = u.input
        chunks[-1].update({"totalOutputTextTokenCount": u.output, "completionReason": a.stop})
        return chunks
    if f == "nova":
        out = [{"messageStart": {"role": "assistant"}}]
        out.extend({"contentBlockDelta": {"delta": {"text": p}, "contentBlockIndex": 0}} for p in pieces)
        out.append({"contentBlockStop": {"contentBlockIndex": 0}})
        if a.tool:
            out.append(
                {
                    "contentBlockStart": {
                        "start": {"toolUse": {"toolUseId": a.tool.id, "name": a.tool.name}},
                        "contentBlockIndex": 1,
                    }
                }
            )
            out.append(
                {
                    "contentBlockDelta": {
                        "delta": {"toolUse": {"input": a.tool_json()}},
                        "contentBlockIndex": 1,
                    }
                }
            )
            out.append({"contentBlockStop": {"contentBlockIndex": 1}})
        out.append({"messageStop": {"stopReason": a.stop}})
        out.append(
            {
                "metadata": {
                    "usage": {
                        "inputTokens": u.input,
                        "outputTokens": u.output,
                        "cacheReadInputTokenCount": u.cache_read,
                        "cacheWriteInputTokenCount": u.cache_write,
                    },
                    "metrics": {},
                    "trace": {},
                }
            }
        )
        return out
    if f == "meta":
        chunks = [
            {
                "generation": p,
                "prompt_token_count": u.input if i == 0 else None,
                "generation_token_count": i + 1,
                "stop_reason": None,
            }
            for i, p in enumerate(pieces)
        ]
        chunks[-1].update({"generation_token_count": u.output, "stop_reason": a.stop})
        return chunks
    if f == "cohere":
        chunks = [{"text": p, "is_finished": False} for p in pieces]
        chunks.append(
            {
                "is_finished": True,
                "finish_reason": a.stop,
                "response": {"id": a.response_id, "generations": [{"text": a.text, "finish_reason": a.stop}]},
            }
        )
        return chunks
    if f == "cohere_chat":
        chunks = [{"event_type": "stream-start", "generation_id": "gen-1", "is_finished": False}]
        chunks.extend({"event_type": "text-generation", "text": p, "is_finished": False} for p in pieces)
        end: dict[str, Any] = {"response_id": a.response_id, "text": a.text, "finish_reason": a.stop}
        if a.tool:
            end["tool_calls"] = [{"name": a.tool.name, "parameters": dict(a.tool.input)}]
        chunks.append(
            {"event_type": "stream-end", "is_finished": True, "finish_reason": a.stop, "response": end}
        )
        return chunks
    if f == "mistral":
        chunks = [{"outputs": [{"text": p, "stop_reason": None}]} for p in pieces]
        chunks[-1]["outputs"][0]["stop_reason"] = a.stop
        return chunks
    if f in ("openai_chat", "openai_text"):
        key = "delta" if f == "openai_chat" else None
        chunks = []
        for i, p in enumerate(pieces):
            choice: dict[str, Any] = {"index": 0, "finish_reason": None}
            if key:
                choice[key] = {"role": "assistant", "content": p} if i == 0 else {"content": p}
            else:
                choice["text"] = p
            chunks.append(
                {
                    "id": a.response_id,
                    "object": "chat.completion.chunk",
                    "model": a.response_model or a.model_id,
                    "choices": [choice],
                }
            )
        final: dict[str, Any] = {"index": 0, "finish_reason": a.stop}
        if key:
            final[key] = {}
            if a.tool:
                final[key] = {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": a.tool.id,
                            "type": "function",
                            "function": {"name": a.tool.name, "arguments": a.tool_json()},
                        }
                    ]
                }
        chunks.append(
            {
                "id": a.response_id,
                "object": "chat.completion.chunk",
                "model": a.response_model or a.model_id,
                "choices": [final],
                "usage": {
                    "prompt_tokens": u.input,
                    "completion_tokens": u.output,
                    "total_tokens": u.input + u.output,
                },
            }
        )
        return chunks
    # ai21_j2 and embeddings do not stream: one chunk with the whole body
    return [_invoke_body(a, {}, DEFAULT_EMBEDDING_DIMENSIONS)]


def _converse_body(a: _Answer) -> dict[str, Any]:
    u = a.usage
    content: list[dict[str, Any]] = []
    if a.reasoning:
        content.append({"reasoningContent": {"reasoningText": {"text": a.reasoning, "signature": "sig"}}})
    if a.text:
        content.append({"text": a.text})
    if a.tool:
        content.append(
            {"toolUse": {"toolUseId": a.tool.id, "name": a.tool.name, "input": dict(a.tool.input)}}
        )
    body: dict[str, Any] = {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": a.stop,
        "usage": _converse_usage(u),
        "metrics": {"latencyMs": 321},
    }
    if a.guard is not None and a.guard.trace:
        body["trace"] = a.guard.converse_trace()
    return body


def _converse_usage(u: Usage) -> dict[str, int]:
    usage = {
        "inputTokens": u.input,
        "outputTokens": u.output,
        "totalTokens": u.input + u.output + u.cache_read + u.cache_write,
    }
    if u.cache_read or u.cache_write:
        usage["cacheReadInputTokens"] = u.cache_read
        usage["cacheWriteInputTokens"] = u.cache_write
    return usage


def _converse_events(a: _Answer) -> list[bytes]:
    out = [json_event("messageStart", {"role": "assistant"})]
    index = 0
    if a.reasoning:
        out.append(
            json_event(
                "contentBlockDelta",
                {"delta": {"reasoningContent": {"text": a.reasoning}}, "contentBlockIndex": index},
            )
        )
        out.append(
            json_event(
                "contentBlockDelta",
                {"delta": {"reasoningContent": {"signature": "sig"}}, "contentBlockIndex": index},
            )
        )
        out.append(json_event("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    pieces = a.pieces()
    if pieces:
        out.extend(
            json_event("contentBlockDelta", {"delta": {"text": p}, "contentBlockIndex": index})
            for p in pieces
        )
        out.append(json_event("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    if a.tool:
        out.append(
            json_event(
                "contentBlockStart",
                {
                    "start": {"toolUse": {"toolUseId": a.tool.id, "name": a.tool.name}},
                    "contentBlockIndex": index,
                },
            )
        )
        args = a.tool_json()
        half = len(args) // 2
        for part in (args[:half], args[half:]):
            out.append(
                json_event(
                    "contentBlockDelta", {"delta": {"toolUse": {"input": part}}, "contentBlockIndex": index}
                )
            )
        out.append(json_event("contentBlockStop", {"contentBlockIndex": index}))
    out.append(json_event("messageStop", {"stopReason": a.stop}))
    metadata: dict[str, Any] = {"usage": _converse_usage(a.usage), "metrics": {"latencyMs": 321}}
    if a.guard is not None and a.guard.trace:
        metadata["trace"] = a.guard.converse_trace()
    out.append(json_event("metadata", metadata))
    return out


# --------------------------------------------------------------------------- #
# The server
# --------------------------------------------------------------------------- #


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the stdlib default (5) refuses bursts of concurrent clients
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], errors: list[BaseException]
    ) -> None:
        super().__init__(address, handler)
        self._errors = errors

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client dropping its connection (a closed stream, a broken test) is normal; anything
        else is a bug of the rig and lands in ``errors`` instead of on stderr."""
        error = sys.exc_info()[1]
        if error is not None and not isinstance(error, (ConnectionError, TimeoutError)):
            self._errors.append(error)


class BedrockMockServer:
    """The fake ``bedrock-runtime`` endpoint; a context manager (started on enter)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._script: list[Reply] = []
        self.requests: list[RecordedRequest] = []
        self.errors: list[BaseException] = []
        self._server = _Server(("127.0.0.1", 0), self._handler_class(), self.errors)
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> BedrockMockServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="fake-bedrock", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> BedrockMockServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **config: Any) -> BaseClient:
        """A real boto3 ``bedrock-runtime`` client pointed at this server (no retries)."""
        import boto3
        import botocore.config

        options: dict[str, Any] = {"retries": {"max_attempts": 1}, **config}
        return boto3.client(
            "bedrock-runtime",
            region_name="us-east-1",
            endpoint_url=self.url,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=botocore.config.Config(**options),
        )

    # --- scripting ------------------------------------------------------------------------------

    def script(self, *replies: Reply) -> None:
        """Queue answers for the next requests (first in, first out); then the defaults apply."""
        with self._lock:
            self._script.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.requests.clear()
            self.errors.clear()

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            return self.requests[-1]

    def _next(self) -> Reply:
        with self._lock:
            return self._script.pop(0) if self._script else Reply()

    # --- HTTP -----------------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "FakeBedrock/1.0"
            sys_version = ""

            def log_message(self, *args: Any) -> None:
                pass

            def date_time_string(self, timestamp: float | None = None) -> str:
                return FIXED_DATE

            def do_POST(self) -> None:
                try:
                    server._handle(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                except Exception as exc:  # a bug of the rig: recorded, answered with a 500
                    server.errors.append(exc)
                    try:
                        self.send_error(500, f"fake bedrock failed: {exc!r}")
                    except OSError:
                        pass

        return Handler

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        raw = h.rfile.read(int(h.headers.get("content-length") or 0))
        match = _ROUTE.match(h.path.split("?", 1)[0])
        if match is None:
            _send_json(
                h,
                404,
                {"message": f"no route for {h.path}"},
                {"x-amzn-errortype": "UnknownOperationException"},
            )
            return
        action = match["action"]
        model_id = unquote(match["model"])
        request = RecordedRequest(
            method="POST",
            path=h.path,
            operation=_OPERATIONS[action],
            model_id=model_id,
            headers={k.lower(): v for k, v in h.headers.items()},
            body=raw,
        )
        with self._lock:
            self.requests.append(request)
        reply = self._next()
        if reply.delay > 0:
            time.sleep(reply.delay)
        request_id = hashlib.sha1(raw + h.path.encode()).hexdigest()[:32]
        base_headers = {"x-amzn-RequestId": request_id, **reply.headers}
        if reply.error is not None or reply.status >= 300:
            code = reply.error or "InternalServerException"
            status = reply.status if reply.status >= 300 else _ERROR_STATUS.get(code, 400)
            _send_json(
                h,
                status,
                {"message": reply.message or f"{code} (fake)"},
                {
                    **base_headers,
                    "x-amzn-errortype": f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/",
                },
            )
            return
        body = request.json if action in ("converse", "converse-stream") else _json_or_none(raw)
        answer = self._answer(reply, request, body)
        if action == "invoke":
            self._invoke(h, reply, answer, body, base_headers)
        elif action == "invoke-with-response-stream":
            self._invoke_stream(h, reply, answer, base_headers)
        elif action == "converse":
            if reply.body is not None:
                _send(
                    h,
                    200,
                    reply.body,
                    reply.content_type or "application/json",
                    base_headers,
                    truncate=reply.truncate,
                    body_delay=reply.body_delay,
                )
            else:
                data = json.dumps(_converse_body(answer)).encode("utf-8")
                _send(
                    h,
                    200,
                    data,
                    "application/json",
                    base_headers,
                    truncate=reply.truncate,
                    body_delay=reply.body_delay,
                )
        else:
            events = list(reply.events) if reply.events is not None else _converse_events(answer)
            _send_events(h, events, reply, base_headers)

    def _answer(self, reply: Reply, request: RecordedRequest, body: Any) -> _Answer:
        converse = request.operation in ("Converse", "ConverseStream")
        family = "converse" if converse else family_of(request.model_id, body)
        guard = _guard(request, body, reply.guardrail, converse)
        text = DEFAULT_TEXT if reply.text is None else reply.text
        stop = reply.stop_reason
        if guard is not None and guard.config.intervened:
            if guard.config.on == "input":
                text = guard.config.blocked_message
            stop = stop or ("guardrail_intervened" if converse else None)
        if stop is None:
            stop = _TOOL_STOP.get(family, "") if reply.tool_use else ""
            stop = stop or _DEFAULT_STOP.get(family, "stop")
        response_id = "msg_bdrk_" + hashlib.sha1(request.body).hexdigest()[:20]
        return _Answer(
            family=family,
            model_id=request.model_id,
            text=text,
            stop=stop,
            usage=reply.usage or DEFAULT_USAGE,
            tool=reply.tool_use,
            reasoning=reply.reasoning,
            response_id=response_id,
            guard=guard,
            response_model=reply.response_model,
        )

    def _invoke(
        self, h: BaseHTTPRequestHandler, reply: Reply, a: _Answer, body: Any, headers: dict[str, str]
    ) -> None:
        accept = h.headers.get("accept") or "application/json"
        content_type = reply.content_type or ("application/json" if accept in ("*/*", "") else accept)
        if reply.body is not None:
            data = reply.body
        else:
            obj = _invoke_body(
                a,
                body if isinstance(body, Mapping) else {},
                reply.embedding_dimensions or DEFAULT_EMBEDDING_DIMENSIONS,
            )
            _add_guardrail_to_chunk(obj, a, last=True)
            data = json.dumps(obj).encode("utf-8")
        extra = dict(headers)
        if reply.token_headers:
            u = a.usage
            extra["X-Amzn-Bedrock-Input-Token-Count"] = str(u.input)
            if a.family not in ("titan_embed", "cohere_embed"):
                extra["X-Amzn-Bedrock-Output-Token-Count"] = str(u.output)
            if a.family in ("anthropic", "nova") or u.cache_read or u.cache_write:
                extra["X-Amzn-Bedrock-Cache-Read-Input-Token-Count"] = str(u.cache_read)
                extra["X-Amzn-Bedrock-Cache-Write-Input-Token-Count"] = str(u.cache_write)
        extra["X-Amzn-Bedrock-Invocation-Latency"] = "321"
        _send(h, 200, data, content_type, extra, truncate=reply.truncate, body_delay=reply.body_delay)

    def _invoke_stream(
        self, h: BaseHTTPRequestHandler, reply: Reply, a: _Answer, headers: dict[str, str]
    ) -> None:
        if reply.events is not None:
            events = list(reply.events)
        else:
            chunks = _invoke_chunks(a)
            for i, chunk in enumerate(chunks):
                _add_guardrail_to_chunk(chunk, a, last=i == len(chunks) - 1)
            if reply.invocation_metrics and chunks:
                cache = a.family in ("anthropic", "nova") or bool(a.usage.cache_read or a.usage.cache_write)
                chunks[-1]["amazon-bedrock-invocationMetrics"] = _invocation_metrics(a.usage, cache)
            events = [chunk_event(c) for c in chunks]
        _send_events(h, events, reply, {**headers, "X-Amzn-Bedrock-Content-Type": "application/json"})


def _guard(
    request: RecordedRequest, body: Any, config: Guardrail | None, converse: bool
) -> _GuardOutcome | None:
    """The guardrail the request names, if any, with the scripted behaviour."""
    if converse:
        cfg = body.get("guardrailConfig") if isinstance(body, Mapping) else None
        if not isinstance(cfg, Mapping) or not cfg.get("guardrailIdentifier"):
            return None
        gid = str(cfg["guardrailIdentifier"])
        trace = str(cfg.get("trace", "disabled")).lower() in ("enabled", "enabled_full")
    else:
        gid = request.headers.get("x-amzn-bedrock-guardrailidentifier", "")
        if not gid:
            return None
        trace = request.headers.get("x-amzn-bedrock-trace", "DISABLED").upper() in ("ENABLED", "ENABLED_FULL")
    gid = gid.rsplit("/", 1)[-1]  # an ARN names the guardrail after "guardrail/"
    return _GuardOutcome(gid, config or Guardrail(), trace)


def _add_guardrail_to_chunk(obj: dict[str, Any], a: _Answer, *, last: bool) -> None:
    """InvokeModel: Bedrock adds the guardrail action (and, when traced, the trace) to the body."""
    g = a.guard
    if g is None:
        return
    obj["amazon-bedrock-guardrailAction"] = "INTERVENED" if g.config.intervened else "NONE"
    if last and g.trace:
        obj["amazon-bedrock-trace"] = g.invoke_trace()


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return None


def _send(
    h: BaseHTTPRequestHandler,
    status: int,
    data: bytes,
    content_type: str,
    headers: Mapping[str, str],
    truncate: bool = False,
    body_delay: float = 0.0,
) -> None:
    h.send_response(status)
    h.send_header("Content-Type", content_type)
    for name, value in headers.items():
        h.send_header(name, value)
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    if body_delay > 0:
        h.wfile.flush()  # the client sees status and headers now, the body later
        time.sleep(body_delay)
    h.wfile.write(data[: len(data) // 2] if truncate else data)
    h.wfile.flush()
    if truncate:  # the transport breaks mid-body
        h.close_connection = True
        try:
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _send_json(h: BaseHTTPRequestHandler, status: int, obj: Any, headers: Mapping[str, str]) -> None:
    _send(h, status, json.dumps(obj).encode("utf-8"), "application/json", headers)


def _send_events(
    h: BaseHTTPRequestHandler, events: Iterable[bytes], reply: Reply, headers: Mapping[str, str]
) -> None:
    """An event stream, one HTTP chunk per message; optionally an exception event or a broken connection."""
    h.send_response(200)
    h.send_header("Content-Type", EVENTSTREAM)
    for name, value in headers.items():
        h.send_header(name, value)
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    for sent, message in enumerate(events):
        if reply.drop_after is not None and sent >= reply.drop_after:
            h.wfile.flush()
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if reply.stream_error is not None and sent >= reply.stream_error_after:
            break
        _write_chunk(h, message)
    if reply.stream_error is not None:
        _write_chunk(h, exception_event(reply.stream_error, reply.message or f"{reply.stream_error} (fake)"))
    h.wfile.write(b"0\r\n\r\n")
    h.wfile.flush()


def _write_chunk(h: BaseHTTPRequestHandler, data: bytes) -> None:
    h.wfile.write(f"{len(data):x}\r\n".encode("ascii") + data + b"\r\n")
    h.wfile.flush()
