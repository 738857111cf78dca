"""A small question-answering HTTP service. It contains no telemetry code at all.

Telemetry is added from outside: the container starts it as
``genai-observe-instrument gunicorn ... app:application`` (see Dockerfile and README.md).

Routes:

    GET  /healthz                          200 "ok"; no LLM call (readiness probe)
    POST /ask   {"question": "..."}        200 {"answer": "...", "model": "..."}

The OpenAI client takes everything from the environment: ``OPENAI_API_KEY`` and, for any
OpenAI-compatible server (Azure gateway, vLLM, NIM, Ollama, ...), ``OPENAI_BASE_URL``. The model
name comes from ``OPENAI_MODEL``.

Run it under gunicorn, as the container does, or on its own with the standard library's server:

    gunicorn -w 2 -b 0.0.0.0:8000 app:application
    python app.py                          # HOST (default 0.0.0.0), PORT (default 8000)
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
from collections.abc import Callable, Iterable
from typing import Any

import openai

MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
MAX_BODY = 64 * 1024

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


@functools.lru_cache(maxsize=1)
def _client() -> openai.OpenAI:
    # Created on first use, so each gunicorn worker builds its own after the fork.
    return openai.OpenAI()


def _reply(start_response: StartResponse, status: str, payload: object) -> list[bytes]:
    body = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
    kind = "text/plain; charset=utf-8" if isinstance(payload, str) else "application/json"
    start_response(status, [("Content-Type", kind), ("Content-Length", str(len(body)))])
    return [body]


def _ask(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = -1
    if length < 0 or length > MAX_BODY:
        return _reply(start_response, "413 Content Too Large", {"error": "body too large"})
    try:
        question = json.loads(environ["wsgi.input"].read(length) or b"{}")["question"]
        if not isinstance(question, str) or not question.strip():
            raise ValueError
    except (ValueError, KeyError, TypeError):
        return _reply(start_response, "400 Bad Request", {"error": 'send {"question": "..."}'})
    try:
        completion = _client().chat.completions.create(
            model=MODEL,
            messages=[
                {"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": question},
            ],
        )
    except openai.OpenAIError as exc:
        return _reply(start_response, "502 Bad Gateway", {"error": type(exc).__name__})
    answer = completion.choices[0].message.content or ""
    return _reply(start_response, "200 OK", {"answer": answer, "model": completion.model})


def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The WSGI entry point."""
    method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/")
    if path == "/healthz" and method in ("GET", "HEAD"):
        return _reply(start_response, "200 OK", "ok")
    if path == "/ask" and method == "POST":
        return _ask(environ, start_response)
    return _reply(start_response, "404 Not Found", {"error": "try POST /ask or GET /healthz"})


def main() -> None:
    from wsgiref.simple_server import make_server

    # A container stops its process with SIGTERM. Exiting normally on it (rather than being
    # killed) lets atexit hooks run, so nothing buffered in the process is lost.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    host, port = os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "8000"))
    with make_server(host, port, application) as server:
        print(f"listening on http://{host}:{server.server_port}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
