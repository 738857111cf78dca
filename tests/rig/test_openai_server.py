"""Self-test of the fake OpenAI server, driven by the real ``openai`` SDK."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from tests.rig.openai_server import (
    AZURE_PROMPT_FILTER_ERROR,
    AZURE_SAFE_FILTER_RESULTS,
    DEFAULT_EMBEDDING_DIMENSIONS,
    DONE,
    OpenAIMockServer,
    Reply,
    ToolCall,
    default_content,
)

MESSAGES = [{"role": "user", "content": "Tell me a joke about opentelemetry"}]
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}
RESPONSES_WEATHER_TOOL: dict[str, Any] = {"type": "function", **WEATHER_TOOL["function"]}


class City(BaseModel):
    name: str
    population: int
    tags: list[str]


def accumulate_tool_calls(chunks: list[Any], choice_index: int = 0) -> dict[int, dict[str, str]]:
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            if choice.index != choice_index:
                continue
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                if delta.id:
                    call["id"] = delta.id
                if delta.function and delta.function.name:
                    call["name"] = delta.function.name
                if delta.function and delta.function.arguments:
                    call["arguments"] += delta.function.arguments
    return calls


def text_of(chunks: list[Any], choice_index: int = 0) -> str:
    return "".join(
        choice.delta.content or ""
        for chunk in chunks
        for choice in chunk.choices
        if choice.index == choice_index
    )


@pytest.fixture
def client(openai_server: OpenAIMockServer) -> Any:
    with openai_server.client() as sync_client:
        yield sync_client


@pytest.fixture
def azure(openai_server: OpenAIMockServer) -> Any:
    with openai_server.azure_client() as azure_client:
        yield azure_client


# --------------------------------------------------------------------------- #
# Server basics
# --------------------------------------------------------------------------- #


def test_addresses(openai_server: OpenAIMockServer) -> None:
    assert openai_server.url.startswith("http://127.0.0.1:")
    assert openai_server.base_url == openai_server.url + "/v1"
    assert openai_server.azure_endpoint == openai_server.url
    sdk = openai.OpenAI(base_url=openai_server.url + "/v1", api_key="test", max_retries=0)
    assert sdk.base_url.port == openai_server.port


def test_start_stop_and_context_manager() -> None:
    server = OpenAIMockServer()
    assert not server.running
    with server:
        assert server.running
        with server.client() as sdk:
            sdk.chat.completions.create(model="m", messages=MESSAGES)
    assert not server.running
    server.stop()  # idempotent


def test_keep_alive_connection_is_reused(openai_server: OpenAIMockServer, client: Any) -> None:
    for _ in range(3):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    list(stream)
    ports = {r.client_address[1] for r in openai_server.requests}
    assert len(ports) == 1, ports


def test_records_requests(openai_server: OpenAIMockServer, client: Any) -> None:
    client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, temperature=0.5, extra_query={"x": "1"}
    )
    request = openai_server.last_request
    assert request.method == "POST"
    assert request.path == "/v1/chat/completions"
    assert request.query == {"x": "1"}
    assert request.endpoint == "chat.completions"
    assert request.body == {"model": "gpt-4o-mini", "messages": MESSAGES, "temperature": 0.5}
    assert request.json is request.body
    assert request.headers["authorization"] == "Bearer test"
    assert request.header("Content-Type") == "application/json"
    assert request.headers["x-stainless-lang"] == "python"
    assert not request.azure and request.deployment is None
    assert not request.stream
    assert openai_server.requests_to("chat.completions") == [request]
    assert openai_server.requests_to("embeddings") == []


def test_unknown_path_is_404(client: Any) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.post("/unknown", cast_to=object, body={})
    assert "Invalid URL" in info.value.message


def test_models_list(client: Any) -> None:
    assert [m.id for m in client.models.list()] == ["gpt-4o-mini"]


# --------------------------------------------------------------------------- #
# Chat completions
# --------------------------------------------------------------------------- #


def test_chat_default_answer(openai_server: OpenAIMockServer, client: Any) -> None:
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-mock")
    assert completion.model == "gpt-4o-mini"
    assert completion.system_fingerprint == "fp_mock"
    assert completion.service_tier == "default"
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert (
        choice.message.content
        == default_content("gpt-4o-mini")
        == "This is a mock response from gpt-4o-mini."
    )
    assert completion.usage.prompt_tokens == 10
    assert completion.usage.completion_tokens == 20
    assert completion.usage.total_tokens == 30
    assert completion.usage.prompt_tokens_details.cached_tokens == 3
    assert completion.usage.completion_tokens_details.reasoning_tokens == 5
    assert completion._request_id == f"req_mock{int(completion.id.removeprefix('chatcmpl-mock')):06d}"


def test_chat_scripted_fields(client: Any, openai_server: OpenAIMockServer) -> None:
    openai_server.script(
        content="Why did the span cross the road?",
        model="gpt-4o-mini-2024-07-18",
        usage={"prompt_tokens": 7, "completion_tokens": 9, "cached_tokens": 0, "reasoning_tokens": 0},
        system_fingerprint="fp_abc",
        finish_reason="length",
        response_id="chatcmpl-fixed",
        headers={"x-custom": "yes"},
    )
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, service_tier="priority"
    )
    assert raw.headers["x-custom"] == "yes"
    completion = raw.parse()
    assert completion.id == "chatcmpl-fixed"
    assert completion.model == "gpt-4o-mini-2024-07-18"
    assert completion.service_tier == "priority"  # echoed from the request
    assert completion.system_fingerprint == "fp_abc"
    assert completion.choices[0].message.content == "Why did the span cross the road?"
    assert completion.choices[0].finish_reason == "length"
    assert (
        completion.usage.prompt_tokens,
        completion.usage.completion_tokens,
        completion.usage.total_tokens,
    ) == (7, 9, 16)


def test_chat_without_usage(client: Any, openai_server: OpenAIMockServer) -> None:
    openai_server.script(include_usage=False)
    assert client.chat.completions.create(model="m", messages=MESSAGES).usage is None


def test_chat_n2(client: Any) -> None:
    completion = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, n=2)
    assert [c.index for c in completion.choices] == [0, 1]
    assert completion.choices[0].message.content == default_content("gpt-4o", 0)
    assert completion.choices[1].message.content == default_content("gpt-4o", 1)


def test_chat_n2_scripted_per_choice(client: Any, openai_server: OpenAIMockServer) -> None:
    openai_server.script(content=["first", "second"])
    completion = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, n=2)
    assert [c.message.content for c in completion.choices] == ["first", "second"]


def test_chat_stream_without_usage(openai_server: OpenAIMockServer, client: Any) -> None:
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert isinstance(stream, openai.Stream)
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert all(c.usage is None for c in chunks)
    assert all(len(c.choices) == 1 for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert text_of(chunks) == default_content("gpt-4o-mini")
    assert [c.choices[0].finish_reason for c in chunks][-1] == "stop"
    assert {c.id for c in chunks} == {chunks[0].id}
    request = openai_server.last_request
    assert request.stream
    assert "stream_options" not in request.body


def test_chat_stream_with_usage(openai_server: OpenAIMockServer, client: Any) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    *content_chunks, last = chunks
    assert last.choices == []
    assert last.usage.prompt_tokens == 10 and last.usage.completion_tokens == 20
    assert last.usage.prompt_tokens_details.cached_tokens == 3
    assert last.usage.completion_tokens_details.reasoning_tokens == 5
    assert all(c.usage is None for c in content_chunks)
    assert content_chunks[-1].choices[0].finish_reason == "stop"
    assert openai_server.last_request.body["stream_options"] == {"include_usage": True}


def test_chat_stream_forced_usage_chunk(client: Any, openai_server: OpenAIMockServer) -> None:
    openai_server.script(include_usage=True)
    chunks = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 30


def test_chat_stream_n2(client: Any) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, n=2, stream=True, stream_options={"include_usage": True}
        )
    )
    assert text_of(chunks, 0) == default_content("gpt-4o", 0)
    assert text_of(chunks, 1) == default_content("gpt-4o", 1)
    finishes = {
        c.choices[0].index: c.choices[0].finish_reason
        for c in chunks
        if c.choices and c.choices[0].finish_reason
    }
    assert finishes == {0: "stop", 1: "stop"}
    # choices are interleaved like the real API
    indexes = [c.choices[0].index for c in chunks if c.choices]
    assert indexes[:4] == [0, 1, 0, 1]
    assert chunks[-1].usage is not None


def test_chat_tool_calls(openai_server: OpenAIMockServer, client: Any) -> None:
    openai_server.script_tool_calls(
        ToolCall("get_weather", {"location": "Paris"}, id="call_1"),
        {"name": "get_weather", "arguments": '{"location":"Boston"}'},
    )
    completion = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, tools=[WEATHER_TOOL])
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls[0].id == "call_1"
    assert calls[1].id.startswith("call_mock")
    assert [c.type for c in calls] == ["function", "function"]
    assert [c.function.name for c in calls] == ["get_weather", "get_weather"]
    assert [json.loads(c.function.arguments) for c in calls] == [
        {"location": "Paris"},
        {"location": "Boston"},
    ]
    assert openai_server.last_request.body["tools"] == [WEATHER_TOOL]


def test_chat_tool_calls_stream(openai_server: OpenAIMockServer, client: Any) -> None:
    openai_server.script_tool_calls(
        ToolCall("get_weather", {"location": "San Francisco, CA"}, id="call_sf"),
        ToolCall("get_weather", {"location": "Boston, MA"}, id="call_bos"),
    )
    chunks = list(
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, tools=[WEATHER_TOOL], stream=True)
    )
    calls = accumulate_tool_calls(chunks)
    assert calls == {
        0: {"id": "call_sf", "name": "get_weather", "arguments": '{"location":"San Francisco, CA"}'},
        1: {"id": "call_bos", "name": "get_weather", "arguments": '{"location":"Boston, MA"}'},
    }
    argument_chunks = [
        c for c in chunks if c.choices[0].delta.tool_calls and not c.choices[0].delta.tool_calls[0].id
    ]
    assert len(argument_chunks) > 4  # the arguments really are split over several chunks
    assert chunks[0].choices[0].delta.content is None
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_chat_tool_choice_forces_a_call_by_default(client: Any) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "example"}
    # tools without a forcing tool_choice get a plain text answer
    plain = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, tools=[WEATHER_TOOL])
    assert plain.choices[0].message.tool_calls is None


def test_chat_parse_with_pydantic_model(openai_server: OpenAIMockServer, client: Any) -> None:
    parsed = client.chat.completions.parse(model="gpt-4o", messages=MESSAGES, response_format=City)
    assert parsed.choices[0].message.parsed == City(name="example", population=1, tags=["example"])
    sent = openai_server.last_request
    assert sent.body["response_format"]["type"] == "json_schema"
    assert sent.headers["x-stainless-helper-method"] == "chat.completions.parse"

    openai_server.script(content='{"name": "Paris", "population": 2102650, "tags": ["capital"]}')
    parsed = client.chat.completions.parse(model="gpt-4o", messages=MESSAGES, response_format=City)
    assert parsed.choices[0].message.parsed.name == "Paris"
    assert parsed.usage.total_tokens == 30


def test_chat_parse_refusal(openai_server: OpenAIMockServer, client: Any) -> None:
    openai_server.script(refusal="I can't help with that.")
    parsed = client.chat.completions.parse(model="gpt-4o", messages=MESSAGES, response_format=City)
    message = parsed.choices[0].message
    assert message.refusal == "I can't help with that."
    assert message.parsed is None and message.content is None


def test_chat_parse_tools(openai_server: OpenAIMockServer, client: Any) -> None:
    openai_server.script_tool_calls(ToolCall("City", {"name": "Oslo", "population": 700000, "tags": []}))
    parsed = client.chat.completions.parse(
        model="gpt-4o", messages=MESSAGES, tools=[openai.pydantic_function_tool(City)]
    )
    assert parsed.choices[0].message.tool_calls[0].function.parsed_arguments == City(
        name="Oslo", population=700000, tags=[]
    )


def test_chat_stream_helper(openai_server: OpenAIMockServer, client: Any) -> None:
    with client.chat.completions.stream(model="gpt-4o", messages=MESSAGES, response_format=City) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_completion()
    assert "content.delta" in kinds and "content.done" in kinds
    assert final.choices[0].message.parsed == City(name="example", population=1, tags=["example"])
    assert openai_server.last_request.headers["x-stainless-helper-method"] == "chat.completions.stream"
    assert openai_server.last_request.body["stream"] is True


def test_chat_with_raw_response(openai_server: OpenAIMockServer, client: Any) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
    assert raw.status_code == 200
    assert raw.headers["x-request-id"].startswith("req_mock")
    completion = raw.parse()
    assert completion.choices[0].message.content == default_content("gpt-4o")
    assert raw.parse() is completion  # cached

    raw_stream = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=MESSAGES, stream=True
    )
    stream = raw_stream.parse()
    assert isinstance(stream, openai.Stream)
    assert text_of(list(stream)) == default_content("gpt-4o")


def test_chat_with_streaming_response(client: Any) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o", messages=MESSAGES
    ) as response:
        assert response.headers["content-type"] == "application/json"
        completion = response.parse()
    assert completion.choices[0].message.content == default_content("gpt-4o")

    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o", messages=MESSAGES, stream=True
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[0][len("data: ") :])["object"] == "chat.completion.chunk"

    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o", messages=MESSAGES, stream=True
    ) as response:
        assert text_of(list(response.parse())) == default_content("gpt-4o")


def test_chat_stream_context_manager_and_early_close(openai_server: OpenAIMockServer, client: Any) -> None:
    openai_server.script(content=" ".join(["word"] * 200), chunk_delay=0.001)
    with client.chat.completions.create(model="m", messages=MESSAGES, stream=True) as stream:
        first = next(iter(stream))
        assert first.choices[0].delta.role == "assistant"
    assert stream.response.is_closed
    # the server keeps working for the next request
    assert client.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content


# --------------------------------------------------------------------------- #
# Legacy completions
# --------------------------------------------------------------------------- #


def test_legacy_completion(openai_server: OpenAIMockServer, client: Any) -> None:
    completion = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi")
    assert completion.object == "text_completion"
    assert completion.id.startswith("cmpl-mock")
    assert completion.choices[0].text == default_content("gpt-3.5-turbo-instruct")
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (10, 20)
    assert openai_server.last_request.path == "/v1/completions"


def test_legacy_completion_prompts_times_n(client: Any) -> None:
    completion = client.completions.create(model="m", prompt=["a", "b"], n=2)
    assert [c.index for c in completion.choices] == [0, 1, 2, 3]


def test_legacy_completion_stream(openai_server: OpenAIMockServer, client: Any) -> None:
    chunks = list(client.completions.create(model="davinci-002", prompt="Say hi", stream=True))
    assert "".join(c.choices[0].text for c in chunks) == default_content("davinci-002")
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)

    openai_server.script(content="short answer", finish_reason="length")
    chunks = list(
        client.completions.create(
            model="davinci-002", prompt="Say hi", stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 30
    assert "".join(c.choices[0].text for c in chunks[:-1]) == "short answer"
    assert chunks[-2].choices[0].finish_reason == "length"


# --------------------------------------------------------------------------- #
# Embeddings
# --------------------------------------------------------------------------- #


def test_embeddings_default_base64_is_decoded(openai_server: OpenAIMockServer, client: Any) -> None:
    result = client.embeddings.create(model="text-embedding-3-small", input="hello")
    assert openai_server.last_request.body["encoding_format"] == "base64"  # SDK default
    assert result.model == "text-embedding-3-small"
    assert len(result.data) == 1
    vector = result.data[0].embedding
    assert isinstance(vector, list) and len(vector) == DEFAULT_EMBEDDING_DIMENSIONS
    assert all(isinstance(v, float) for v in vector)
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (10, 10)

    floats = client.embeddings.create(model="text-embedding-3-small", input="hello", encoding_format="float")
    assert floats.data[0].embedding == vector  # same vector, exactly representable in float32

    explicit = client.embeddings.create(
        model="text-embedding-3-small", input="hello", encoding_format="base64"
    )
    assert isinstance(explicit.data[0].embedding, str)  # explicit base64 is left to the caller


def test_embeddings_many_inputs_and_dimensions(client: Any, openai_server: OpenAIMockServer) -> None:
    result = client.embeddings.create(model="m", input=["a", "b", "c"], dimensions=4)
    assert [d.index for d in result.data] == [0, 1, 2]
    assert all(len(d.embedding) == 4 for d in result.data)
    assert result.data[0].embedding != result.data[1].embedding

    openai_server.script(embedding=[0.5, -0.25], usage={"prompt_tokens": 2})
    scripted = client.embeddings.create(model="m", input=[[1, 2, 3]])
    assert scripted.data[0].embedding == [0.5, -0.25]
    assert scripted.usage.prompt_tokens == 2


def test_embeddings_with_raw_response(client: Any) -> None:
    raw = client.embeddings.with_raw_response.create(model="m", input="x")
    parsed = raw.parse()
    assert len(parsed.data[0].embedding) == DEFAULT_EMBEDDING_DIMENSIONS
    assert isinstance(parsed.data[0].embedding[0], float)


# --------------------------------------------------------------------------- #
# Responses API
# --------------------------------------------------------------------------- #


def test_responses_create(openai_server: OpenAIMockServer, client: Any) -> None:
    response = client.responses.create(
        model="gpt-4.1-nano", input="What is the capital of France?", instructions="Be brief"
    )
    assert response.object == "response"
    assert response.id.startswith("resp_mock")
    assert response.status == "completed"
    assert response.model == "gpt-4.1-nano"
    assert response.instructions == "Be brief"
    assert response.output_text == default_content("gpt-4.1-nano")
    assert response.output[0].type == "message"
    assert response.usage.input_tokens == 10 and response.usage.output_tokens == 20
    assert response.usage.input_tokens_details.cached_tokens == 3
    assert response.usage.output_tokens_details.reasoning_tokens == 5
    assert openai_server.last_request.endpoint == "responses"


def test_responses_tool_calls_and_reasoning(openai_server: OpenAIMockServer, client: Any) -> None:
    openai_server.script_tool_calls(ToolCall("get_weather", {"location": "London"}, id="call_london"))
    response = client.responses.create(
        model="gpt-5-nano", input="weather?", tools=[RESPONSES_WEATHER_TOOL], reasoning={"effort": "low"}
    )
    kinds = [item.type for item in response.output]
    assert kinds == ["reasoning", "function_call"]
    call = response.output[1]
    assert (call.name, call.call_id, json.loads(call.arguments)) == (
        "get_weather",
        "call_london",
        {"location": "London"},
    )
    assert response.tools[0].name == "get_weather"
    assert response.reasoning.effort == "low"


def test_responses_incomplete(openai_server: OpenAIMockServer, client: Any) -> None:
    openai_server.script(finish_reason="length", content="Once upon a")
    response = client.responses.create(model="m", input="story", max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.max_output_tokens == 16


def test_responses_stream(openai_server: OpenAIMockServer, client: Any) -> None:
    events = list(client.responses.create(model="gpt-4.1-nano", input="story", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == default_content("gpt-4.1-nano")
    assert events[0].response.status == "in_progress" and events[0].response.usage is None
    completed = events[-1].response
    assert completed.usage.total_tokens == 30
    assert completed.output_text == deltas


def test_responses_stream_function_call(openai_server: OpenAIMockServer, client: Any) -> None:
    openai_server.script_tool_calls(ToolCall("get_weather", {"location": "Paris, France"}))
    events = list(client.responses.create(model="m", input="x", tools=[RESPONSES_WEATHER_TOOL], stream=True))
    fragments = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert len(fragments) > 1
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert "".join(fragments) == done.arguments == '{"location":"Paris, France"}'
    assert events[-1].response.output[0].type == "function_call"


def test_responses_stream_helper(openai_server: OpenAIMockServer, client: Any) -> None:
    with client.responses.stream(model="gpt-4.1", input="hi") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[-1] == "response.completed"
    assert final.output_text == default_content("gpt-4.1")
    assert openai_server.last_request.body["stream"] is True


def test_responses_parse(openai_server: OpenAIMockServer, client: Any) -> None:
    parsed = client.responses.parse(model="gpt-4.1", input="a city", text_format=City)
    assert parsed.output_parsed == City(name="example", population=1, tags=["example"])
    assert openai_server.last_request.body["text"]["format"]["type"] == "json_schema"


def test_responses_with_raw_and_streaming_response(client: Any) -> None:
    raw = client.responses.with_raw_response.create(model="m", input="x")
    assert raw.parse().output_text == default_content("m")
    with client.responses.with_streaming_response.create(model="m", input="x", stream=True) as response:
        events = list(response.parse())
    assert events[-1].type == "response.completed"


def test_responses_in_stream_error_event(openai_server: OpenAIMockServer, client: Any) -> None:
    openai_server.script(stream_error_after=2, error_message="boom", error_code="server_error")
    events = list(client.responses.create(model="m", input="x", stream=True))
    assert [e.type for e in events] == ["response.created", "response.in_progress", "error"]
    assert events[-1].message == "boom" and events[-1].code == "server_error"


# --------------------------------------------------------------------------- #
# Azure
# --------------------------------------------------------------------------- #


def test_azure_chat(openai_server: OpenAIMockServer, azure: Any) -> None:
    completion = azure.chat.completions.create(model="my-deployment", messages=MESSAGES)
    request = openai_server.last_request
    assert request.path == "/openai/deployments/my-deployment/chat/completions"
    assert request.query == {"api-version": "2024-06-01"}
    assert request.azure and request.deployment == "my-deployment"
    assert request.headers["api-key"] == "test"
    assert "authorization" not in request.headers
    dumped = completion.model_dump()
    assert dumped["prompt_filter_results"] == [
        {"prompt_index": 0, "content_filter_results": dict(AZURE_SAFE_FILTER_RESULTS)}
    ]
    assert dumped["choices"][0]["content_filter_results"] == dict(AZURE_SAFE_FILTER_RESULTS)
    assert completion.choices[0].message.content == default_content("my-deployment")


def test_azure_chat_stream(openai_server: OpenAIMockServer, azure: Any) -> None:
    chunks = list(azure.chat.completions.create(model="dep", messages=MESSAGES, stream=True))
    first = chunks[0]
    assert first.choices == [] and first.id == "" and first.model == ""
    assert first.model_dump()["prompt_filter_results"][0]["prompt_index"] == 0
    content_chunks = [c for c in chunks[1:] if c.choices[0].delta.content]
    assert all(
        c.choices[0].model_dump()["content_filter_results"] == dict(AZURE_SAFE_FILTER_RESULTS)
        for c in content_chunks
    )
    assert chunks[1].choices[0].model_dump()["content_filter_results"] == {}
    assert text_of(chunks) == default_content("dep")


def test_azure_content_filtered_completion(openai_server: OpenAIMockServer, azure: Any) -> None:
    verdict = {**AZURE_SAFE_FILTER_RESULTS, "hate": {"filtered": True, "severity": "high"}}
    openai_server.script(finish_reason="content_filter", content_filter_results=verdict)
    completion = azure.chat.completions.create(model="dep", messages=MESSAGES)
    choice = completion.choices[0]
    assert choice.finish_reason == "content_filter"
    assert choice.model_dump()["content_filter_results"]["hate"] == {"filtered": True, "severity": "high"}
    assert "message" not in choice.model_fields_set  # Azure sends no message at all


def test_azure_prompt_filter_error(openai_server: OpenAIMockServer, azure: Any) -> None:
    openai_server.script(status=400, error=AZURE_PROMPT_FILTER_ERROR)
    with pytest.raises(openai.BadRequestError) as info:
        azure.chat.completions.create(model="dep", messages=MESSAGES)
    assert info.value.code == "content_filter"
    assert info.value.body["innererror"]["code"] == "ResponsibleAIPolicyViolation"


def test_azure_deployment_not_found(openai_server: OpenAIMockServer, azure: Any) -> None:
    openai_server.script_error(404)
    with pytest.raises(openai.NotFoundError) as info:
        azure.chat.completions.create(model="missing", messages=MESSAGES)
    assert info.value.code == "DeploymentNotFound"


def test_azure_embeddings_and_deployment_client(openai_server: OpenAIMockServer) -> None:
    with openai_server.azure_client(azure_deployment="emb-dep", api_version="2023-07-01-preview") as client:
        result = client.embeddings.create(model="text-embedding-3-large", input="x")
    assert len(result.data[0].embedding) == DEFAULT_EMBEDDING_DIMENSIONS
    request = openai_server.last_request
    assert request.path == "/openai/deployments/emb-dep/embeddings"
    assert request.query["api-version"] == "2023-07-01-preview"
    assert request.endpoint == "embeddings"


def test_azure_responses(openai_server: OpenAIMockServer, azure: Any) -> None:
    response = azure.responses.create(model="gpt-4.1", input="x")
    assert response.output_text == default_content("gpt-4.1")
    assert openai_server.last_request.path == "/openai/responses"
    assert openai_server.last_request.azure


# --------------------------------------------------------------------------- #
# Errors and broken transports
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("status", "exception", "code"),
    [
        (400, openai.BadRequestError, None),
        (401, openai.AuthenticationError, "invalid_api_key"),
        (403, openai.PermissionDeniedError, None),
        (404, openai.NotFoundError, "model_not_found"),
        (429, openai.RateLimitError, "rate_limit_exceeded"),
        (500, openai.InternalServerError, None),
        (503, openai.InternalServerError, None),
    ],
)
def test_error_statuses(
    openai_server: OpenAIMockServer, client: Any, status: int, exception: type[Exception], code: str | None
) -> None:
    openai_server.script_error(status)
    with pytest.raises(exception) as info:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    error = info.value
    assert isinstance(error, openai.APIStatusError)
    assert error.status_code == status
    assert error.code == code
    assert error.type
    assert error.request_id.startswith("req_mock")
    assert isinstance(error.body, dict) and "message" in error.body


def test_error_on_stream_request_raises_at_create(openai_server: OpenAIMockServer, client: Any) -> None:
    openai_server.script_error(400, "bad param", code="invalid_value", param="temperature")
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    assert (info.value.code, info.value.param, info.value.body["message"]) == (
        "invalid_value",
        "temperature",
        "bad param",
    )


def test_rate_limit_headers_and_retry(openai_server: OpenAIMockServer) -> None:
    openai_server.script_error(429, retry_after=0.01)
    with openai_server.client() as no_retry, pytest.raises(openai.RateLimitError) as info:
        no_retry.embeddings.create(model="m", input="x")
    headers = info.value.response.headers
    assert headers["retry-after"] == "1"
    assert headers["retry-after-ms"] == "10"
    assert headers["x-ratelimit-remaining-requests"] == "0"

    openai_server.reset()
    openai_server.script_error(429, retry_after=0.01)
    with openai_server.client(max_retries=1) as retrying:
        result = retrying.embeddings.create(model="m", input="x")
    assert result.data
    assert len(openai_server.requests) == 2
    assert openai_server.requests[1].headers["x-stainless-retry-count"] == "1"


def test_broken_stream_raises_from_iteration(openai_server: OpenAIMockServer, client: Any) -> None:
    openai_server.script_broken_stream(after=3)
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 3
    assert openai_server.last_request.aborted and openai_server.last_request.events_sent == 3
    # the next request works (fresh connection)
    assert client.chat.completions.create(model="m", messages=MESSAGES).choices


def test_broken_responses_stream(openai_server: OpenAIMockServer, client: Any) -> None:
    openai_server.script(break_after=4)
    with pytest.raises(openai.APIConnectionError):
        list(client.responses.create(model="m", input="x", stream=True))


def test_disconnect_and_truncated_body(openai_server: OpenAIMockServer, client: Any) -> None:
    openai_server.script(disconnect=True)
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=MESSAGES)
    openai_server.script(break_after=0)
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=MESSAGES)


def test_malformed_json(openai_server: OpenAIMockServer, client: Any) -> None:
    openai_server.script(malformed=True)
    with pytest.raises(json.JSONDecodeError):
        client.chat.completions.create(model="m", messages=MESSAGES)
    openai_server.script(malformed=True)
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    iterator = iter(stream)
    assert next(iterator).choices[0].delta.role == "assistant"
    with pytest.raises(json.JSONDecodeError):
        next(iterator)


def test_in_stream_error_event(openai_server: OpenAIMockServer, client: Any) -> None:
    openai_server.script(stream_error_after=2, error_message="overloaded mid-stream")
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError, match="overloaded mid-stream"):
        list(stream)


def test_delay_and_timeout(openai_server: OpenAIMockServer, client: Any) -> None:
    openai_server.script(delay=1.0)
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.2).chat.completions.create(model="m", messages=MESSAGES)
    openai_server.script(delay=0.05)
    assert client.chat.completions.create(model="m", messages=MESSAGES).choices


def test_custom_body_and_raw_events(openai_server: OpenAIMockServer, client: Any) -> None:
    body = {
        "id": "chatcmpl-custom",
        "object": "chat.completion",
        "created": 1,
        "model": "custom-model",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "custom"}, "finish_reason": "stop"}
        ],
    }
    openai_server.script(body=body)
    completion = client.chat.completions.create(model="m", messages=MESSAGES)
    assert (completion.id, completion.model, completion.usage) == ("chatcmpl-custom", "custom-model", None)

    chunk = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "x",
        "choices": [{"index": 0, "delta": {"content": "raw"}, "finish_reason": None}],
    }
    openai_server.script(events=[chunk, {**chunk, "choices": []}])
    chunks = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert [c.choices[0].delta.content for c in chunks[:1]] == ["raw"] and len(chunks) == 2

    openai_server.script(events=[chunk], done=False, break_after=None)
    with client.chat.completions.with_streaming_response.create(
        model="m", messages=MESSAGES, stream=True
    ) as resp:
        assert [line for line in resp.iter_lines() if line] == [
            "data: " + json.dumps(chunk, separators=(",", ":"))
        ]

    openai_server.script(events=[("response.created", {"type": "response.created"}), DONE], done=False)
    with client.responses.with_streaming_response.create(model="m", input="x", stream=True) as resp:
        lines = [line for line in resp.iter_lines() if line]
    assert lines == ["event: response.created", 'data: {"type":"response.created"}', "data: [DONE]"]


def test_raw_body_with_content_type(openai_server: OpenAIMockServer, client: Any) -> None:
    openai_server.script(raw_body="upstream exploded", content_type="text/plain", status=502)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.status_code == 502 and info.value.body == "upstream exploded"


# --------------------------------------------------------------------------- #
# Script queue semantics
# --------------------------------------------------------------------------- #


def test_script_queue_order_endpoint_filter_and_times(openai_server: OpenAIMockServer, client: Any) -> None:
    openai_server.script(content="for embeddings only?", endpoint="responses")
    openai_server.script(content="one")
    openai_server.script(Reply(content="two"), times=2)
    openai_server.script(content="sticky", times=None)

    def ask() -> str:
        return client.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content

    assert [ask(), ask(), ask(), ask(), ask()] == ["one", "two", "two", "sticky", "sticky"]
    assert client.responses.create(model="m", input="x").output_text == "for embeddings only?"
    assert [r.content for r in openai_server.pending()] == ["sticky"]
    assert openai_server.requests[0].reply is not None
    openai_server.reset()
    assert openai_server.pending() == [] and openai_server.requests == []
    assert ask() == default_content("m")
    assert openai_server.last_request.reply is None


# --------------------------------------------------------------------------- #
# Async clients
# --------------------------------------------------------------------------- #


@pytest.mark.asyncio
async def test_async_chat(openai_server: OpenAIMockServer) -> None:
    async with openai_server.async_client() as client:
        completion = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert completion.choices[0].message.content == default_content("gpt-4o")

        stream = await client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        assert isinstance(stream, openai.AsyncStream)
        chunks = [chunk async for chunk in stream]
        assert text_of(chunks) == default_content("gpt-4o")
        assert chunks[-1].usage.total_tokens == 30
    assert openai_server.requests[0].headers["x-stainless-async"].startswith("async")


@pytest.mark.asyncio
async def test_async_tool_calls_stream_and_parse(openai_server: OpenAIMockServer) -> None:
    async with openai_server.async_client() as client:
        openai_server.script_tool_calls(ToolCall("get_weather", {"location": "Rome"}, id="call_rome"))
        stream = await client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, tools=[WEATHER_TOOL], stream=True
        )
        chunks = [chunk async for chunk in stream]
        assert accumulate_tool_calls(chunks) == {
            0: {"id": "call_rome", "name": "get_weather", "arguments": '{"location":"Rome"}'}
        }
        parsed = await client.chat.completions.parse(model="gpt-4o", messages=MESSAGES, response_format=City)
        assert parsed.choices[0].message.parsed.population == 1

        async with client.chat.completions.stream(model="gpt-4o", messages=MESSAGES) as helper:
            async for _ in helper:
                pass
            final = await helper.get_final_completion()
        assert final.choices[0].message.content == default_content("gpt-4o")


@pytest.mark.asyncio
async def test_async_raw_and_streaming_response(openai_server: OpenAIMockServer) -> None:
    async with openai_server.async_client() as client:
        raw = await client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
        assert raw.parse().choices[0].message.content == default_content("m")
        async with client.chat.completions.with_streaming_response.create(
            model="m", messages=MESSAGES
        ) as resp:
            completion = await resp.parse()
        assert completion.usage.total_tokens == 30
        async with client.chat.completions.with_streaming_response.create(
            model="m", messages=MESSAGES, stream=True
        ) as resp:
            chunks = [chunk async for chunk in await resp.parse()]
        assert text_of(chunks) == default_content("m")


@pytest.mark.asyncio
async def test_async_embeddings_completions_responses(openai_server: OpenAIMockServer) -> None:
    async with openai_server.async_client() as client:
        embedding = await client.embeddings.create(model="m", input="x")
        assert len(embedding.data[0].embedding) == DEFAULT_EMBEDDING_DIMENSIONS
        legacy = await client.completions.create(model="m", prompt="x")
        assert legacy.choices[0].text == default_content("m")
        legacy_stream = await client.completions.create(model="m", prompt="x", stream=True)
        assert "".join([c.choices[0].text async for c in legacy_stream]) == default_content("m")
        response = await client.responses.create(model="m", input="x")
        assert response.output_text == default_content("m")
        events = [e async for e in await client.responses.create(model="m", input="x", stream=True)]
        assert events[-1].type == "response.completed"
        async with client.responses.stream(model="m", input="x") as stream:
            async for _ in stream:
                pass
            final = await stream.get_final_response()
        assert final.usage.total_tokens == 30
        parsed = await client.responses.parse(model="m", input="x", text_format=City)
        assert parsed.output_parsed.name == "example"


@pytest.mark.asyncio
async def test_async_azure_stream(openai_server: OpenAIMockServer) -> None:
    async with openai_server.async_azure_client() as client:
        stream = await client.chat.completions.create(model="dep", messages=MESSAGES, stream=True)
        chunks = [chunk async for chunk in stream]
    assert chunks[0].choices == []
    assert text_of(chunks) == default_content("dep")
    assert openai_server.last_request.path == "/openai/deployments/dep/chat/completions"


@pytest.mark.asyncio
async def test_async_errors_broken_stream_and_timeout(openai_server: OpenAIMockServer) -> None:
    async with openai_server.async_client() as client:
        openai_server.script_error(429)
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="m", messages=MESSAGES)

        openai_server.script_broken_stream(after=2)
        stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        received = []
        with pytest.raises(openai.APIConnectionError):
            async for chunk in stream:
                received.append(chunk)
        assert len(received) == 2

        openai_server.script(delay=1.0)
        with pytest.raises(openai.APITimeoutError):
            await client.with_options(timeout=0.2).chat.completions.create(model="m", messages=MESSAGES)

        # an async stream consumed to [DONE] leaves the connection reusable
        for _ in range(2):
            stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
            assert [c async for c in stream]
        assert openai_server.requests[-1].client_address == openai_server.requests[-2].client_address


def test_azure_content_filtered_stream_ends_with_the_verdict(
    openai_server: OpenAIMockServer, azure: Any
) -> None:
    verdict = {**AZURE_SAFE_FILTER_RESULTS, "hate": {"filtered": True, "severity": "high"}}
    openai_server.script(finish_reason="content_filter", content_filter_results=verdict)
    chunks = list(azure.chat.completions.create(model="dep", messages=MESSAGES, stream=True))
    last = chunks[-1].choices[0]
    assert last.finish_reason == "content_filter"
    assert last.model_dump()["content_filter_results"]["hate"] == {"filtered": True, "severity": "high"}
