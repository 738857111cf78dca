"""Anthropic with genai-observe: a message, a streamed message with the SDK's stream helper, a tool
call, and an async call.

Run it against Anthropic and ship the telemetry to Dynatrace:

    export ANTHROPIC_API_KEY=sk-ant-...
    export DT_ENDPOINT=https://abc12345.live.dynatrace.com DT_API_TOKEN=dt0c01....
    python examples/anthropic_messages.py

Without DT_ENDPOINT each call is printed as one line on stderr instead. The client is configured
only from the environment (ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL), so ANTHROPIC_BASE_URL points it
at a proxy or a test server. ANTHROPIC_MODEL chooses the model.

What appears: four CLIENT spans of service "anthropic-messages-example", all named
"chat <model>" with gen_ai.provider.name "anthropic" (gen_ai.system "Anthropic"), token usage
(cache reads and writes included in the input tokens), the stop reason as finish reason, plus the
gen_ai.client.* metrics. The streamed call also records its time to first chunk. Recent anthropic
releases would add a span of their own per call; with genai-observe there is exactly one per call.
"""

from __future__ import annotations

import asyncio
import os

import anthropic

import genai_observe

MODEL = os.environ.get("ANTHROPIC_MODEL", "claude-haiku-4-5")
SYSTEM = "Answer in one sentence."
QUESTION = [{"role": "user", "content": "Why trace LLM calls?"}]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


async def ask_async() -> str:
    async with anthropic.AsyncAnthropic() as client:
        message = await client.messages.create(model=MODEL, max_tokens=200, system=SYSTEM, messages=QUESTION)
        return "".join(block.text for block in message.content if block.type == "text")


def main() -> None:
    genai_observe.init(service_name="anthropic-messages-example")
    client = anthropic.Anthropic()  # ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL come from the environment

    message = client.messages.create(model=MODEL, max_tokens=200, system=SYSTEM, messages=QUESTION)
    print("message:", "".join(block.text for block in message.content if block.type == "text"))

    with client.messages.stream(model=MODEL, max_tokens=200, system=SYSTEM, messages=QUESTION) as stream:
        print("stream:", "".join(stream.text_stream))
        print("stream usage:", stream.get_final_message().usage.output_tokens, "output tokens")

    tool_turn = client.messages.create(
        model=MODEL,
        max_tokens=200,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "What is the weather in Linz?"}],
    )
    calls = [block for block in tool_turn.content if block.type == "tool_use"]
    print("tool call:", [(c.name, c.input) for c in calls], "stop reason:", tool_turn.stop_reason)

    print("async:", asyncio.run(ask_async()))
    # Telemetry still queued is flushed when the script exits (genai_observe.shutdown() runs atexit).


if __name__ == "__main__":
    main()
