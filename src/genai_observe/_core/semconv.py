"""Every attribute name, metric name, value and bucket boundary the library emits.

One place, so a rename is one edit and a test can compare against the spec tables
(`shared/spec/dynatrace-genai-attributes.md`: what Dynatrace documents today, plus the
OpenTelemetry GenAI semantic conventions v1.41.0).
"""

from __future__ import annotations

import re
from typing import Final

# --- OpenTelemetry GenAI semantic conventions v1.41.0 ---------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
GEN_AI_REQUEST_TOP_K: Final = "gen_ai.request.top_k"
GEN_AI_REQUEST_FREQUENCY_PENALTY: Final = "gen_ai.request.frequency_penalty"
GEN_AI_REQUEST_PRESENCE_PENALTY: Final = "gen_ai.request.presence_penalty"
GEN_AI_REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
GEN_AI_REQUEST_SEED: Final = "gen_ai.request.seed"
GEN_AI_REQUEST_CHOICE_COUNT: Final = "gen_ai.request.choice.count"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_REQUEST_ENCODING_FORMATS: Final = "gen_ai.request.encoding_formats"
GEN_AI_OUTPUT_TYPE: Final = "gen_ai.output.type"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_EMBEDDINGS_DIMENSION_COUNT: Final = "gen_ai.embeddings.dimension.count"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
GEN_AI_TOOL_DEFINITIONS: Final = "gen_ai.tool.definitions"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
OPENAI_API_TYPE: Final = "openai.api.type"
OPENAI_RESPONSE_SERVICE_TIER: Final = "openai.response.service_tier"
OPENAI_RESPONSE_SYSTEM_FINGERPRINT: Final = "openai.response.system_fingerprint"
OPENAI_REQUEST_SERVICE_TIER: Final = "openai.request.service_tier"
AWS_BEDROCK_GUARDRAIL_ID: Final = "aws.bedrock.guardrail.id"
AWS_BEDROCK_GUARDRAIL_VERSION: Final = "aws.bedrock.guardrail.version"
AWS_BEDROCK_GUARDRAIL_ACTION: Final = "aws.bedrock.guardrail.action"  # INTERVENED | NONE
AWS_BEDROCK_KNOWLEDGE_BASE_ID: Final = "aws.bedrock.knowledge_base.id"
# The model id exactly as the caller passed it, when gen_ai.request.model differs from it
# (cross-region inference profiles, ARNs).
AWS_BEDROCK_MODEL_ID: Final = "aws.bedrock.model_id"
AWS_REQUEST_ID: Final = "aws.request_id"  # x-amzn-RequestId, as OTel's AWS SDK conventions name it
# Ollama's server timings (it reports ns; recorded in seconds like every OTel duration).
OLLAMA_RESPONSE_TOTAL_DURATION: Final = "ollama.response.total_duration"
OLLAMA_RESPONSE_LOAD_DURATION: Final = "ollama.response.load_duration"
OLLAMA_RESPONSE_PROMPT_EVAL_DURATION: Final = "ollama.response.prompt_eval_duration"
OLLAMA_RESPONSE_EVAL_DURATION: Final = "ollama.response.eval_duration"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"

# --- Attributes Dynatrace documents today (OpenLLMetry generation) --------------------
GEN_AI_SYSTEM: Final = "gen_ai.system"
LLM_REQUEST_TYPE: Final = "llm.request.type"
LLM_IS_STREAMING: Final = "llm.is_streaming"
LLM_USAGE_TOTAL_TOKENS: Final = "llm.usage.total_tokens"
LLM_REQUEST_FUNCTIONS: Final = "llm.request.functions"  # prefix: llm.request.functions.N.name
GEN_AI_USAGE_PROMPT_TOKENS: Final = "gen_ai.usage.prompt_tokens"
GEN_AI_USAGE_COMPLETION_TOKENS: Final = "gen_ai.usage.completion_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS_LEGACY: Final = "gen_ai.usage.cache_read_input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS_LEGACY: Final = "gen_ai.usage.cache_creation_input_tokens"
GEN_AI_PROMPT: Final = "gen_ai.prompt"  # prefix: gen_ai.prompt.N.role / .content
GEN_AI_COMPLETION: Final = "gen_ai.completion"  # prefix: gen_ai.completion.N.*
GEN_AI_PROMPT_FILTER_RESULTS: Final = "gen_ai.prompt.prompt_filter_results"
GEN_AI_OPENAI_API_BASE: Final = "gen_ai.openai.api_base"
GEN_AI_OPENAI_API_VERSION: Final = "gen_ai.openai.api_version"
GEN_AI_OPENAI_SYSTEM_FINGERPRINT: Final = "gen_ai.openai.system_fingerprint"
TRACELOOP_SPAN_KIND: Final = "traceloop.span.kind"
TRACELOOP_WORKFLOW_NAME: Final = "traceloop.workflow.name"
TRACELOOP_ENTITY_NAME: Final = "traceloop.entity.name"

# --- Operation names (gen_ai.operation.name) and the llm.request.type they map to -----
OP_CHAT: Final = "chat"
OP_TEXT_COMPLETION: Final = "text_completion"
OP_EMBEDDINGS: Final = "embeddings"
OP_GENERATE_CONTENT: Final = "generate_content"
OP_EXECUTE_TOOL: Final = "execute_tool"
OP_INVOKE_AGENT: Final = "invoke_agent"
OP_CREATE_AGENT: Final = "create_agent"

LLM_REQUEST_TYPE_BY_OPERATION: Final[dict[str, str]] = {
    OP_CHAT: "chat",
    OP_TEXT_COMPLETION: "completion",
    OP_EMBEDDINGS: "embedding",
    OP_GENERATE_CONTENT: "chat",
    OP_EXECUTE_TOOL: "tool",
    OP_INVOKE_AGENT: "agent",
}

# --- Provider names (gen_ai.provider.name) and the gen_ai.system Dynatrace shows ------
PROVIDER_OPENAI: Final = "openai"
PROVIDER_AZURE_OPENAI: Final = "azure.ai.openai"
PROVIDER_ANTHROPIC: Final = "anthropic"
PROVIDER_AWS_BEDROCK: Final = "aws.bedrock"
PROVIDER_OLLAMA: Final = "ollama"  # v1.41.0 has no value for Ollama; the de-facto name.
PROVIDER_NVIDIA_NIM: Final = "nvidia_nim"  # v1.41.0 has no value for NIM; documented in docs/.
PROVIDER_LANGCHAIN: Final = "langchain"

# Dynatrace's provider pages key on gen_ai.system; values as OpenLLMetry wrote them.
GEN_AI_SYSTEM_BY_PROVIDER: Final[dict[str, str]] = {
    PROVIDER_OPENAI: "openai",
    PROVIDER_AZURE_OPENAI: "openai",
    PROVIDER_ANTHROPIC: "Anthropic",
    PROVIDER_AWS_BEDROCK: "AWS",
    PROVIDER_OLLAMA: "Ollama",
    PROVIDER_NVIDIA_NIM: "nvidia_nim",
    PROVIDER_LANGCHAIN: "Langchain",
}

# --- Token types (gen_ai.token.type) ---------------------------------------------------
TOKEN_TYPE_INPUT: Final = "input"
TOKEN_TYPE_OUTPUT: Final = "output"
# Our extension of the open enum (v1.41.0 defines input and output only): cached input tokens as
# their own points, named after gen_ai.usage.cache_*.input_tokens. They are a part of "input",
# never to be added to it; a total is input + output.
TOKEN_TYPE_CACHE_READ: Final = "cache_read"
TOKEN_TYPE_CACHE_CREATION: Final = "cache_creation"

# --- Metrics -----------------------------------------------------------------------------
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_GENERATION_CHOICES: Final = "gen_ai.client.generation.choices"
METRIC_EMBEDDINGS_VECTOR_SIZE: Final = "llm.openai.embeddings.vector_size"
METRIC_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"
METRIC_TIME_PER_OUTPUT_CHUNK: Final = "gen_ai.client.operation.time_per_output_chunk"
# An observable gauge that never reports a value: the SDK calls observable callbacks at the start
# of every collection of its MeterProvider, and ours records the points still queued for the
# metrics worker, so a collection always includes every call that has returned (see MetricsWorker).
METRIC_FLUSH_HOOK: Final = "genai_observe.pending_metric_points"
# The attribute set the SDK folds series into past its cardinality limit; our histograms
# aggregated in process (_core/histograms.py) do the same.
OTEL_METRIC_OVERFLOW: Final = "otel.metric.overflow"

# --- Prompt caching (dynatrace profile only: v1.41.0 has no such names) --------------------------
# What Dynatrace's cached-vs-non-cached chart and Bedrock cache-savings tiles read (contract rows
# AR-022, AR-023, AR-045), as OpenLLMetry named them. Written for calls that read or wrote the
# provider's prompt cache; the counts themselves are gen_ai.usage.cache_*.input_tokens.
GEN_AI_PROMPT_CACHING: Final = "gen_ai.prompt_caching"  # span: read | write
GEN_AI_CACHE_TYPE: Final = "gen_ai.cache.type"  # span, and on gen_ai.prompt.caching points
CACHE_TYPE_READ: Final = "read"
CACHE_TYPE_WRITE: Final = "write"
# Counter of cached input tokens (unit tokens), one point per cache type a call touched.
METRIC_PROMPT_CACHING: Final = "gen_ai.prompt.caching"

# v1.41.0 boundaries (explicit buckets; Dynatrace drops exponential buckets).
TOKEN_USAGE_BUCKETS: Final[tuple[float, ...]] = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)
DURATION_BUCKETS: Final[tuple[float, ...]] = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)

# Attributes allowed on metric data points: low cardinality only (no prompts, ids, URLs).
METRIC_ATTRIBUTE_KEYS: Final[tuple[str, ...]] = (
    GEN_AI_OPERATION_NAME,
    GEN_AI_PROVIDER_NAME,
    GEN_AI_SYSTEM,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_RESPONSE_MODEL,
    SERVER_ADDRESS,
    SERVER_PORT,
    ERROR_TYPE,
)

# --- Guardrails: the Bedrock guardrail family (docs/bedrock.md#guardrails) -----------------------
# Names of OpenLLMetry's Bedrock guardrail metrics, which Dynatrace's Bedrock dashboard charts, and
# of the span attributes its audit reads (dynatrace-app-contract.md AR-017..AR-021, AR-040, AR-046,
# AR-050/051). Span attributes: dynatrace profile only (v1.41.0 defines no guardrail names).
GEN_AI_BEDROCK_GUARDRAIL_ACTIVATION: Final = "gen_ai.bedrock.guardrail.activation"  # AR-017
GEN_AI_BEDROCK_GUARDRAIL_CONTENT: Final = "gen_ai.bedrock.guardrail.content"  # AR-018
GEN_AI_BEDROCK_GUARDRAIL_SENSITIVE_INFO: Final = "gen_ai.bedrock.guardrail.sensitive_info"  # AR-019
GEN_AI_BEDROCK_GUARDRAIL_TOPICS: Final = "gen_ai.bedrock.guardrail.topics"  # AR-020
GEN_AI_BEDROCK_GUARDRAIL_WORDS: Final = "gen_ai.bedrock.guardrail.words"  # AR-021
GEN_AI_BEDROCK_GUARDRAIL_CONTEXTUAL: Final = "gen_ai.bedrock.guardrail.contextual"  # AR-040
GEN_AI_GUARDRAIL_GROUNDING_TYPE: Final = "gen_ai.guardrail.grounding_type"  # AR-046: GROUNDING | RELEVANCE
GEN_AI_GUARDRAIL_ID: Final = "gen_ai.guardrail.id"  # AR-050
GEN_AI_GUARDRAIL_VERSION: Final = "gen_ai.guardrail.version"  # AR-051
# The metrics: the first five and .contextual share the span attributes' names.
METRIC_GUARDRAIL_ACTIVATIONS: Final = GEN_AI_BEDROCK_GUARDRAIL_ACTIVATION  # {activation}
METRIC_GUARDRAIL_CONTENT: Final = GEN_AI_BEDROCK_GUARDRAIL_CONTENT  # {finding}
METRIC_GUARDRAIL_SENSITIVE_INFO: Final = GEN_AI_BEDROCK_GUARDRAIL_SENSITIVE_INFO  # {finding}
METRIC_GUARDRAIL_TOPICS: Final = GEN_AI_BEDROCK_GUARDRAIL_TOPICS  # {finding}
METRIC_GUARDRAIL_WORDS: Final = GEN_AI_BEDROCK_GUARDRAIL_WORDS  # {finding}
METRIC_GUARDRAIL_CONTEXTUAL: Final = GEN_AI_BEDROCK_GUARDRAIL_CONTEXTUAL  # histogram of scores, 1
METRIC_GUARDRAIL_COVERAGE: Final = "gen_ai.bedrock.guardrail.coverage"  # {char} guarded
METRIC_GUARDRAIL_LATENCY: Final = "gen_ai.bedrock.guardrail.latency"  # histogram, ms
# Metric dimensions. gen_ai.guardrail.type is what was assessed, input or output, as in
# OpenLLMetry's guardrail counters (it held the policy type before; that is now .policy).
GEN_AI_GUARDRAIL_TYPE: Final = "gen_ai.guardrail.type"  # input | output (GUARDRAIL_INPUT/OUTPUT)
GEN_AI_GUARDRAIL_POLICY: Final = "gen_ai.guardrail.policy"  # GUARDRAIL_POLICY_* (activation)
GEN_AI_GUARDRAIL_ACTION: Final = "gen_ai.guardrail.action"  # a finding's action: BLOCKED, ANONYMIZED, NONE
GEN_AI_GUARDRAIL_CONTENT: Final = "gen_ai.guardrail.content"  # content filter type: HATE, VIOLENCE, ...
GEN_AI_GUARDRAIL_CONFIDENCE: Final = "gen_ai.guardrail.confidence"  # NONE | LOW | MEDIUM | HIGH
GEN_AI_GUARDRAIL_PII: Final = "gen_ai.guardrail.pii"  # PII entity type: EMAIL, ADDRESS, ...
GEN_AI_GUARDRAIL_PATTERN: Final = "gen_ai.guardrail.pattern"  # the configured regex's name
GEN_AI_GUARDRAIL_TOPIC: Final = "gen_ai.guardrail.topic"  # the configured topic's name
GEN_AI_GUARDRAIL_WORD_LIST: Final = "gen_ai.guardrail.word_list"  # CUSTOM or a managed list: PROFANITY
GUARDRAIL_POLICY_CONTENT: Final = "content"
GUARDRAIL_POLICY_TOPIC: Final = "topic"
GUARDRAIL_POLICY_WORD: Final = "word"
GUARDRAIL_POLICY_SENSITIVE_INFORMATION: Final = "sensitive_information"
GUARDRAIL_POLICY_CONTEXTUAL_GROUNDING: Final = "contextual_grounding"
GUARDRAIL_WORD_LIST_CUSTOM: Final = "CUSTOM"
GUARDRAIL_KIND_PII: Final = "pii"  # a sensitive-information finding: an entity type
GUARDRAIL_KIND_REGEX: Final = "regex"  # a sensitive-information finding: a configured regex
GUARDRAIL_LATENCY_BUCKETS_MS: Final[tuple[float, ...]] = (
    10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
)  # fmt: skip
GUARDRAIL_SCORE_BUCKETS: Final[tuple[float, ...]] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
GUARDRAIL_METRIC_KEYS: Final[tuple[str, ...]] = (
    GEN_AI_GUARDRAIL_ID,
    GEN_AI_GUARDRAIL_TYPE,
    GEN_AI_GUARDRAIL_POLICY,
    GEN_AI_GUARDRAIL_ACTION,
    GEN_AI_GUARDRAIL_CONTENT,
    GEN_AI_GUARDRAIL_CONFIDENCE,
    GEN_AI_GUARDRAIL_PII,
    GEN_AI_GUARDRAIL_PATTERN,
    GEN_AI_GUARDRAIL_TOPIC,
    GEN_AI_GUARDRAIL_WORD_LIST,
    GEN_AI_GUARDRAIL_GROUNDING_TYPE,
)
# Extra keys some metrics add to the common ones above (still low cardinality).
METRIC_EXTRA_KEYS: Final[tuple[str, ...]] = (GEN_AI_TOKEN_TYPE, GEN_AI_CACHE_TYPE, *GUARDRAIL_METRIC_KEYS)

# --- Log event ---------------------------------------------------------------------------
EVENT_INFERENCE_DETAILS: Final = "gen_ai.client.inference.operation.details"

# --- Span status for abandoned streams --------------------------------------------------
STREAM_END_REASON: Final = "genai_observe.stream.end"  # exhausted|closed|abandoned|cancelled|error
# --- Exceptions and resource (OpenTelemetry general conventions) -----------------------------
EXCEPTION_EVENT: Final = "exception"
EXCEPTION_TYPE: Final = "exception.type"
EXCEPTION_MESSAGE: Final = "exception.message"
EXCEPTION_STACKTRACE: Final = "exception.stacktrace"
EXCEPTION_ESCAPED: Final = "exception.escaped"
SERVICE_NAME: Final = "service.name"
SERVICE_VERSION: Final = "service.version"
DEPLOYMENT_ENVIRONMENT_NAME: Final = "deployment.environment.name"

# Keys of the flattened (dynatrace profile) content attributes: gen_ai.prompt.N.*,
# gen_ai.completion.N.* (but not their finish reasons and filter verdicts, which are metadata) and
# llm.request.functions.*; the log event carries the v1.41.0 JSON form instead.
FLAT_CONTENT_KEY: Final = re.compile(
    r"^(?:gen_ai\.(?:prompt|completion)\.\d+\.(?!finish_reason$|content_filter_results$)|llm\.request\.functions\.)"
)

# The Azure deployment a request was routed to (no convention names it); docs/openai.md.
AZURE_DEPLOYMENT: Final = "genai_observe.azure.deployment"

# --- Non-LLM steps (workflow/task/agent/tool/retriever spans; _steps.py) ----------------
TRACELOOP_ENTITY_INPUT: Final = "traceloop.entity.input"  # JSON, content capture only
TRACELOOP_ENTITY_OUTPUT: Final = "traceloop.entity.output"  # JSON, content capture only
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"  # content capture only
GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"  # content capture only
# traceloop.span.kind values
SPAN_KIND_WORKFLOW: Final = "workflow"
SPAN_KIND_TASK: Final = "task"
SPAN_KIND_AGENT: Final = "agent"
SPAN_KIND_TOOL: Final = "tool"
SPAN_KIND_RETRIEVER: Final = "retriever"
STEP_KINDS: Final[frozenset[str]] = frozenset(
    {SPAN_KIND_WORKFLOW, SPAN_KIND_TASK, SPAN_KIND_AGENT, SPAN_KIND_TOOL, SPAN_KIND_RETRIEVER}
)

# --- Scraped Prometheus metrics of model servers and gateways (_prometheus.py) -----------
# Metric names and labels are kept exactly as scraped (the NIM, vLLM and Kong dashboards read
# them so); this one attribute is added to every point and names where it came from.
PROMETHEUS_TARGET: Final = "genai_observe.prometheus.target"  # scheme://host:port/path only
PROMETHEUS_SCOPE: Final = "genai_observe.prometheus"  # the instrumentation scope of those metrics

# --- Agent frameworks: handoffs and guardrails (OpenAI Agents SDK; instrumentation/openai_agents)
# No convention names them yet: the handoff attributes are the ones OpenLLMetry writes, the
# guardrail ones ours. Events on the agent span; the attributes also on the span itself.
EVENT_AGENT_HANDOFF: Final = "gen_ai.agent.handoff"
EVENT_AGENT_GUARDRAIL: Final = "gen_ai.agent.guardrail"
GEN_AI_HANDOFF_FROM_AGENT: Final = "gen_ai.handoff.from_agent"
GEN_AI_HANDOFF_TO_AGENT: Final = "gen_ai.handoff.to_agent"
GUARDRAIL_NAME: Final = "genai_observe.guardrail.name"
GUARDRAIL_DIRECTION: Final = "genai_observe.guardrail.direction"  # input | output
GUARDRAIL_TRIGGERED: Final = "genai_observe.guardrail.triggered"  # the tripwire fired (bool)
# On the agent span: the guardrails whose tripwire fired (string array).
GUARDRAIL_TRIPWIRES: Final = "genai_observe.guardrail.tripwires"
GUARDRAIL_INPUT: Final = "input"
GUARDRAIL_OUTPUT: Final = "output"

# --- Business events and their OTLP log twins (_bizevents.py, _evaluation.py) ------------
# Dynatrace's Business Events API and the AI Observability app's audit-trail and evaluation
# views (shared/spec/dynatrace-app-contract.md, "Business events"); the app gates on event.type.
EVENT_TYPE: Final = "event.type"
EVENT_PROVIDER: Final = "event.provider"  # the service that recorded the operation
EVENT_TYPE_AUDIT: Final = "gen_ai.auditing"
EVENT_TYPE_EVALUATION_RESULT: Final = "gen_ai.evaluation.result"
# The usage log record (usage_logs): content-free, one per LLM call. No convention names it.
EVENT_USAGE: Final = "genai_observe.usage"
GEN_AI_MODEL: Final = "gen_ai.model"  # AR-048: the audit view groups by it (response, else request model)
# Grail's names for the trace context of logs and events: links an event to its span.
TRACE_ID: Final = "trace_id"
SPAN_ID: Final = "span_id"
EVENT_START_TIME: Final = "start_time"  # RFC 3339, UTC
EVENT_END_TIME: Final = "end_time"
EVENT_DURATION_MS: Final = "duration_ms"
EVENT_STATUS: Final = "status"  # ok | error
STATUS_OK: Final = "ok"
STATUS_ERROR: Final = "error"
GEN_AI_EVALUATION_NAME: Final = "gen_ai.evaluation.name"
GEN_AI_EVALUATION_SCORE_VALUE: Final = "gen_ai.evaluation.score.value"
GEN_AI_EVALUATION_SCORE_LABEL: Final = "gen_ai.evaluation.score.label"
GEN_AI_EVALUATION_EXPLANATION: Final = "gen_ai.evaluation.explanation"  # content
GEN_AI_EVALUATION_METHOD: Final = "gen_ai.evaluation.method"
GEN_AI_EVALUATION_SCORING_FORMAT: Final = "gen_ai.evaluation.scoring_format"
GEN_AI_EVALUATION_TYPE: Final = "gen_ai.evaluation.type"
GEN_AI_EVALUATION_VERSION: Final = "gen_ai.evaluation.version"
GEN_AI_EVALUATION_SPEC_ID: Final = "gen_ai.evaluation.spec_id"
GEN_AI_EVALUATION_INPUT_QUESTION: Final = "gen_ai.evaluation.input.question"  # content
GEN_AI_EVALUATION_INPUT_ANSWER: Final = "gen_ai.evaluation.input.answer"  # content

# --- Scopes of the public step API (agents, conversations, the caller's attributes; _scopes.py)
# Namespaces a caller's own attribute (genai_observe.attributes({...})) may not use: they are the
# ones we write, and a caller's key must neither override one of ours nor pass for one.
RESERVED_PREFIXES: Final[tuple[str, ...]] = (
    "gen_ai.",
    "llm.",
    "traceloop.",
    "genai_observe.",
    "server.",
    "error.",
    "exception.",
    "otel.",
)
# The instrumentation scope of the step spans the public API makes.
STEPS_SCOPE: Final = "genai_observe.steps"

# --- Content in the primary form; the Azure completion verdict without an index (issue 15) ----
# The dynatrace profile writes gen_ai.input.messages / gen_ai.output.messages /
# gen_ai.system_instructions / gen_ai.tool.definitions (above) next to the flat gen_ai.prompt.N.*
# form. The AI Observability app's Azure guardrail cards read the completion's filter verdict
# under this unindexed name (AR-016), besides gen_ai.completion.N.content_filter_results.
GEN_AI_COMPLETION_CONTENT_FILTER_RESULTS: Final = "gen_ai.completion.content_filter_results"
FINISH_REASON_CONTENT_FILTER: Final = "content_filter"  # a choice Azure's filters ended
# Message roles that carry instructions in a chat history; the dynatrace profile also writes their
# content to gen_ai.system_instructions (AR-043; see Recorder._request_content).
ROLE_SYSTEM: Final = "system"
ROLE_DEVELOPER: Final = "developer"
