"""Agents, tools and conversations of your own code, traced with genai-observe's step API.

A small trip-planning assistant: a workflow runs a planner agent (which calls a weather tool and
the model) and a writer agent (async, streaming its answer), for two users in two conversations,
each user in one arm of an A/B experiment on the prompt style.

Run it against OpenAI (or any OpenAI-compatible server through OPENAI_BASE_URL) and ship the
telemetry to Dynatrace:

    export OPENAI_API_KEY=sk-...
    export DT_ENDPOINT=https://abc12345.live.dynatrace.com DT_API_TOKEN=dt0c01....
    python examples/agent_app.py

Without DT_ENDPOINT each LLM call is printed as one line on stderr instead. OPENAI_CHAT_MODEL
chooses the model.

What appears, per user (service "agent-app-example"):

    plan-trip.workflow
      planner.agent
        weather.tool
        chat gpt-4o-mini            gen_ai.agent.name = planner
      writer.agent
        chat gpt-4o-mini (stream)   gen_ai.agent.name = writer

Every span of a user's run carries gen_ai.conversation.id (that user's session: Dynatrace groups
the prompts into one thread) and the experiment attributes ("experiment", "prompt_style"), so
the two arms can be compared side by side. With the profile "latest" (GENAI_OBSERVE_PROFILE) the
agents are "invoke_agent planner" / "invoke_agent writer" and the tool "execute_tool weather".
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import openai

import genai_observe

MODEL = os.environ.get("OPENAI_CHAT_MODEL", "gpt-4o-mini")
STYLES = {"A": "Answer in one short sentence.", "B": "Answer as a friendly bullet list."}


@genai_observe.tool
def weather(city: str) -> str:
    """A tool: a step span of its own (a real app would call a weather service here)."""
    return f"sunny, 24 C in {city}"


@genai_observe.agent
def planner(client: openai.OpenAI, city: str, style: str) -> str:
    """An agent: the tool call and the LLM call made here carry gen_ai.agent.name = planner."""
    forecast = weather(city)
    answer = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": STYLES[style]},
            {"role": "user", "content": f"Plan a day in {city}. Weather: {forecast}."},
        ],
    )
    return answer.choices[0].message.content or ""


@genai_observe.agent("writer")
async def write(client: openai.AsyncOpenAI, plan: str) -> AsyncIterator[str]:
    """An async generator agent: its span covers the whole stream."""
    stream = await client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": f"Turn this plan into a postcard: {plan}"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            yield chunk.choices[0].delta.content


@genai_observe.workflow("plan-trip")
async def plan_trip(city: str, style: str) -> str:
    # A sync agent called from async code runs inline, in this task's context: it is the
    # workflow's child. (Sent to a thread with loop.run_in_executor it would need
    # contextvars.copy_context().run to keep the scope: docs/agents.md, "Threads".)
    plan = planner(openai.OpenAI(), city, style)
    async with openai.AsyncOpenAI() as client:
        return "".join([part async for part in write(client, plan)])


async def main() -> None:
    genai_observe.init(service_name="agent-app-example")
    users = [("session-alice", "A", "Lisbon"), ("session-bob", "B", "Kyoto")]
    for session, arm, city in users:
        # Everything in this block, LLM spans and step spans alike, carries the conversation id
        # and the experiment attributes.
        with (
            genai_observe.conversation(session),
            genai_observe.attributes({"experiment": "prompt-style", "prompt_style": arm}),
        ):
            postcard = await plan_trip(city, arm)
        print(f"{session} ({arm}): {postcard}")
    # Telemetry still queued is flushed when the script exits (genai_observe.shutdown() runs atexit).


if __name__ == "__main__":
    asyncio.run(main())
