"""Chat with a local Ollama model; genai-observe traces every call.

    ollama pull llama3.2
    DT_ENDPOINT=https://<env>.live.dynatrace.com DT_API_TOKEN=dt0c01... python examples/ollama_chat.py

The Ollama server is found the way the ``ollama`` client finds it: OLLAMA_HOST (default
http://127.0.0.1:11434). OLLAMA_MODEL picks the model (default llama3.2). Without DT_ENDPOINT or
OTEL_EXPORTER_OTLP_ENDPOINT the telemetry is printed to stderr instead of being shipped.
"""

from __future__ import annotations

import os
import sys

import genai_observe


def main() -> int:
    genai_observe.init(service_name="ollama-chat-example")
    import ollama  # imported after init() or before: both are instrumented

    model = os.environ.get("OLLAMA_MODEL", "llama3.2")
    messages = [
        {"role": "system", "content": "You answer in one sentence."},
        {"role": "user", "content": "What does OpenTelemetry do?"},
    ]
    try:
        reply = ollama.chat(model=model, messages=messages)
        print(reply["message"]["content"])

        # Streaming: the span ends with the stream and records the time to the first chunk.
        messages.append({"role": "user", "content": "And why would I trace LLM calls?"})
        for chunk in ollama.chat(model=model, messages=messages, stream=True):
            print(chunk["message"]["content"], end="", flush=True)
        print()
    except ollama.ResponseError as exc:
        print(f"Ollama answered with an error: {exc.error} (HTTP {exc.status_code})", file=sys.stderr)
        return 1
    except ConnectionError as exc:
        print(f"Ollama is not reachable: {exc}", file=sys.stderr)
        return 1
    finally:
        genai_observe.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
