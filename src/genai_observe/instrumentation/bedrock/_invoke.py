"""InvokeModel: each model family's request body and non-streamed response body (stream chunks are
read in ``_streams.py``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from ..._core import safe_json as _json
from ..._core import semconv as sc
from ..._core.record import LLMCall, Message, ToolCall
from ._content import (
    COHERE_ROLES,
    anthropic_messages,
    choice_of,
    cohere_tool_calls,
    converse_content,
    converse_messages,
    function_definitions,
    openai_messages,
    openai_tool_calls,
    system_blocks,
    tool_spec_definitions,
)
from ._fields import as_int, as_list, as_map, as_num, as_str, first_of, stops_of
from ._guardrails import GuardrailSignals, apply_guardrail, guardrail_request
from ._models import (
    AI21_J2,
    ANTHROPIC,
    ANTHROPIC_TEXT,
    COHERE,
    COHERE_CHAT,
    COHERE_EMBED,
    META,
    MISTRAL,
    NOVA,
    OPENAI_CHAT,
    OPENAI_TEXT,
    OPERATION_BY_FAMILY,
    TITAN,
    TITAN_EMBED,
    UNKNOWN,
    family_of,
    sniff_response,
)
from ._plan import Plan, finish_common
from ._tokens import Tokens, anthropic_tokens, converse_tokens, header_tokens

# Bodies larger than this are neither parsed (request) nor buffered for telemetry (response).
MAX_BODY_BYTES: Final = 32 * 1024 * 1024


def load_json(raw: Any) -> Any:
    """The JSON of an InvokeModel body given as bytes, str or a seekable file (position restored)."""
    data: Any = None
    if isinstance(raw, (bytes, bytearray, memoryview)):
        data = bytes(raw)
    elif isinstance(raw, str):
        data = raw
    elif callable(getattr(raw, "read", None)) and callable(getattr(raw, "seekable", None)) and raw.seekable():
        position = raw.tell()
        try:
            data = raw.read(MAX_BODY_BYTES + 1)
        finally:
            raw.seek(position)
    if data is None or len(data) > MAX_BODY_BYTES:
        return None
    return _json.loads(data)


def invoke_request(call: LLMCall, plan: Plan, params: Mapping[str, Any]) -> None:
    guardrail_request(call, params.get("guardrailIdentifier"), params.get("guardrailVersion"))
    body = as_map(load_json(params.get("body")))
    plan.family = family_of(plan.ref, body)
    call.operation = OPERATION_BY_FAMILY.get(plan.family, sc.OP_CHAT)
    reader = _REQUEST_READERS.get(plan.family)
    if reader is not None and body:
        reader(call, body)


def _sampling(
    call: LLMCall,
    body: Mapping[str, Any],
    *,
    max_tokens: tuple[str, ...],
    top_p: tuple[str, ...] = ("top_p",),
    top_k: tuple[str, ...] = ("top_k",),
    stop: tuple[str, ...] = ("stop_sequences",),
) -> None:
    call.max_tokens = as_int(first_of(body, *max_tokens))
    call.temperature = as_num(body.get("temperature"))
    call.top_p = as_num(first_of(body, *top_p))
    call.top_k = as_num(first_of(body, *top_k))
    call.stop_sequences = stops_of(first_of(body, *stop))


def _prompt_message(call: LLMCall, prompt: Any) -> None:
    if isinstance(prompt, str):
        call.input_messages = [Message(role="user", content=prompt)]


def _req_anthropic(call: LLMCall, body: Mapping[str, Any]) -> None:
    _sampling(call, body, max_tokens=("max_tokens",))
    call.system_instructions = system_blocks(body.get("system"))
    call.input_messages = anthropic_messages(body.get("messages"))
    call.tool_definitions = function_definitions(body.get("tools"), "input_schema")


def _req_anthropic_text(call: LLMCall, body: Mapping[str, Any]) -> None:
    _sampling(call, body, max_tokens=("max_tokens_to_sample",))
    _prompt_message(call, body.get("prompt"))


def _req_titan(call: LLMCall, body: Mapping[str, Any]) -> None:
    config = as_map(body.get("textGenerationConfig"))
    _sampling(call, config, max_tokens=("maxTokenCount",), top_p=("topP",), top_k=(), stop=("stopSequences",))
    _prompt_message(call, body.get("inputText"))


def _req_titan_embed(call: LLMCall, body: Mapping[str, Any]) -> None:
    _prompt_message(call, body.get("inputText"))
    formats = stops_of(body.get("embeddingTypes"))
    call.encoding_formats = formats


def _req_nova(call: LLMCall, body: Mapping[str, Any]) -> None:
    config = as_map(body.get("inferenceConfig"))
    _sampling(
        call,
        config,
        max_tokens=("max_new_tokens", "maxTokens"),
        top_p=("topP", "top_p"),
        top_k=("topK", "top_k"),
        stop=("stopSequences",),
    )
    call.system_instructions = system_blocks(body.get("system"))
    call.input_messages = converse_messages(body.get("messages"))
    call.tool_definitions = tool_spec_definitions(body.get("toolConfig"))


def _req_meta(call: LLMCall, body: Mapping[str, Any]) -> None:
    _sampling(call, body, max_tokens=("max_gen_len",), top_k=())
    _prompt_message(call, body.get("prompt"))


def _cohere_common(call: LLMCall, body: Mapping[str, Any]) -> None:
    _sampling(call, body, max_tokens=("max_tokens",), top_p=("p",), top_k=("k",))
    call.frequency_penalty = as_num(body.get("frequency_penalty"))
    call.presence_penalty = as_num(body.get("presence_penalty"))
    seed = as_int(body.get("seed"))
    call.seed = seed


def _req_cohere(call: LLMCall, body: Mapping[str, Any]) -> None:
    _cohere_common(call, body)
    call.choice_count = as_int(body.get("num_generations"))
    _prompt_message(call, body.get("prompt"))


def _req_cohere_chat(call: LLMCall, body: Mapping[str, Any]) -> None:
    _cohere_common(call, body)
    preamble = body.get("preamble")
    call.system_instructions = [preamble] if isinstance(preamble, str) and preamble else None
    history = [
        Message(
            role=COHERE_ROLES.get(str(as_map(m).get("role", "")).upper(), "user"),
            content=as_map(m).get("message"),
        )
        for m in as_list(body.get("chat_history"))
    ]
    message = body.get("message")
    if isinstance(message, str):
        history.append(Message(role="user", content=message))
    call.input_messages = history
    call.tool_definitions = function_definitions(body.get("tools"), "parameter_definitions")


def _req_cohere_embed(call: LLMCall, body: Mapping[str, Any]) -> None:
    call.input_messages = [
        Message(role="user", content=t) for t in as_list(body.get("texts")) if isinstance(t, str)
    ]
    call.encoding_formats = stops_of(body.get("embedding_types"))


def _req_mistral(call: LLMCall, body: Mapping[str, Any]) -> None:
    _sampling(call, body, max_tokens=("max_tokens",), stop=("stop",))
    _prompt_message(call, body.get("prompt"))


def _req_ai21_j2(call: LLMCall, body: Mapping[str, Any]) -> None:
    _sampling(call, body, max_tokens=("maxTokens",), top_p=("topP",), top_k=(), stop=("stopSequences",))
    call.choice_count = as_int(body.get("numResults"))
    _prompt_message(call, body.get("prompt"))


def _req_openai_chat(call: LLMCall, body: Mapping[str, Any]) -> None:
    _sampling(call, body, max_tokens=("max_completion_tokens", "max_tokens"), stop=("stop",))
    call.frequency_penalty = as_num(body.get("frequency_penalty"))
    call.presence_penalty = as_num(body.get("presence_penalty"))
    call.seed = as_int(first_of(body, "seed", "random_seed"))
    call.choice_count = as_int(body.get("n"))
    call.input_messages = openai_messages(body.get("messages"))
    call.tool_definitions = function_definitions(body.get("tools"))


def _req_openai_text(call: LLMCall, body: Mapping[str, Any]) -> None:
    _sampling(
        call, body, max_tokens=("max_tokens", "max_new_tokens"), top_p=("top_p", "topP"), stop=("stop",)
    )
    _prompt_message(call, body.get("prompt"))


_REQUEST_READERS: Final[dict[str, Callable[[LLMCall, Mapping[str, Any]], None]]] = {
    ANTHROPIC: _req_anthropic,
    ANTHROPIC_TEXT: _req_anthropic_text,
    TITAN: _req_titan,
    TITAN_EMBED: _req_titan_embed,
    NOVA: _req_nova,
    META: _req_meta,
    COHERE: _req_cohere,
    COHERE_CHAT: _req_cohere_chat,
    COHERE_EMBED: _req_cohere_embed,
    MISTRAL: _req_mistral,
    AI21_J2: _req_ai21_j2,
    OPENAI_CHAT: _req_openai_chat,
    OPENAI_TEXT: _req_openai_text,
}


def invoke_response(call: LLMCall, plan: Plan, result: Any, data: bytes | None) -> None:
    """The non-streamed body: ``data`` is what the caller read, None when incomplete or not kept."""
    r = as_map(result)
    body: Mapping[str, Any] = {}
    if data:
        body = as_map(_json.loads(data))
    tokens = Tokens()
    if body:
        family = plan.family if plan.family in _RESPONSE_READERS else sniff_response(body)
        if plan.family == UNKNOWN and family != UNKNOWN:
            plan.family = family
        reader = _RESPONSE_READERS.get(family)
        if reader is not None:
            tokens = reader(call, body)
    call.usage = header_tokens(r).merge(tokens).usage()
    signals = GuardrailSignals(
        trace=as_map(as_map(body.get("amazon-bedrock-trace")).get("guardrail")) or None
    )
    signals.note_action(body.get("amazon-bedrock-guardrailAction"))
    apply_guardrail(call, signals)
    finish_common(call, plan, result)


def _resp_anthropic(call: LLMCall, body: Mapping[str, Any]) -> Tokens:
    call.response_id = as_str(body.get("id"))
    call.response_model = as_str(body.get("model"))
    texts: list[str] = []
    calls: list[ToolCall] = []
    reasoning: list[str] = []
    for block in as_list(body.get("content")):
        b = as_map(block)
        kind = b.get("type")
        if kind == "text" and isinstance(b.get("text"), str):
            texts.append(b["text"])
        elif kind == "tool_use":
            calls.append(
                ToolCall(name=as_str(b.get("name")), arguments=b.get("input"), id=as_str(b.get("id")))
            )
        elif kind == "thinking" and isinstance(b.get("thinking"), str):
            reasoning.append(b["thinking"])
    call.choices.append(choice_of(texts, body.get("stop_reason"), calls, reasoning))
    return anthropic_tokens(as_map(body.get("usage")))


def _resp_anthropic_text(call: LLMCall, body: Mapping[str, Any]) -> Tokens:
    completion = body.get("completion")
    call.choices.append(
        choice_of([completion] if isinstance(completion, str) else [], body.get("stop_reason"))
    )
    return Tokens()


def _resp_titan(call: LLMCall, body: Mapping[str, Any]) -> Tokens:
    output = 0
    counted = False
    for index, item in enumerate(as_list(body.get("results"))):
        r = as_map(item)
        text = r.get("outputText")
        call.choices.append(
            choice_of([text] if isinstance(text, str) else [], r.get("completionReason"), index=index)
        )
        count = as_int(r.get("tokenCount"))
        if count is not None:
            output += count
            counted = True
    return Tokens(as_int(body.get("inputTextTokenCount")), output if counted else None)


def _resp_titan_embed(call: LLMCall, body: Mapping[str, Any]) -> Tokens:
    vector = body.get("embedding")
    if not isinstance(vector, list):
        by_type = as_map(body.get("embeddingsByType"))
        vector = next((v for v in by_type.values() if isinstance(v, list)), None)
    if isinstance(vector, list):
        call.embedding_vector_size = len(vector)
        call.embedding_count = 1
    return Tokens(as_int(body.get("inputTextTokenCount")))


def _resp_cohere_embed(call: LLMCall, body: Mapping[str, Any]) -> Tokens:
    call.response_id = as_str(body.get("id"))
    vectors = body.get("embeddings")
    if isinstance(vectors, Mapping):  # embeddings_by_type: {"float": [[...]], "int8": [...]}
        vectors = next((v for v in vectors.values() if isinstance(v, list)), None)
    if isinstance(vectors, list):
        call.embedding_count = len(vectors)
        if vectors and isinstance(vectors[0], list):
            call.embedding_vector_size = len(vectors[0])
    meta = as_map(as_map(body.get("meta")).get("billed_units"))
    return Tokens(as_int(meta.get("input_tokens")))


def _resp_nova(call: LLMCall, body: Mapping[str, Any]) -> Tokens:
    converse_content(call, as_map(as_map(body.get("output")).get("message")), body.get("stopReason"))
    return converse_tokens(as_map(body.get("usage")))


def _resp_meta(call: LLMCall, body: Mapping[str, Any]) -> Tokens:
    text = body.get("generation")
    call.choices.append(choice_of([text] if isinstance(text, str) else [], body.get("stop_reason")))
    return Tokens(as_int(body.get("prompt_token_count")), as_int(body.get("generation_token_count")))


def _resp_cohere(call: LLMCall, body: Mapping[str, Any]) -> Tokens:
    call.response_id = as_str(body.get("id"))
    for index, item in enumerate(as_list(body.get("generations"))):
        g = as_map(item)
        text = g.get("text")
        call.choices.append(
            choice_of([text] if isinstance(text, str) else [], g.get("finish_reason"), index=index)
        )
    return Tokens()


def _resp_cohere_chat(call: LLMCall, body: Mapping[str, Any]) -> Tokens:
    call.response_id = as_str(first_of(body, "response_id", "generation_id"))
    text = body.get("text")
    call.choices.append(
        choice_of(
            [text] if isinstance(text, str) and text else [],
            body.get("finish_reason"),
            cohere_tool_calls(body.get("tool_calls")),
        )
    )
    billed = as_map(as_map(body.get("meta")).get("billed_units"))
    return Tokens(as_int(billed.get("input_tokens")), as_int(billed.get("output_tokens")))


def _resp_mistral(call: LLMCall, body: Mapping[str, Any]) -> Tokens:
    for index, item in enumerate(as_list(body.get("outputs"))):
        o = as_map(item)
        text = o.get("text")
        call.choices.append(
            choice_of([text] if isinstance(text, str) else [], o.get("stop_reason"), index=index)
        )
    return Tokens()


def _resp_ai21_j2(call: LLMCall, body: Mapping[str, Any]) -> Tokens:
    call.response_id = as_str(body.get("id"))
    output = 0
    for index, item in enumerate(as_list(body.get("completions"))):
        c = as_map(item)
        data = as_map(c.get("data"))
        text = data.get("text")
        call.choices.append(
            choice_of(
                [text] if isinstance(text, str) else [],
                as_map(c.get("finishReason")).get("reason"),
                index=index,
            )
        )
        output += len(as_list(data.get("tokens")))
    prompt_tokens = as_list(as_map(body.get("prompt")).get("tokens"))
    return Tokens(len(prompt_tokens) if prompt_tokens else None, output if call.choices else None)


def _resp_openai(call: LLMCall, body: Mapping[str, Any]) -> Tokens:
    call.response_id = as_str(body.get("id"))
    call.response_model = as_str(body.get("model"))
    for position, item in enumerate(as_list(body.get("choices"))):
        c = as_map(item)
        message = as_map(c.get("message"))
        text = message.get("content") if message else c.get("text")
        index = as_int(c.get("index"))
        reasoning = message.get("reasoning_content")
        choice = choice_of(
            [text] if isinstance(text, str) else [],
            first_of(c, "finish_reason", "stop_reason"),
            openai_tool_calls(message.get("tool_calls")),
            [reasoning] if isinstance(reasoning, str) else None,
            index=position if index is None else index,
        )
        if isinstance(message.get("role"), str):
            choice.role = message["role"]
        call.choices.append(choice)
    u = as_map(body.get("usage"))
    return Tokens(as_int(u.get("prompt_tokens")), as_int(u.get("completion_tokens")))


_RESPONSE_READERS: Final[dict[str, Callable[[LLMCall, Mapping[str, Any]], Tokens]]] = {
    ANTHROPIC: _resp_anthropic,
    ANTHROPIC_TEXT: _resp_anthropic_text,
    TITAN: _resp_titan,
    TITAN_EMBED: _resp_titan_embed,
    NOVA: _resp_nova,
    META: _resp_meta,
    COHERE: _resp_cohere,
    COHERE_CHAT: _resp_cohere_chat,
    COHERE_EMBED: _resp_cohere_embed,
    MISTRAL: _resp_mistral,
    AI21_J2: _resp_ai21_j2,
    OPENAI_CHAT: _resp_openai,
    OPENAI_TEXT: _resp_openai,
}
