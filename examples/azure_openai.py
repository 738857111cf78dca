"""Azure OpenAI with genai-observe: a chat call and a streamed chat through a deployment.

Run it against your Azure OpenAI resource:

    export AZURE_OPENAI_ENDPOINT=https://myresource.openai.azure.com
    export AZURE_OPENAI_API_KEY=...
    export OPENAI_API_VERSION=2024-10-21
    export AZURE_OPENAI_DEPLOYMENT=my-gpt-4o-mini
    export DT_ENDPOINT=https://abc12345.live.dynatrace.com DT_API_TOKEN=dt0c01....
    python examples/azure_openai.py

Without DT_ENDPOINT each call is printed as one line on stderr instead.

What appears: two CLIENT spans named "chat <deployment>" with gen_ai.provider.name
"azure.ai.openai" and gen_ai.system "openai". gen_ai.request.model is the deployment,
gen_ai.response.model the model Azure ran; gen_ai.openai.api_version and Azure's content filter
verdicts (gen_ai.prompt.prompt_filter_results, gen_ai.completion.0.content_filter_results) are
recorded as well.
"""

from __future__ import annotations

import os

import openai

import genai_observe

DEPLOYMENT = os.environ["AZURE_OPENAI_DEPLOYMENT"]
MESSAGES = [{"role": "user", "content": "In one sentence: why trace LLM calls?"}]


def main() -> None:
    genai_observe.init(service_name="azure-openai-example")
    # Endpoint, key and API version come from AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY and
    # OPENAI_API_VERSION.
    client = openai.AzureOpenAI()

    answer = client.chat.completions.create(model=DEPLOYMENT, messages=MESSAGES)
    print(f"chat ({answer.model}):", answer.choices[0].message.content)

    stream = client.chat.completions.create(
        model=DEPLOYMENT, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    # Azure's first chunk (filter verdicts) and the usage chunk carry no choices.
    print("stream:", "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices))


if __name__ == "__main__":
    main()
