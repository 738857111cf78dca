"""A LangChain chain and a tool, traced by genai-observe with no LangChain code changes.

    pip install "genai-observe[langchain]" langchain-openai
    DT_ENDPOINT=https://<env>.live.dynatrace.com DT_API_TOKEN=dt0c01... python examples/langchain_chain.py

With OPENAI_API_KEY set the chain uses ChatOpenAI (OPENAI_MODEL, default gpt-4o-mini) and the trace
shows the openai LLM span under a ``ChatOpenAI.task`` step; without it a fake chat model answers and
the LangChain LLM span carries the tokens. Without DT_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT the
telemetry is printed to stderr.
"""

from __future__ import annotations

import os
from typing import Any

import genai_observe


def model() -> Any:
    if os.environ.get("OPENAI_API_KEY"):
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"))
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    usage = {"input_tokens": 12, "output_tokens": 9, "total_tokens": 21}
    answer = AIMessage(content="OpenTelemetry standardises traces, metrics and logs.", usage_metadata=usage)
    return GenericFakeChatModel(messages=iter([answer]))


def main() -> int:
    genai_observe.init(service_name="langchain-example")
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.tools import tool

    @tool
    def word_count(text: str) -> int:
        """Count the words in a text."""
        return len(text.split())

    prompt = ChatPromptTemplate.from_messages(
        [("system", "You answer in one sentence."), ("user", "{question}")]
    )
    chain = prompt | model() | StrOutputParser()
    answer = chain.invoke({"question": "What does OpenTelemetry do?"})
    print(answer)
    print("words:", word_count.invoke({"text": answer}))
    genai_observe.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
