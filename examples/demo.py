"""Runs with no network: a tiny local OpenAI-compatible server, the real openai client, and
genai_observe printing one line per LLM call to stderr.

    python examples/demo.py

Set DT_ENDPOINT and DT_API_TOKEN (or OTEL_EXPORTER_OTLP_ENDPOINT) to ship the same telemetry to
Dynatrace or a collector instead.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import genai_observe


class FakeOpenAI(BaseHTTPRequestHandler):
    """Answers /v1/chat/completions (JSON or SSE) and /v1/embeddings like the real API."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        model = body.get("model", "demo-model")
        if model == "missing-model":
            return self._json(
                404, {"error": {"message": "The model does not exist", "type": "invalid_request_error"}}
            )
        if self.path.endswith("/embeddings"):
            return self._json(
                200,
                {
                    "object": "list",
                    "model": model,
                    "data": [{"object": "embedding", "index": 0, "embedding": [0.1] * 8}],
                    "usage": {"prompt_tokens": 3, "total_tokens": 3},
                },
            )
        words = ["Observability ", "makes ", "LLM ", "calls ", "visible."]
        usage = {"prompt_tokens": 14, "completion_tokens": len(words), "total_tokens": 14 + len(words)}
        if not body.get("stream"):
            message = {"role": "assistant", "content": "".join(words)}
            return self._json(
                200,
                {
                    "id": "chatcmpl-demo",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "usage": usage,
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                },
            )
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        base = {
            "id": "chatcmpl-demo",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }
        for i, word in enumerate(words):
            finish = "stop" if i == len(words) - 1 else None
            self._chunk(
                {**base, "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": finish}]}
            )
        if (body.get("stream_options") or {}).get("include_usage"):
            self._chunk({**base, "choices": [], "usage": usage})
        self._write(b"data: [DONE]\n\n")
        self._write(b"")

    def _chunk(self, payload: dict[str, Any]) -> None:
        self._write(f"data: {json.dumps(payload)}\n\n".encode())

    def _write(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    genai_observe.init(service_name="genai-observe-demo")
    import openai  # instrumented on import, whatever the order

    client = openai.OpenAI(
        base_url=f"http://127.0.0.1:{server.server_port}/v1", api_key="demo", max_retries=0
    )
    messages = [{"role": "user", "content": "Why trace LLM calls?"}]

    answer = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    print("chat:", answer.choices[0].message.content)

    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    print("stream:", "".join(c.choices[0].delta.content or "" for c in stream if c.choices))

    vector = client.embeddings.create(model="text-embedding-3-small", input="hello").data[0].embedding
    print("embedding size:", len(vector))

    try:
        client.chat.completions.create(model="missing-model", messages=messages)
    except openai.NotFoundError as exc:
        print("error reached the caller unchanged:", type(exc).__name__)

    genai_observe.shutdown()  # flushes: the telemetry lines appear on stderr
    server.shutdown()


if __name__ == "__main__":
    main()
