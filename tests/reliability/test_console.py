"""Console mode never lets a provider's string act on the terminal (issue 13, item 11).

A model name (or error code) comes from the network: with ANSI escapes it recoloured the terminal,
with a newline it forged a log line of its own. The real OpenAI and Anthropic SDKs answer with
such names from the rig servers; stderr must show them escaped, one line per operation.
"""

from __future__ import annotations

from typing import Any

import pytest

import genai_observe

from ._providers import ANTHROPIC_MODEL, anthropic_client, openai_client

HOSTILE = "gpt\x1b[31m-red\r\nFAKE LINE genai-observe: chat forged [openai]\u202e"


def test_console_escapes_provider_strings(
    capfd: pytest.CaptureFixture[str], openai_server: Any, anthropic_server: Any
) -> None:
    handle = genai_observe.init()  # no endpoint: one line per operation on stderr
    openai_server.script(endpoint="chat.completions", model=HOSTILE)
    openai_client(openai_server).chat.completions.create(
        model=HOSTILE, messages=[{"role": "user", "content": "hi"}]
    )
    anthropic_server.script(model=HOSTILE)
    anthropic_client(anthropic_server).messages.create(
        model=ANTHROPIC_MODEL, max_tokens=5, messages=[{"role": "user", "content": "hi"}]
    )
    handle.shutdown()
    err = capfd.readouterr().err
    assert "\x1b" not in err and "\r" not in err and "\u202e" not in err
    lines = [line for line in err.splitlines() if "FAKE LINE" in line or line.startswith("genai-observe:")]
    assert len(lines) == 2, lines  # one per operation, nothing forged
    for line in lines:
        assert line.startswith(
            "genai-observe: chat gpt\\x1b[31m-red\\r\\nFAKE LINE genai-observe: chat forged"
        )
        assert "\\u202e" in line
