"""OpenAI with genai-observe: a chat call, a streamed chat with token usage, embeddings, an async call.

Run it against OpenAI and ship the telemetry to Dynatrace:

    export OPENAI_API_KEY=sk-...
    export DT_ENDPOINT=https://abc12345.live.dynatrace.com DT_API_TOKEN=dt0c01....
    python examples/openai_chat.py

Without DT_ENDPOINT each call is printed as one line on stderr instead. The client is configured
only from the environment, so OPENAI_BASE_URL points it at any OpenAI-compatible server (vLLM,
LiteLLM, ...). OPENAI_CHAT_MODEL and OPENAI_EMBEDDING_MODEL choose the models.

What appears: four CLIENT spans of service "openai-chat-example", three named
"chat gpt-4o-mini" and one "embeddings text-embedding-3-small", all with
gen_ai.provider.name "openai", plus the gen_ai.client.* metrics. The streamed call also records
its token usage and time to first chunk.
"""

from __future__ import annotations

import asyncio
import os

import openai

import genai_observe

CHAT_MODEL = os.environ.get("OPENAI_CHAT_MODEL", "gpt-4o-mini")
EMBEDDING_MODEL = os.environ.get("OPENAI_EMBEDDING_MODEL", "text-embedding-3-small")
MESSAGES = [{"role": "user", "content": "In one sentence: why trace LLM calls?"}]


async def ask_async() -> str | None:
    async with openai.AsyncOpenAI() as client:
        answer = await client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
        return answer.choices[0].message.content


def main() -> None:
    genai_observe.init(service_name="openai-chat-example")
    client = openai.OpenAI()  # OPENAI_API_KEY and OPENAI_BASE_URL come from the environment

    answer = client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
    print("chat:", answer.choices[0].message.content)

    # OpenAI sends token usage for a stream only when asked; the last chunk then has no choices.
    stream = client.chat.completions.create(
        model=CHAT_MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    print("stream:", "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices))

    embedding = client.embeddings.create(model=EMBEDDING_MODEL, input="observability")
    print("embedding size:", len(embedding.data[0].embedding))

    print("async:", asyncio.run(ask_async()))
    # Telemetry still queued is flushed when the script exits (genai_observe.shutdown() runs atexit).


if __name__ == "__main__":
    main()
