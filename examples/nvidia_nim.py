"""NVIDIA NIM with genai-observe: NIM speaks the OpenAI API, so the official openai client is used.

Run it against NVIDIA's hosted API (build.nvidia.com):

    export NVIDIA_API_KEY=nvapi-...
    export DT_ENDPOINT=https://abc12345.live.dynatrace.com DT_API_TOKEN=dt0c01....
    python examples/nvidia_nim.py

or against a self-hosted NIM container, whose host genai-observe cannot recognise by name, so
list it (host or host:port, comma-separated) before init() runs:

    export NIM_BASE_URL=http://nim.internal:8000/v1
    export GENAI_OBSERVE_NIM_HOSTS=nim.internal:8000
    python examples/nvidia_nim.py

NIM_MODEL chooses the model. Without DT_ENDPOINT each call is printed as one line on stderr.

What appears: two CLIENT spans named "chat <model>" with gen_ai.provider.name and gen_ai.system
"nvidia_nim", server.address of the NIM host, and token usage for both calls.
"""

from __future__ import annotations

import os

import openai

import genai_observe

MODEL = os.environ.get("NIM_MODEL", "meta/llama-3.1-8b-instruct")
MESSAGES = [{"role": "user", "content": "In one sentence: why trace LLM calls?"}]


def main() -> None:
    genai_observe.init(service_name="nvidia-nim-example")
    client = openai.OpenAI(
        base_url=os.environ.get("NIM_BASE_URL", "https://integrate.api.nvidia.com/v1"),
        api_key=os.environ.get("NVIDIA_API_KEY", "none"),  # self-hosted NIM usually needs no key
    )

    answer = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=100)
    print("chat:", answer.choices[0].message.content)

    stream = client.chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        max_tokens=100,
        stream=True,
        stream_options={"include_usage": True},
    )
    print("stream:", "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices))


if __name__ == "__main__":
    main()
