"""Credential masking: the literal pre-check must never let a credential through."""

from __future__ import annotations

import random
import string

import pytest

from genai_observe._core.content import _CREDENTIALS, REDACTED, ContentPolicy, mask_credentials

SECRETS = [
    "sk-proj-" + "A1b2C3d4" * 4,
    "sk-ant-" + "x" * 30,
    "AKIA" + "ABCDEFGHIJ123456",
    "aws_secret_access_key = " + "a/B+" * 10,
    "AWS_SECRET_ACCESS_KEY: " + "Z" * 40,
    "dt0c01.ABCDEFGH." + "A" * 24,
    "Bearer abcdefgh12345678",
    "authorization: BEARER abcdefgh12345678",
    "Api-Token abcdefgh.ijkl",
    "ghp_" + "a" * 36,
    "AIza" + "b" * 35,
    "xoxb-1234567890-abc",
    "nvapi-" + "c" * 30,
    # Letters re.IGNORECASE equates with ASCII ones but str.lower() leaves alone.
    "ap\u0131-token abcdefgh.ijkl",
    "ap\u0130-token abcdefgh.ijkl",
    "aws_\u017fecret_access_key=" + "q" * 40,
    "aws_secret_access_\u212aey=" + "q" * 40,
]


@pytest.mark.parametrize("secret", SECRETS)
def test_every_credential_shape_is_masked_inside_text(secret: str) -> None:
    text = f"Here is my config: {secret} — please keep it safe."
    assert _CREDENTIALS.search(text) is not None  # the shape really is one the pattern knows
    masked = mask_credentials(text)
    assert masked == _CREDENTIALS.sub(REDACTED, text) and REDACTED in masked
    assert ContentPolicy().text(text) == masked


def test_masking_agrees_with_the_full_scan_on_random_text() -> None:
    rng = random.Random(8)
    pieces = [
        *SECRETS,
        "sk-",
        "risk-free",
        "AKIA",
        "dt0",
        "gho_",
        "xox",
        "Bearer",
        "\u0131",
        "\u017f",
        "é",
        "—",
    ]
    alphabet = string.ascii_letters + string.digits + " _-.=:/+"
    for _ in range(3000):
        parts = [
            rng.choice(pieces) if rng.random() < 0.3 else "".join(rng.choices(alphabet, k=rng.randint(0, 30)))
            for _ in range(rng.randint(1, 6))
        ]
        text = "".join(parts)
        assert mask_credentials(text) == _CREDENTIALS.sub(REDACTED, text), text


def test_ordinary_text_is_returned_as_is() -> None:
    text = "Héllo! How can I help you today? " * 200
    assert mask_credentials(text) is text
