"""Credential masking at the length cap: its cost is bounded by the cap, and a credential cut in
two by the cap is masked whole (issue 13, items 4 and 5).

The large-text case runs the real OpenAI SDK against the rig; the straddle cases put every
credential shape masking knows at every offset across the cut, in captured content (the cap) and
in exception messages (cut at 512 characters), the latter also through a real provider error.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from genai_observe._core import content as _content
from genai_observe._core.content import CUT_MARGIN, REDACTED, TRUNCATED_MARK, ContentPolicy
from genai_observe._core.errors import record_error
from genai_observe._core.modes import CaptureMode
from tests.conftest import Telemetry

from ._providers import instrumented, llm_spans, openai_client

# One credential of each shape _content._CREDENTIALS recognises, with characters (upper case,
# digits) that the filler around it never contains.
CREDENTIALS = {
    "openai": "sk-proj-QWERTY0123456789ASDFGHJKL0123456789ZXCVBNM",
    "anthropic": "sk-ant-api03-QWERTYUIOP0123456789ASDFGHJKL0123456789",
    "aws-key-id": "AKIAQWERTY0123456789",
    "aws-secret": "aws_secret_access_key = QWERTYUIOP0123456789ASDFGHJKL0123456789ZX",
    "dynatrace": "dt0c01.QWERTYUIOP0123456789ASDF."
    + "GHJKL0123456789ZXCVBNM0123456789QWERTYUIOP0123456789ASDFGHJKL0123",
    "bearer": "Bearer QWERTYUIOP0123456789ASDFGHJKL",
    "api-token": "Api-Token QWERTYUIOP0123456789ASDFGHJKL",
    "github": "ghp_QWERTYUIOP0123456789ASDFGHJKL0123456789",
    "google": "AIzaQWERTYUIOP0123456789ASDFGHJKL012345",
    "slack": "xoxb-QWERTYUIOP0123456789",
    "nvidia": "nvapi-QWERTYUIOP0123456789ASDFGHJKL",
}
FILLER = "abc "  # lower case letters and spaces: no credential character run of 3 or more


def leaked(exported: str, credential: str) -> list[str]:
    """Runs of 3+ characters of ``credential`` left in ``exported`` once the placeholders are out.

    The criterion: the filler never holds 3 consecutive characters of any credential (it has no
    upper case or digits, and its words are shorter), so any such run is a fragment of the secret.
    """
    rest = exported.replace(REDACTED, " ").replace(TRUNCATED_MARK, " ")
    return [credential[i : i + 3] for i in range(len(credential) - 2) if credential[i : i + 3] in rest]


def straddling(credential: str, limit: int, offset: int) -> str:
    """Filler with ``credential`` starting ``offset`` characters before position ``limit``."""
    head = (FILLER * (limit // len(FILLER) + 2))[: limit - offset - 1] + " "
    return head + credential + " " + FILLER * 10


@pytest.mark.parametrize("name", CREDENTIALS)
def test_credential_straddling_the_content_cap_is_masked(name: str) -> None:
    credential = CREDENTIALS[name]
    policy = ContentPolicy(max_length=64)
    for offset in range(len(credential) + 1):
        text = straddling(credential, 64, offset)
        exported = policy.text(text)
        assert exported.endswith(TRUNCATED_MARK)
        assert len(exported) <= 64 + len(TRUNCATED_MARK)
        assert leaked(exported, credential) == [], (name, offset, exported)


@pytest.mark.parametrize("name", CREDENTIALS)
def test_credential_straddling_the_message_cut_is_masked(name: str, telemetry: Telemetry) -> None:
    """The exception message is cut at 512 characters; with content on it is exported masked."""
    credential = CREDENTIALS[name]
    tracer = telemetry.tracer_provider.get_tracer("t")
    for offset in range(len(credential) + 1):
        span = tracer.start_span("s")
        record_error(span, RuntimeError(straddling(credential, 512, offset)), content=True)
        span.end()
    for span in telemetry.spans():
        event = span.events[0].attributes or {}
        for exported in (event["exception.message"], event["exception.stacktrace"], span.status.description):
            assert leaked(str(exported), credential) == [], (name, exported)


@pytest.mark.parametrize("offset", [1, 4, 15, 32, 49, 63, 80, 96])
def test_dynatrace_token_in_a_provider_error_is_not_cut_into_a_fragment(
    offset: int, telemetry: Telemetry, openai_server: Any
) -> None:
    """The probe's case: an OpenAI 400 whose message holds a token across the 512th character."""
    import openai

    token = CREDENTIALS["dynatrace"]
    client = openai_client(openai_server)
    probe = "PROBE"
    openai_server.script_error(400, probe)
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    start = str(raised.value).index(probe)  # where the SDK puts the server's message
    openai_server.script_error(400, straddling(token, 512 - start, offset))
    with (
        instrumented(telemetry, "openai", capture=CaptureMode.SPAN_ONLY),
        pytest.raises(openai.BadRequestError),
    ):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    (span,) = llm_spans(telemetry)
    event = next(e for e in span.events if e.name == "exception").attributes or {}
    assert event["exception.message"].endswith(TRUNCATED_MARK)
    for exported in (event["exception.message"], event["exception.stacktrace"], span.status.description):
        assert leaked(str(exported), token) == [], exported


class _CountingPattern:
    """Stands in for the credential pattern and counts the characters each use scans."""

    def __init__(self, pattern: re.Pattern[str], sizes: list[int]) -> None:
        self._pattern = pattern
        self._sizes = sizes

    def sub(self, repl: str, text: str) -> str:
        self._sizes.append(len(text))
        return self._pattern.sub(repl, text)

    def finditer(self, text: str) -> Any:
        self._sizes.append(len(text))
        return self._pattern.finditer(text)


def test_masking_cost_is_bounded_by_the_cap(
    telemetry: Telemetry, openai_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """4 million characters of prompt and of answer: masking scans at most cap + margin of each.

    Cost is asserted as characters scanned (by the pattern and by the literal pre-check), not
    wall time; before the fix each text was scanned whole on the caller's thread (2.4 s here)."""
    size = 4_000_000
    secret = CREDENTIALS["openai"]
    prompt = secret + " " + "p" * size + " " + secret  # literals at both ends: the full scan runs
    answer = secret + " " + "a" * size + " " + secret
    scanned: list[int] = []
    checked: list[int] = []
    monkeypatch.setattr(_content, "_CREDENTIALS", _CountingPattern(_content._CREDENTIALS, scanned))
    real_check = _content._may_hold_credentials

    def counting_check(text: str) -> bool:
        checked.append(len(text))
        return real_check(text)

    monkeypatch.setattr(_content, "_may_hold_credentials", counting_check)
    openai_server.script(endpoint="chat.completions", content=answer)
    client = openai_client(openai_server)
    with instrumented(telemetry, "openai", capture=CaptureMode.SPAN_ONLY):
        result = client.chat.completions.create(model="m", messages=[{"role": "user", "content": prompt}])
    assert result.choices[0].message.content == answer  # the caller's data is untouched
    (span,) = llm_spans(telemetry)
    attributes = dict(span.attributes or {})
    cap = ContentPolicy().max_length
    for key in ("gen_ai.prompt.0.content", "gen_ai.completion.0.content"):
        value = attributes[key]
        assert value.startswith(REDACTED) and value.endswith(TRUNCATED_MARK)
        assert secret not in value and len(value) <= cap + len(TRUNCATED_MARK)
    assert scanned and checked
    assert max(scanned + checked) <= cap + CUT_MARGIN
    assert sum(scanned) + sum(checked) <= 8 * (cap + CUT_MARGIN)
