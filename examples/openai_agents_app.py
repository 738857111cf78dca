"""An airline customer-service app on the OpenAI Agents SDK, traced by genai-observe.

    pip install "genai-observe[openai,openai-agents]"
    export OPENAI_API_KEY=sk-...
    export DT_ENDPOINT=https://abc12345.live.dynatrace.com DT_API_TOKEN=dt0c01....
    python examples/openai_agents_app.py

Modelled on the Agents SDK's customer-service sample: a triage agent hands the customer off to an
FAQ agent (with an FAQ lookup tool) or a seat-booking agent (with a seat update tool); an input
guardrail, itself an agent, keeps the conversation on air travel. Three customer messages make
three runs of one conversation: a question, a seat change, and an off-topic request the guardrail
stops.

What appears: per run a ``Customer service.workflow`` span with the agent spans under it
(``Triage Agent.agent``, ``FAQ Agent.agent``, ...: ``gen_ai.agent.name``, the handoff and the
guardrail results), tool spans under the agents, and one ``chat gpt-4o-mini`` span per model call,
under the agent that made it and carrying its name and the conversation id. The last run's triage
agent span is an error (``InputGuardrailTripwireTriggered``).

The client comes from the environment, so OPENAI_BASE_URL points it at any OpenAI-compatible
server that speaks the Responses API; OPENAI_MODEL chooses the model. The Agents SDK also exports
its traces to OpenAI with OPENAI_API_KEY; set GENAI_OBSERVE_OPENAI_AGENTS_REPLACE_SDK_PROCESSORS=true
to send them only through genai-observe. Without DT_ENDPOINT the telemetry is printed to stderr.
"""

from __future__ import annotations

import asyncio
import os
import uuid

from pydantic import BaseModel

import genai_observe

MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
CUSTOMER = [
    "How many bags can I bring?",
    "Please move me to seat 14C, confirmation ABC123.",
    "Write me a poem about strawberries.",
]
FAQ = {
    "bag": "You may bring one bag under 50 pounds and 22 x 14 x 9 inches.",
    "seat": "There are 120 seats: 22 business class, 98 economy; exit rows are 4 and 16.",
    "wifi": "Free wifi on the plane: join Airline-Wifi.",
}


class Relevance(BaseModel):
    reasoning: str
    is_relevant: bool


async def main() -> None:
    genai_observe.init(service_name="openai-agents-example")
    from agents import (
        Agent,
        GuardrailFunctionOutput,
        InputGuardrailTripwireTriggered,
        Runner,
        function_tool,
        input_guardrail,
        trace,
    )

    @function_tool
    def faq_lookup(question: str) -> str:
        """Look up the answer to a frequently asked question."""
        for key, answer in FAQ.items():
            if key in question.lower():
                return answer
        return "I don't know the answer to that question."

    @function_tool
    def update_seat(confirmation_number: str, new_seat: str) -> str:
        """Move the passenger with this confirmation number to a new seat."""
        return f"Seat of {confirmation_number} updated to {new_seat}."

    guardrail_agent = Agent(
        name="Relevance Guardrail",
        instructions="You are a relevance guardrail: is the message about airline travel?",
        output_type=Relevance,
        model=MODEL,
    )

    @input_guardrail(name="relevance")
    async def relevance(ctx, agent, message):  # type: ignore[no-untyped-def]
        result = await Runner.run(guardrail_agent, message, context=ctx.context)
        verdict = result.final_output_as(Relevance)
        return GuardrailFunctionOutput(output_info=verdict, tripwire_triggered=not verdict.is_relevant)

    faq_agent = Agent(
        name="FAQ Agent",
        instructions="You are an FAQ agent: answer with the faq_lookup tool, never from memory.",
        tools=[faq_lookup],
        model=MODEL,
    )
    seat_agent = Agent(
        name="Seat Booking Agent",
        instructions="You are a seat booking agent: change seats with the update_seat tool.",
        tools=[update_seat],
        model=MODEL,
    )
    triage_agent = Agent(
        name="Triage Agent",
        instructions="You are a triage agent: hand the customer off to the agent that can help.",
        handoffs=[faq_agent, seat_agent],
        input_guardrails=[relevance],
        model=MODEL,
    )

    conversation = f"conv_{uuid.uuid4().hex[:16]}"
    history: list = []  # type: ignore[type-arg]
    for message in CUSTOMER:
        print("customer:", message)
        with trace("Customer service", group_id=conversation):
            try:
                result = await Runner.run(triage_agent, [*history, {"role": "user", "content": message}])
            except InputGuardrailTripwireTriggered:
                print("agent: Sorry, I can only help with questions about your flight.")
                continue
        print(f"{result.last_agent.name}: {result.final_output}")
        history = result.to_input_list()


if __name__ == "__main__":
    asyncio.run(main())
    # Telemetry still queued is flushed when the script exits (genai_observe.shutdown() runs atexit).
