"""LangChain cost: a prompt | chat model | parser chain, uninstrumented vs instrumented.

The model is langchain_core's ``GenericFakeChatModel``, so what is measured is LangChain's own run
machinery plus our callback handler (chain, prompt, model and parser runs become spans), not a
provider SDK. The instrumented chain produces one workflow span with task and LLM spans under it.
"""

from __future__ import annotations

import itertools
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from genai_observe.instrumentation.langchain import LangChainInstrumentor

from ._harness import Result, instrument_toggle, interleaved, per_chunk_estimate, streamed

CHUNKS = 100
_USAGE = {"input_tokens": 20, "output_tokens": 9, "total_tokens": 29}


def _chain(text: str, output_tokens: int) -> Any:
    usage = {**_USAGE, "output_tokens": output_tokens, "total_tokens": 20 + output_tokens}
    answer = AIMessage(content=text, usage_metadata=usage, response_metadata={"model_name": "fake-model"})
    prompt = ChatPromptTemplate.from_messages([("system", "You are helpful."), ("human", "{question}")])
    model = GenericFakeChatModel(messages=itertools.cycle([answer]))  # it consumes one per call
    return prompt | model | StrOutputParser()


def run(handle: Any, iterations: int, warmup: int) -> list[Result]:
    toggle = instrument_toggle(LangChainInstrumentor(), handle)
    chain = _chain("Hello! How can I help you today?", 9)
    # Streamed, the fake model splits its text on whitespace: words and spaces are chunks.
    streaming = _chain("".join(f"tok{i} " for i in range(CHUNKS)).strip(), CHUNKS)
    chunks = sum(1 for _ in streaming.stream({"question": "Hello there!"}))
    results = [
        interleaved(
            "langchain.chain",
            lambda: chain.invoke({"question": "Hello there!"}),
            toggle,
            iterations=iterations,
            warmup=warmup,
        ),
        streamed(
            "langchain.chain.stream",
            lambda: streaming.stream({"question": "Hello there!"}),
            toggle,
            chunks=chunks,
            iterations=iterations,
            warmup=warmup,
        ),
    ]
    per_chunk_estimate(results[1], results[0])
    return results
