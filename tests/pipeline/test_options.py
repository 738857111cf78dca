"""The option table is the one declaration: init()'s keywords and the docs table follow it."""

from __future__ import annotations

import inspect
from pathlib import Path

import genai_observe
from genai_observe._pipeline import options
from genai_observe._pipeline.settings import Settings, load_settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_init_takes_exactly_the_tables_arguments() -> None:
    parameters = inspect.signature(genai_observe.init).parameters
    assert set(parameters) == set(options.ARGUMENTS)
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is None for p in parameters.values())


def test_every_option_reaches_settings_or_is_an_alias() -> None:
    # A row without a Settings field (or an alias target) would be accepted and then ignored.
    fields = set(Settings.__dataclass_fields__)
    read_elsewhere = {  # options that become other fields
        "traces_endpoint": "endpoints",
        "metrics_endpoint": "endpoints",
        "logs_endpoint": "endpoints",
        "endpoint": "endpoints",
        "api_token": "token",
        "compression": "compression",
        "disabled_instrumentations": "instrumentations",
        "allow_insecure_token": "",  # a check only
        "bizevents_endpoint": "bizevents_url",
        "capture_content": "capture",
        "headers": "headers",
        "resource_attributes": "resource_attributes",
    }
    for option in options.OPTIONS:
        if not option.name or option.alias_of:
            assert not option.alias_of or option.alias_of in options.BY_NAME
            continue
        target = read_elsewhere.get(option.name, option.name)
        assert target == "" or target in fields, option.name


def test_docs_table_is_the_generated_one() -> None:
    text = DOCS.read_text()
    start = text.index("| `init()` argument |")
    end = text.index("<!-- end of options table -->")
    assert text[start:end] == options.markdown_table(), (
        "docs/configuration.md differs from the option table: regenerate it with "
        "python -m genai_observe._pipeline.options"
    )


def test_an_unknown_keyword_is_a_type_error() -> None:
    try:
        load_settings(servce_name="x")
    except TypeError as exc:
        assert "servce_name" in str(exc)
    else:
        raise AssertionError("accepted an unknown keyword")
