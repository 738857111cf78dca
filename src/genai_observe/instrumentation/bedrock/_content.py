"""Content: Bedrock's message, system, tool and answer blocks (Converse, Anthropic, OpenAI-style,
Cohere) as the record's neutral messages, parts, tool calls and choices. Binary sources are never copied."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ..._core.record import Choice, LLMCall, Message, ToolCall
from ._fields import as_list, as_map, as_str, first_of

_MEDIA_BLOCKS: Final = ("image", "document", "video", "audio")


def _block_part(block: Mapping[str, Any]) -> dict[str, Any] | None:
    """A Converse/Nova content block as a typed part; binary sources are never copied."""
    text = block.get("text")
    if isinstance(text, str):
        return {"type": "text", "text": text}
    guard = as_map(block.get("guardContent"))
    if guard:
        guarded = as_map(guard.get("text")).get("text")
        return {"type": "text", "text": guarded} if isinstance(guarded, str) else {"type": "guard_content"}
    for kind in _MEDIA_BLOCKS:
        if kind in block:
            return {"type": kind}
    reasoning = as_map(block.get("reasoningContent"))
    if reasoning:
        said = as_map(reasoning.get("reasoningText")).get("text")
        return {"type": "reasoning", "text": said if isinstance(said, str) else ""}
    citations = as_map(block.get("citationsContent"))
    if citations:
        texts = [as_map(c).get("text") for c in as_list(citations.get("content"))]
        return {"type": "text", "text": "".join(t for t in texts if isinstance(t, str))}
    if "cachePoint" in block:
        return None
    other = next(iter(block), None)  # a block type this version does not know: its name only
    return {"type": str(other)} if other is not None else None


def _simplify(parts: list[Any]) -> Any:
    """One text part becomes a plain string; otherwise the list of parts."""
    if not parts:
        return None
    if len(parts) == 1 and isinstance(parts[0], Mapping) and parts[0].get("type") == "text":
        return parts[0].get("text")
    return parts


def _tool_result_content(content: Any) -> Any:
    """A tool result's content: one JSON document or text as itself, several blocks as parts."""
    items = [as_map(item) for item in as_list(content)]
    if len(items) == 1 and "json" in items[0]:
        return items[0]["json"]
    parts: list[Any] = []
    for m in items:
        if "json" in m:
            parts.append({"type": "json", "json": m["json"]})
            continue
        part = _block_part(m)
        if part is not None:
            parts.append(part)
    return _simplify(parts)


def converse_messages(messages: Any) -> list[Message]:
    """Converse (and Nova InvokeModel) messages; tool results become separate ``tool`` messages."""
    out: list[Message] = []
    for raw in as_list(messages):
        m = as_map(raw)
        role = str(m.get("role") or "user")
        parts: list[Any] = []
        tool_calls: list[ToolCall] = []
        results: list[Message] = []
        content = m.get("content")
        if isinstance(content, str):
            parts.append({"type": "text", "text": content})
        for block in as_list(content):
            b = as_map(block)
            use = as_map(b.get("toolUse"))
            if use:
                tool_calls.append(
                    ToolCall(
                        name=as_str(use.get("name")),
                        arguments=use.get("input"),
                        id=as_str(use.get("toolUseId")),
                    )
                )
                continue
            result = as_map(b.get("toolResult"))
            if result:
                results.append(
                    Message(
                        role="tool",
                        content=_tool_result_content(result.get("content")),
                        tool_call_id=as_str(result.get("toolUseId")),
                    )
                )
                continue
            part = _block_part(b)
            if part is not None:
                parts.append(part)
        out.extend(results)
        if parts or tool_calls or not results:
            out.append(Message(role=role, content=_simplify(parts), tool_calls=tool_calls or None))
    return out


def system_blocks(system: Any) -> list[Any] | None:
    if isinstance(system, str):
        return [system] if system else None
    out: list[Any] = []
    for block in as_list(system):
        m = as_map(block)
        if m.get("type") == "text" and isinstance(m.get("text"), str):  # Anthropic
            out.append(m["text"])
            continue
        part = _block_part(m)
        if part is not None:
            out.append(part.get("text") if part.get("type") == "text" else part)
    return out or None


def tool_spec_definitions(tool_config: Any) -> list[Mapping[str, Any]] | None:
    out: list[Mapping[str, Any]] = []
    for tool in as_list(as_map(tool_config).get("tools")):
        spec = as_map(as_map(tool).get("toolSpec"))
        if not spec:
            continue
        entry: dict[str, Any] = {}
        if as_str(spec.get("name")):
            entry["name"] = spec["name"]
        if isinstance(spec.get("description"), str):
            entry["description"] = spec["description"]
        schema = as_map(spec.get("inputSchema")).get("json")
        if schema is not None:
            entry["parameters"] = schema
        out.append(entry)
    return out or None


def function_definitions(tools: Any, parameters_key: str = "parameters") -> list[Mapping[str, Any]] | None:
    """OpenAI-style ``{"type": "function", "function": {...}}`` or flat ``{"name", ...}`` tools."""
    out: list[Mapping[str, Any]] = []
    for tool in as_list(tools):
        t = as_map(tool)
        fn = as_map(t.get("function")) or t
        entry: dict[str, Any] = {}
        for key in ("name", "description"):
            if isinstance(fn.get(key), str):
                entry[key] = fn[key]
        schema = first_of(fn, parameters_key, "parameters", "input_schema", "parameter_definitions")
        if schema is not None:
            entry["parameters"] = schema
        if not entry.get("name") and isinstance(t.get("type"), str):
            entry["name"] = t["type"]
        out.append(entry)
    return out or None


def openai_messages(messages: Any) -> list[Message]:
    out: list[Message] = []
    for raw in as_list(messages):
        m = as_map(raw)
        calls = openai_tool_calls(m.get("tool_calls"))
        out.append(
            Message(
                role=str(m.get("role") or "user"),
                content=m.get("content"),
                tool_calls=calls or None,
                tool_call_id=as_str(m.get("tool_call_id")),
                name=as_str(m.get("name")),
            )
        )
    return out


def anthropic_messages(messages: Any) -> list[Message]:
    out: list[Message] = []
    for raw in as_list(messages):
        m = as_map(raw)
        role = str(m.get("role") or "user")
        content = m.get("content")
        if isinstance(content, str):
            out.append(Message(role=role, content=content))
            continue
        parts: list[Any] = []
        calls: list[ToolCall] = []
        results: list[Message] = []
        for block in as_list(content):
            b = as_map(block)
            kind = b.get("type")
            if kind == "tool_use":
                calls.append(
                    ToolCall(name=as_str(b.get("name")), arguments=b.get("input"), id=as_str(b.get("id")))
                )
            elif kind == "tool_result":
                inner = b.get("content")
                results.append(
                    Message(
                        role="tool",
                        content=inner if isinstance(inner, str) else _simplify(_anthropic_parts(inner)),
                        tool_call_id=as_str(b.get("tool_use_id")),
                    )
                )
            else:
                parts.extend(_anthropic_parts([b]))
        out.extend(results)
        if parts or calls or not results:
            out.append(Message(role=role, content=_simplify(parts), tool_calls=calls or None))
    return out


def _anthropic_parts(blocks: Any) -> list[Any]:
    parts: list[Any] = []
    for block in as_list(blocks):
        b = as_map(block)
        kind = b.get("type")
        if kind == "text" and isinstance(b.get("text"), str):
            parts.append({"type": "text", "text": b["text"]})
        elif kind in ("thinking", "redacted_thinking"):
            thinking = b.get("thinking")
            parts.append({"type": "reasoning", "text": thinking if isinstance(thinking, str) else ""})
        elif isinstance(kind, str):
            parts.append({"type": kind})  # image, document, ...: never their (base64) source
    return parts


COHERE_ROLES: Final = {"USER": "user", "CHATBOT": "assistant", "SYSTEM": "system", "TOOL": "tool"}


def openai_tool_calls(items: Any) -> list[ToolCall]:
    out = []
    for tc in as_list(items):
        t = as_map(tc)
        fn = as_map(t.get("function"))
        out.append(
            ToolCall(name=as_str(fn.get("name")), arguments=fn.get("arguments"), id=as_str(t.get("id")))
        )
    return out


def cohere_tool_calls(items: Any) -> list[ToolCall]:
    return [
        ToolCall(name=as_str(as_map(tc).get("name")), arguments=as_map(tc).get("parameters"))
        for tc in as_list(items)
        if as_map(tc)
    ]


def choice_of(
    text_parts: list[str],
    finish: Any,
    calls: list[ToolCall] | None = None,
    reasoning: list[str] | None = None,
    index: int = 0,
) -> Choice:
    return Choice(
        index=index,
        content="".join(text_parts) if text_parts else None,
        finish_reason=as_str(finish),
        tool_calls=calls or None,
        reasoning="".join(reasoning) if reasoning else None,
    )


def converse_content(call: LLMCall, message: Mapping[str, Any], finish: Any) -> None:
    texts: list[str] = []
    calls: list[ToolCall] = []
    reasoning: list[str] = []
    for block in as_list(message.get("content")):
        b = as_map(block)
        use = as_map(b.get("toolUse"))
        if use:
            calls.append(
                ToolCall(
                    name=as_str(use.get("name")), arguments=use.get("input"), id=as_str(use.get("toolUseId"))
                )
            )
            continue
        part = _block_part(b)
        if part is None:
            continue
        if part.get("type") == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif part.get("type") == "reasoning" and part.get("text"):
            reasoning.append(str(part["text"]))
    if texts or calls or reasoning or finish:
        choice = choice_of(texts, finish, calls, reasoning)
        choice.role = str(message.get("role") or "assistant")
        call.choices.append(choice)
