"""The OpenTelemetry Resource: service identity plus Dynatrace host/process enrichment."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.resources import Resource

from .._core import semconv as sc
from .._core.diagnostics import report_internal_error
from .settings import Settings

# A OneAgent-monitored process can open this (virtual) file; its content is the path of a file
# holding the process's Dynatrace attributes. Outside OneAgent it does not exist.
DT_MAGIC_FILE = "dt_metadata_e617c525669e072eebe3d0f08212e8f2.json"
# Written by the Dynatrace Operator / host agent for Kubernetes pods and hosts.
DT_ENRICHMENT_FILES: tuple[str, ...] = (
    "/var/lib/dynatrace/enrichment/dt_metadata.json",
    "/var/lib/dynatrace/enrichment/dt_host_metadata.json",
)
_MAX_FILE_BYTES = 1 << 20


def _read_attributes(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read(_MAX_FILE_BYTES)
    except OSError:
        return {}
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return {}
        return (
            {str(k): v for k, v in data.items() if isinstance(v, (str, int, float, bool))}
            if isinstance(data, dict)
            else {}
        )
    # Older agents write key=value properties.
    result: dict[str, Any] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.lstrip().startswith("#"):
            result[key.strip()] = value.strip()
    return result


def dynatrace_enrichment(
    magic_file: str | None = None, files: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """Attributes from the Dynatrace enrichment files that exist; empty when none do."""
    attributes: dict[str, Any] = {}
    try:
        for path in files if files is not None else DT_ENRICHMENT_FILES:
            attributes.update(_read_attributes(path))
        try:
            with open(magic_file or DT_MAGIC_FILE, encoding="utf-8") as fh:
                target = fh.read(4096).strip()
        except OSError:
            target = ""
        if target:
            attributes.update(_read_attributes(target))
    except Exception as exc:  # enrichment is a bonus; never a reason to fail init()
        report_internal_error("resource.enrichment", exc)
    return attributes


class _Resource(Resource):
    """A Resource that computes its hash once.

    The OTLP encoders group every exported span, point and log record by resource, and the SDK's
    ``Resource.__hash__`` JSON-encodes all attributes each time (9.5 us of a 269 us span encoding
    on the benchmark machine, more with Dynatrace enrichment). A resource is immutable, so its
    hash can be kept.
    """

    _hash: int | None = None

    def __hash__(self) -> int:
        value = self._hash
        if value is None:
            value = self._hash = super().__hash__()
        return value


def build_resource(settings: Settings, enrichment: Mapping[str, Any] | None = None) -> Resource:
    attributes: dict[str, Any] = dict(enrichment if enrichment is not None else dynatrace_enrichment())
    attributes.update(settings.resource_attributes)
    if settings.service_name:
        attributes[sc.SERVICE_NAME] = settings.service_name
    if settings.service_version:
        attributes[sc.SERVICE_VERSION] = settings.service_version
    if settings.deployment_environment:
        attributes[sc.DEPLOYMENT_ENVIRONMENT_NAME] = settings.deployment_environment
    # Resource.create adds telemetry.sdk.* and the OTEL_RESOURCE_ATTRIBUTES/OTEL_SERVICE_NAME
    # detectors; the attributes given here win over the detectors.
    created = Resource.create(attributes)
    return _Resource(created.attributes, created.schema_url)
