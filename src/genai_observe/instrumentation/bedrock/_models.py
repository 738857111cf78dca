"""Model ids and model families: which model a ``modelId`` names, and which JSON its bodies speak.

The family decides the InvokeModel readers (``_invoke.py``, ``_streams.py``); for opaque ids (ARNs of
imported/custom models) it is recognised from the shape of the request, response or chunk."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..._core import semconv as sc

# A cross-region inference profile id: a geography tag before a "vendor.model" id.
_GEO_PREFIX: Final = re.compile(r"^[a-z]{2,6}(?:-gov)?\.(?=[a-z0-9-]+\.)")


@dataclass(frozen=True, slots=True)
class ModelRef:
    given: str
    model: str  # gen_ai.request.model
    foundation: bool  # names one foundation model, which is then also the model that answered

    @property
    def vendor(self) -> str:
        return self.model.split(".", 1)[0] if self.foundation else ""


@functools.lru_cache(maxsize=256)
def resolve_model(model_id: str) -> ModelRef:
    """The rule of docs/bedrock.md#model-ids (bounded cache: model ids repeat)."""
    if model_id.startswith("arn:"):
        parts = model_id.split(":", 5)
        if len(parts) < 6 or not parts[5]:
            return ModelRef(model_id, model_id, False)
        resource = parts[5]
        kind, slash, name = resource.partition("/")
        if slash and name and kind == "foundation-model":
            return ModelRef(model_id, name, True)
        if slash and name and kind == "inference-profile":
            return ModelRef(model_id, _GEO_PREFIX.sub("", name), True)
        return ModelRef(model_id, resource, False)
    return ModelRef(model_id, _GEO_PREFIX.sub("", model_id), True)


# --- model families (InvokeModel bodies) ----------------------------------------------------------------

ANTHROPIC: Final = "anthropic"  # messages API
ANTHROPIC_TEXT: Final = "anthropic_text"  # legacy text completions
TITAN: Final = "titan"
TITAN_EMBED: Final = "titan_embed"
NOVA: Final = "nova"
META: Final = "meta"
COHERE: Final = "cohere"  # Command (generate)
COHERE_CHAT: Final = "cohere_chat"  # Command R / R+
COHERE_EMBED: Final = "cohere_embed"
MISTRAL: Final = "mistral"  # prompt API
AI21_J2: Final = "ai21_j2"  # Jurassic-2
OPENAI_CHAT: Final = "openai_chat"  # OpenAI-style chat: Mistral Large chat, AI21 Jamba, gpt-oss, imported
OPENAI_TEXT: Final = "openai_text"  # OpenAI-style text completion: DeepSeek, imported models
MEDIA: Final = "media"  # image / video generation: no text to read
UNKNOWN: Final = "unknown"

_MEDIA_PREFIXES: Final = (
    "stability.",
    "amazon.titan-image",
    "amazon.nova-canvas",
    "amazon.nova-reel",
    "luma.",
)


def family_of(ref: ModelRef, body: Mapping[str, Any]) -> str:
    """The family from the model id; for opaque ids (ARNs of custom/imported models) from the body."""
    model = ref.model.lower()
    vendor = ref.vendor.lower()
    if model.startswith(_MEDIA_PREFIXES):
        return MEDIA
    if vendor == "anthropic":
        return ANTHROPIC if "messages" in body else ANTHROPIC_TEXT
    if vendor == "amazon":
        if model.startswith("amazon.titan-embed"):
            return TITAN_EMBED
        if model.startswith("amazon.nova"):
            return NOVA
        if model.startswith("amazon.titan"):
            return TITAN
    if vendor == "meta":
        return META
    if vendor == "cohere":
        if "embed" in model:
            return COHERE_EMBED
        return COHERE_CHAT if "message" in body else COHERE
    if vendor == "mistral":
        return OPENAI_CHAT if "messages" in body else MISTRAL
    if vendor == "ai21":
        return OPENAI_CHAT if "messages" in body else AI21_J2
    return sniff_family(body)


def sniff_family(body: Mapping[str, Any]) -> str:
    if "anthropic_version" in body:
        return ANTHROPIC if "messages" in body else ANTHROPIC_TEXT
    if "schemaVersion" in body or ("messages" in body and "inferenceConfig" in body):
        return NOVA
    if "messages" in body:
        return OPENAI_CHAT
    if "inputText" in body:
        return TITAN if "textGenerationConfig" in body or "dimensions" not in body else TITAN_EMBED
    if "texts" in body:
        return COHERE_EMBED
    if "message" in body:
        return COHERE_CHAT
    if "max_gen_len" in body:
        return META
    if "prompt" in body:
        return OPENAI_TEXT
    return UNKNOWN


OPERATION_BY_FAMILY: Final = {
    ANTHROPIC: sc.OP_CHAT,
    ANTHROPIC_TEXT: sc.OP_TEXT_COMPLETION,
    TITAN: sc.OP_TEXT_COMPLETION,
    TITAN_EMBED: sc.OP_EMBEDDINGS,
    NOVA: sc.OP_CHAT,
    META: sc.OP_TEXT_COMPLETION,
    COHERE: sc.OP_TEXT_COMPLETION,
    COHERE_CHAT: sc.OP_CHAT,
    COHERE_EMBED: sc.OP_EMBEDDINGS,
    MISTRAL: sc.OP_TEXT_COMPLETION,
    AI21_J2: sc.OP_TEXT_COMPLETION,
    OPENAI_CHAT: sc.OP_CHAT,
    OPENAI_TEXT: sc.OP_TEXT_COMPLETION,
    MEDIA: sc.OP_GENERATE_CONTENT,
    UNKNOWN: sc.OP_CHAT,
}


def sniff_response(body: Mapping[str, Any]) -> str:
    """The family of a response body, for model ids that do not tell (imported/custom models)."""
    if body.get("type") == "message":
        return ANTHROPIC
    if "completion" in body and "stop_reason" in body:
        return ANTHROPIC_TEXT
    if "results" in body:
        return TITAN
    if "embedding" in body:
        return TITAN_EMBED
    if "embeddings" in body:
        return COHERE_EMBED
    if "output" in body and "stopReason" in body:
        return NOVA
    if "generation" in body:
        return META
    if "generations" in body:
        return COHERE
    if "text" in body and ("finish_reason" in body or "response_id" in body):
        return COHERE_CHAT
    if "outputs" in body:
        return MISTRAL
    if "completions" in body:
        return AI21_J2
    if "choices" in body:
        return OPENAI_CHAT
    return UNKNOWN


def sniff_chunk(chunk: Mapping[str, Any]) -> str:
    kind = chunk.get("type")
    if isinstance(kind, str) and kind.startswith(("message_", "content_block_")):
        return ANTHROPIC
    if kind == "completion":
        return ANTHROPIC_TEXT
    if "outputText" in chunk:
        return TITAN
    if any(k in chunk for k in ("messageStart", "contentBlockDelta", "messageStop", "metadata")):
        return NOVA
    if "generation" in chunk:
        return META
    if "event_type" in chunk:
        return COHERE_CHAT
    if "is_finished" in chunk or "generations" in chunk:
        return COHERE
    if "outputs" in chunk:
        return MISTRAL
    if "choices" in chunk:
        return OPENAI_CHAT
    return UNKNOWN
