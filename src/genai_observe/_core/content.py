"""Prompt and completion content: what may leave the process, and in which shape.

Every string goes through the same pipeline before it is exported: the user's redaction hook,
credential masking (always on) and the length cap, the last two together (:func:`mask_cut`): only
the kept head is masked, so the cost is bounded by the cap, and a credential straddling the cut is
masked whole. Caps apply to values *before* JSON encoding, so the JSON attributes stay valid
whatever the prompt size. Binary data (images, audio) is never
exported: it is replaced by a short placeholder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from . import safe_json as _json
from .record import Choice, Message, ToolCall

REDACTED: Final = "[REDACTED]"
TRUNCATED_MARK: Final = "…[truncated]"

# Credentials people paste into prompts or that leak through tool outputs. Deliberately narrow
# (prefixes with enough entropy after them) so ordinary text is not mangled.
_CREDENTIALS: Final = re.compile(
    r"""
      \bsk-(?:ant-|proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}   # OpenAI / Anthropic keys
    | \b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b                   # AWS access key ids
    | (?i:aws_secret_access_key)\s*[=:]\s*["']?[A-Za-z0-9/+=]{40}  # AWS secret keys in config text
    | \bdt0[a-z][0-9]{2}\.[A-Za-z0-9]{8,}\.[A-Za-z0-9]{16,}      # Dynatrace tokens
    | (?i:\bbearer\s+)[A-Za-z0-9\-._~+/]{8,}=*                  # bearer tokens
    | (?i:\bapi-token\s+)[A-Za-z0-9\-._]{8,}                    # Dynatrace Api-Token headers
    | \bgh[pousr]_[A-Za-z0-9]{30,}                              # GitHub tokens
    | \bAIza[0-9A-Za-z\-_]{35}                                  # Google API keys
    | \bxox[abprs]-[A-Za-z0-9\-]{10,}                           # Slack tokens
    | \bnvapi-[A-Za-z0-9_\-]{20,}                               # NVIDIA API keys
    """,
    re.VERBOSE,
)
_DATA_URL: Final = re.compile(r"^data:([\w/+.-]*)(;[\w=.-]+)*;base64,", re.IGNORECASE)
_MAX_DEPTH: Final = 12


# Scanning with _CREDENTIALS costs ~0.35 us per character on a slow core (10 alternatives tried at
# every position): 1.5 ms for a 4 KB prompt. Each alternative needs one of these literals, so text
# holding none of them (nearly all text) is returned without running it.
_CASE_SENSITIVE_LITERALS: Final = (
    "sk-", "AKIA", "ASIA", "ABIA", "ACCA", "dt0", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "AIza",
    "xox", "nvapi-",
)  # fmt: skip
_CASE_INSENSITIVE_LITERALS: Final = ("bearer", "api-token", "aws_secret_access_key")
# Non-ASCII letters that re.IGNORECASE equates with ASCII ones (U+0130 and U+0131 with i, U+017F
# with s, U+212A with k) where str.lower() may not: text holding one takes the full scan.
_IGNORECASE_LOOKALIKES: Final = ("\u0130", "\u0131", "\u017f", "\u212a")


def _may_hold_credentials(text: str) -> bool:
    for literal in _CASE_SENSITIVE_LITERALS:
        if literal in text:
            return True
    lowered = text.lower()
    for literal in _CASE_INSENSITIVE_LITERALS:
        if literal in lowered:
            return True
    return not text.isascii() and any(c in text for c in _IGNORECASE_LOOKALIKES)


def mask_credentials(text: str) -> str:
    return _CREDENTIALS.sub(REDACTED, text) if _may_hold_credentials(text) else text


# How far past a cut mask_cut looks for the end of a credential that starts before it: more than
# the longest minimum length of any shape above (~60), and than real credentials (an OpenAI
# project key is ~170 characters), so a credential starting before the cut is always recognised.
CUT_MARGIN: Final = 256


def mask_cut(text: str, limit: int) -> tuple[str, bool]:
    """``text`` masked and cut to its first ``limit`` characters; True when it was cut.

    Masking the whole text first costs ~0.35 us per character on the caller's thread (seconds for
    a multi-megabyte prompt); cutting first leaves the head of a credential that straddles the cut,
    which no longer matches its shape. So only the head plus :data:`CUT_MARGIN` characters is
    scanned, and a credential that starts before the cut is replaced whole.
    """
    if len(text) <= limit:
        return mask_credentials(text), False
    window = text[: limit + CUT_MARGIN]
    if not _may_hold_credentials(window):
        return text[:limit], True
    out: list[str] = []
    pos = 0
    for match in _CREDENTIALS.finditer(window):
        if match.start() >= limit:
            break
        out.append(window[pos : match.start()])
        out.append(REDACTED)
        pos = match.end()
    if pos < limit:
        out.append(window[pos:limit])
        return "".join(out), True
    kept = "".join(out)  # ends with the placeholder of a credential straddling the cut
    if len(kept) > limit:
        kept = kept[: max(0, limit - len(REDACTED))] + REDACTED
    return kept, True


class ContentPolicy:
    """Applies redaction, masking and the length cap; turns records into exportable shapes."""

    __slots__ = ("legacy_form", "max_length", "max_total", "redact")

    def __init__(
        self,
        max_length: int = 16_384,
        redact: Callable[[str], str] | None = None,
        max_total: int | None = None,
        *,
        legacy_form: bool = True,
    ) -> None:
        self.max_length = max_length
        # The dynatrace profile's flat gen_ai.prompt.N.* / gen_ai.completion.N.* content, written
        # next to the v1.41.0 JSON form; False drops it (init(legacy_content=False)). A shape
        # setting, so it travels with the policy the recorder is configured with.
        self.legacy_form = legacy_form
        # Bound on one JSON content attribute: 8 capped values by default, at least 64 KiB.
        self.max_total = max_total if max_total is not None else max(8 * max_length, 65_536)
        self.redact = redact

    # --- strings and structures --------------------------------------------------------------

    def text(self, value: str) -> str:
        if self.redact is not None:
            try:
                value = str(self.redact(value))
            except Exception:  # a broken hook must not leak the raw text: drop it instead
                return REDACTED
        if _DATA_URL.match(value):
            return _binary_placeholder(value)
        value, cut = mask_cut(value, self.max_length)
        return value + TRUNCATED_MARK if cut else value

    def clean(self, value: Any, depth: int = 0) -> Any:
        """A JSON-safe copy of ``value`` with every string processed and binary dropped."""
        if isinstance(value, str):
            return self.text(value)
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, (bytes, bytearray, memoryview)):
            return f"<{len(value)} bytes omitted>"
        if depth >= _MAX_DEPTH:
            return "<nested too deep>"
        if isinstance(value, Mapping):
            return {
                str(k): _binary_text(v)
                if k in _BINARY_KEYS and _looks_binary(v)
                else self.clean(v, depth + 1)
                for k, v in value.items()
            }
        if isinstance(value, (list, tuple)):
            return [self.clean(v, depth + 1) for v in value]
        dump = getattr(value, "model_dump", None)  # pydantic models from SDKs
        if callable(dump):
            try:
                return self.clean(dump(exclude_none=True), depth + 1)
            except Exception:
                pass
        return self.text(str(value))

    def flat(self, value: Any) -> str:
        """One attribute string: text as is, structures as JSON."""
        if isinstance(value, str):
            return self.text(value)
        return dumps(self.clean(value))

    # --- v1.41.0 JSON shapes ---------------------------------------------------------------

    def input_messages(self, messages: Sequence[Message]) -> str:
        return self._bounded([self._message(m) for m in messages])

    def output_messages(self, choices: Sequence[Choice]) -> str:
        out = []
        for c in choices:
            msg = self._message(Message(role=c.role, content=c.content, tool_calls=c.tool_calls))
            if c.reasoning:
                msg["parts"].insert(0, {"type": "reasoning", "content": self.flat(c.reasoning)})
            msg["finish_reason"] = c.finish_reason or ""
            out.append(msg)
        return self._bounded(out)

    def system_instructions(self, items: Sequence[Any]) -> str:
        parts: list[dict[str, Any]] = []
        for item in items:
            parts.extend(self._parts(item))
        return self._bounded(parts)

    def tool_definitions(self, tools: Sequence[Mapping[str, Any]]) -> str:
        return self._bounded([self.clean({"type": "function", **dict(t)}) for t in tools])

    def _bounded(self, items: list[Any]) -> str:
        """JSON of ``items``, dropping the oldest entries until it fits ``max_total``.

        Each string is already capped, but a long conversation is many strings: without a total
        bound one attribute could exceed what a backend accepts in a whole request. Dropping whole
        entries (oldest first: the latest turns matter most) keeps the JSON valid.
        """
        text = dumps(items)
        if len(text) <= self.max_total:
            return text
        sizes = [len(dumps(item)) + 1 for item in items]
        total = sum(sizes) + 1
        start = 0
        while start < len(items) - 1 and total > self.max_total:
            total -= sizes[start]
            start += 1
        return dumps(items[start:]) if total <= self.max_total else dumps([])

    def _message(self, m: Message) -> dict[str, Any]:
        parts: list[dict[str, Any]] = []
        if m.role == "tool" or m.tool_call_id:
            parts.append(
                {"type": "tool_call_response", "id": m.tool_call_id, "response": self.clean(m.content)}
            )
        else:
            parts.extend(self._parts(m.content))
        for call in m.tool_calls or ():
            parts.append(self._tool_call(call))
        msg: dict[str, Any] = {"role": m.role, "parts": parts}
        if m.name:
            msg["name"] = self.text(m.name)
        return msg

    def _tool_call(self, call: ToolCall) -> dict[str, Any]:
        arguments: Any = call.arguments
        if isinstance(arguments, str):
            arguments = _json.loads(arguments, default=arguments)  # too deep: cut, never raised
        return {"type": "tool_call", "id": call.id, "name": call.name, "arguments": self.clean(arguments)}

    def _parts(self, content: Any) -> list[dict[str, Any]]:
        if content is None:
            return []
        if isinstance(content, str):
            return [{"type": "text", "content": self.text(content)}]
        if isinstance(content, Mapping):
            return [self._part(content)]
        if isinstance(content, (list, tuple)):
            parts: list[dict[str, Any]] = []
            for p in content:
                if isinstance(p, Mapping):
                    parts.append(self._part(p))
                elif p is not None:
                    parts.extend(self._parts(p))
            return parts
        return [{"type": "text", "content": self.flat(content)}]

    def _part(self, part: Mapping[str, Any]) -> dict[str, Any]:
        kind = part.get("type")
        if kind in ("text", "input_text", "output_text") and isinstance(part.get("text"), str):
            return {"type": "text", "content": self.text(part["text"])}
        if kind in ("image_url", "input_image", "image", "input_audio", "audio", "document", "file"):
            modality = "image" if "image" in str(kind) else str(kind).replace("input_", "")
            url = part.get("image_url")
            url = url.get("url") if isinstance(url, Mapping) else url
            if isinstance(url, str) and not _DATA_URL.match(url):
                return {"type": "uri", "modality": modality, "uri": self.text(url)}
            return {"type": "blob", "modality": modality, "content": "<omitted>"}
        if kind in {"thinking", "reasoning"}:
            return {"type": "reasoning", "content": self.flat(part.get("thinking") or part.get("text") or "")}
        return {"type": str(kind or "generic"), **{k: self.clean(v) for k, v in part.items() if k != "type"}}


# Keys under which SDKs carry raw base64 (OpenAI input_audio.data, Anthropic/Bedrock
# source.data and image bytes, Ollama images). Their values are replaced, never exported.
_BINARY_KEYS: Final = frozenset({"data", "b64_json", "bytes", "image_bytes", "audio", "images"})
_BASE64: Final = re.compile(r"^[A-Za-z0-9+/=\s]+$")


def _looks_binary(value: Any) -> bool:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return True
    if isinstance(value, str):
        return len(value) >= 64 and _BASE64.match(value[:4096]) is not None
    if isinstance(value, (list, tuple)):
        return bool(value) and all(_looks_binary(v) for v in value)
    return False


def _binary_text(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_binary_text(v) for v in value]
    return f"<{len(value)} {'bytes' if not isinstance(value, str) else 'base64 chars'} omitted>"


def _binary_placeholder(data_url: str) -> str:
    head = data_url.split(",", 1)[0]
    return f"{head},<{len(data_url) - len(head) - 1} base64 chars omitted>"


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
