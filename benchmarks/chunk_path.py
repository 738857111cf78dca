"""The per-chunk cost of our stream path alone, for counting under callgrind (docs/performance.md).

``python -m benchmarks.chunk_path MODE N`` iterates one parsed OpenAI ``ChatCompletionChunk`` N
times: ``bare`` (a plain loop), ``proxy`` (through ``SyncStreamProxy``), ``reader`` (each chunk
handed to ``ChatStream.on_chunk``) or ``both`` (what an instrumented stream does per chunk).
Count two N under callgrind and divide the difference, as ``--instructions`` does::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python -m benchmarks.chunk_path both 1000
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python -m benchmarks.chunk_path both 6000
"""

from __future__ import annotations

import sys

from openai.types.chat import ChatCompletionChunk

from genai_observe._core.record import LLMCall
from genai_observe._core.recorder import Recorder
from genai_observe._core.streams import SyncStreamProxy
from genai_observe.instrumentation.openai._adapter import ChatStream

MODES = ("bare", "proxy", "reader", "both")


def main(argv: list[str]) -> int:
    mode, n = argv[0], int(argv[1])
    if mode not in MODES:
        raise SystemExit(f"MODE is one of {', '.join(MODES)}")
    chunk = ChatCompletionChunk.model_validate(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": {"content": " word"}, "finish_reason": None}],
        }
    )
    chunks = [chunk] * n
    # As the openai.chat.stream scenario makes it: OpenAI's own host, no tools in the request.
    call = LLMCall(operation="chat", provider="openai", server_address="api.openai.com")
    reader = ChatStream(keep_text=True, call=call)
    inv = Recorder().start(call)
    if inv is None:
        raise SystemExit("no invocation started")
    if mode == "bare":
        for _ in iter(chunks):
            pass
    elif mode == "proxy":
        for _ in SyncStreamProxy(iter(chunks), inv):
            pass
    elif mode == "reader":
        for c in iter(chunks):
            reader.on_chunk(c)
    else:
        for _ in SyncStreamProxy(iter(chunks), inv, reader.on_chunk, reader.fill):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
