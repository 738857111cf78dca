"""Amazon Bedrock with genai-observe: Converse, a streamed Converse with a tool, and InvokeModel.

Run it against Bedrock and ship the telemetry to Dynatrace:

    export AWS_DEFAULT_REGION=us-east-1  # credentials the usual way: AWS_PROFILE, SSO, a role, ...
    export DT_ENDPOINT=https://abc12345.live.dynatrace.com DT_API_TOKEN=dt0c01....
    python examples/bedrock_converse.py

Without DT_ENDPOINT each call is printed as one line on stderr instead. The boto3 client is
configured only by the standard AWS configuration (environment, ~/.aws/config, instance roles);
AWS_ENDPOINT_URL_BEDROCK_RUNTIME, botocore's own per-service endpoint setting, points it at another
endpoint, such as a VPC endpoint or a local test server. BEDROCK_MODEL_ID chooses the model; the
default is the Amazon Nova Lite cross-region inference profile, whose InvokeModel body format the
third call uses.

What appears: three CLIENT spans of service "bedrock-converse-example", all named
"chat amazon.nova-lite-v1:0" (the inference profile's "us." prefix is dropped from
gen_ai.request.model and kept in aws.bedrock.model_id), with gen_ai.provider.name "aws.bedrock",
plus the gen_ai.client.* metrics. The streamed call also records its tool call, token usage and
time to first chunk.
"""

from __future__ import annotations

import json
import os

import boto3

import genai_observe

MODEL_ID = os.environ.get("BEDROCK_MODEL_ID", "us.amazon.nova-lite-v1:0")
QUESTION = "In one sentence: why trace LLM calls?"
WEATHER_TOOL = {
    "toolSpec": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}},
    }
}


def main() -> None:
    genai_observe.init(service_name="bedrock-converse-example")
    client = boto3.client("bedrock-runtime")  # region, credentials and endpoint from the AWS config

    answer = client.converse(
        modelId=MODEL_ID,
        system=[{"text": "You answer briefly."}],
        messages=[{"role": "user", "content": [{"text": QUESTION}]}],
        inferenceConfig={"maxTokens": 200, "temperature": 0.2},
    )
    print("converse:", answer["output"]["message"]["content"][0]["text"])

    # The span of a stream ends when the stream is read to the end (or closed).
    streamed = client.converse_stream(
        modelId=MODEL_ID,
        messages=[{"role": "user", "content": [{"text": "What is the weather in Linz?"}]}],
        toolConfig={"tools": [WEATHER_TOOL]},
    )
    text, tools = [], []
    for event in streamed["stream"]:
        delta = event.get("contentBlockDelta", {}).get("delta", {})
        text.append(delta.get("text", ""))
        start = event.get("contentBlockStart", {}).get("start", {})
        if "toolUse" in start:
            tools.append(start["toolUse"]["name"])
    print("stream:", "".join(text), "| tools:", tools)

    # InvokeModel takes the model's own body format (here: Amazon Nova's). The body you get back
    # reads exactly as without genai-observe.
    body = {
        "messages": [{"role": "user", "content": [{"text": QUESTION}]}],
        "inferenceConfig": {"maxTokens": 200},
    }
    response = client.invoke_model(modelId=MODEL_ID, body=json.dumps(body))
    result = json.loads(response["body"].read())
    print("invoke_model:", result["output"]["message"]["content"][0]["text"])
    # Telemetry still queued is flushed when the script exits (genai_observe.shutdown() runs atexit).


if __name__ == "__main__":
    main()
