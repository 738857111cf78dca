"""The architecture's rules, checked on the source (docs/architecture.md): provider code reads its
SDK and never creates telemetry; every attribute and metric name lives in the semantic-conventions
module."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import genai_observe

PACKAGE = Path(genai_observe.__file__).parent
SEMCONV = PACKAGE / "_core" / "semconv.py"
# The OpenTelemetry API calls that create telemetry (or the objects that do).
CREATES_TELEMETRY = frozenset(
    {
        "get_tracer",
        "start_span",
        "start_as_current_span",
        "get_meter",
        "create_counter",
        "create_up_down_counter",
        "create_histogram",
        "create_gauge",
        "create_observable_counter",
        "create_observable_gauge",
        "create_observable_up_down_counter",
        "get_logger",
        "emit",
        "record_exception",
    }
)
# Modules provider code never imports: the SDK, and the metrics and logs APIs (the tracing API is
# read for context only: the current span, a non-recording span carrying our context).
FORBIDDEN_IMPORTS = ("opentelemetry.sdk", "opentelemetry.metrics", "opentelemetry._logs")
# Attribute namespaces of the conventions we emit; a literal like "gen_ai.request.model" anywhere
# but the semantic-conventions module is a second place for a name.
NAME = re.compile(
    r"^(?:gen_ai|llm|server|error|exception|service|telemetry|deployment|traceloop|aws\.bedrock|"
    r"azure|ollama\.response|openai\.(?:request|response|api)|genai_observe\.(?!instrumentation\.)[a-z_]+)"
    r"\.[a-z0-9_.]+$"
)


def _sources(under: Path) -> list[Path]:
    return sorted(p for p in under.rglob("*.py") if p != SEMCONV)


@pytest.mark.parametrize(
    "path", _sources(PACKAGE / "instrumentation"), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_provider_code_creates_no_telemetry(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    calls = [
        f"{path.name}:{node.lineno} {node.func.attr}()"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in CREATES_TELEMETRY
    ]
    imports = [
        f"{path.name}:{node.lineno} {name}"
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for name in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""])
        if name.startswith(FORBIDDEN_IMPORTS)
    ]
    assert not calls, "provider code hands records to the core instead: " + ", ".join(calls)
    assert not imports, "provider code imports telemetry APIs: " + ", ".join(imports)


def test_names_live_in_the_semantic_conventions_module() -> None:
    found = []
    for path in _sources(PACKAGE):
        tree = ast.parse(path.read_text(), str(path))
        # Context keys are names of ours in the OpenTelemetry context, not telemetry attributes.
        keys = {
            id(arg)
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "create_key"
            for arg in node.args
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and NAME.match(node.value)
                and id(node) not in keys
            ):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.value!r}")
    assert not found, "\n".join(found)


# What each layer may import from the others: the core knows nothing of the pipeline, zero-code or
# provider code; provider code may use the core (option parsing included: _core/config.py); the
# pipeline loads instrumentations through the registry; zero-code sits on top.
LAYERS = {
    "_core": {"_core"},
    "instrumentation": {"_core", "instrumentation"},
    "_pipeline": {"_core", "_pipeline", "instrumentation"},
    "_zerocode": {"_core", "_pipeline", "instrumentation", "_zerocode"},
}


def _imported_packages(path: Path) -> set[str]:
    """The genai_observe sub-packages ``path`` imports (relative or absolute imports)."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module.removesuffix(".__init__")
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [f"{target}.{alias.name}" for alias in node.names] if not node.module else [target]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "genai_observe" and len(parts) > 1 and parts[1] in LAYERS:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_layers_import_only_what_they_may(layer: str) -> None:
    wrong = {
        f"{path.relative_to(PACKAGE)} imports {sorted(packages - LAYERS[layer])}"
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        if (packages := _imported_packages(path)) - LAYERS[layer]
    }
    assert not wrong, sorted(wrong)
