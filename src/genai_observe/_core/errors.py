"""What a failed operation says: ``error.type``, and the exception event and status, whose text is
content (provider errors quote prompts and answers) and is exported only with content capture on."""

from __future__ import annotations

import re
import traceback
from typing import Any, Final

from opentelemetry.trace import Span, Status, StatusCode

from . import semconv as sc
from .content import TRUNCATED_MARK, mask_cut
from .diagnostics import report_internal_error


def error_type_of(exc: BaseException) -> str:
    """error.type: the service's error code when the exception carries one (botocore's
    ``response["Error"]["Code"]``, e.g. ``ThrottlingException`` or a mid-stream
    ``modelStreamErrorException``), else the exception's class name. Both are low-cardinality."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error")
        code = error.get("Code") if isinstance(error, dict) else None
        if isinstance(code, str) and code and len(code) <= 64:
            return code
    return type(exc).__name__


# exception.message and the status description are cut here; each message line of
# exception.stacktrace at _STACK_MESSAGE_MAX (masked the same way), so neither grows with the error.
_MESSAGE_MAX: Final = 512
_STACK_MESSAGE_MAX: Final = 4096
_MAX_CHAIN: Final = 16
_CAUSE: Final = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT: Final = "\nDuring handling of the above exception, another exception occurred:\n\n"
# A provider's error code is exported only when it looks like one (an identifier), never free text.
_ERROR_CODE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_.:\-]{0,63}\Z")


def record_error(span: Span, exc: BaseException, *, content: bool) -> None:
    """The ``exception`` event and ERROR status of a failed operation.

    Provider errors quote the request or the answer (a 400 echoing the prompt, a pydantic error
    showing the completion), so their text is content: with ``content`` False (content capture not
    on spans) the message is replaced by what carries none, the HTTP status and the provider's
    error code, and the stack trace keeps its frames without the message lines. With ``content``
    the message is credential-masked and cut. The event is written here rather than by the SDK's
    ``record_exception``, which would format the whole raw message before we replace it.
    """
    cls = type(exc)
    module = cls.__module__
    qualname = cls.__qualname__
    full_name = f"{module}.{qualname}" if module and module != "builtins" else qualname  # as the SDK
    message = _message(exc) if content else error_summary(exc)
    attributes: dict[str, Any] = {sc.EXCEPTION_TYPE: full_name}
    if message:
        attributes[sc.EXCEPTION_MESSAGE] = message
    attributes[sc.EXCEPTION_STACKTRACE] = _stacktrace(exc, content)
    attributes[sc.EXCEPTION_ESCAPED] = "False"
    span.add_event(sc.EXCEPTION_EVENT, attributes)
    name = cls.__name__
    span.set_status(Status(StatusCode.ERROR, f"{name}: {message}" if message else name))


def error_summary(exc: BaseException) -> str:
    """What an exception says without content: ``"HTTP 400 invalid_request_error"``, or ""."""
    parts: list[str] = []
    try:
        status = getattr(exc, "status_code", None)  # openai, anthropic, ollama
        response = getattr(exc, "response", None)
        code: Any = None
        if isinstance(response, dict):  # botocore ClientError
            if status is None:
                meta = response.get("ResponseMetadata")
                status = meta.get("HTTPStatusCode") if isinstance(meta, dict) else None
            error = response.get("Error")
            code = error.get("Code") if isinstance(error, dict) else None
        elif status is None and response is not None:  # httpx.HTTPStatusError and the like
            status = getattr(response, "status_code", None)
        for candidate in (getattr(exc, "code", None), getattr(exc, "type", None)):  # openai
            if code is None and isinstance(candidate, str):
                code = candidate
        body = getattr(exc, "body", None)  # anthropic: {"error": {"type": ...}}
        if code is None and isinstance(body, dict) and isinstance(body.get("error"), dict):
            code = body["error"].get("type")
        if isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599:
            parts.append(f"HTTP {status}")
        if isinstance(code, str) and _ERROR_CODE.match(code):
            parts.append(code)
    except Exception as err:
        report_internal_error("recorder.error_summary", err)
    return " ".join(parts)


def _exc_text(exc: BaseException, limit: int) -> str:
    try:
        text = str(exc)
    except Exception:
        text = ""
    text, cut = mask_cut(text, limit)
    return text + TRUNCATED_MARK if cut else text


def _message(exc: BaseException) -> str:
    return _exc_text(exc, _MESSAGE_MAX)


def _stacktrace(exc: BaseException, content: bool) -> str:
    """The traceback as Python prints it (chained exceptions included), except each exception's
    line: its message masked and cut, or, without content, only its type and :func:`error_summary`."""
    chain: list[tuple[BaseException, str | None]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    link: str | None = None
    while current is not None and id(current) not in seen and len(chain) < _MAX_CHAIN:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, _CONTEXT
        else:
            current = None
    lines: list[str] = []
    for item, relation in reversed(chain):
        if item.__traceback__ is not None:
            lines.append("Traceback (most recent call last):\n")
            lines.extend(traceback.format_list(traceback.extract_tb(item.__traceback__)))
        cls = type(item)
        name = cls.__qualname__
        if cls.__module__ not in ("builtins", "__main__"):
            name = f"{cls.__module__}.{name}"
        text = _exc_text(item, _STACK_MESSAGE_MAX) if content else error_summary(item)
        lines.append(f"{name}: {text}\n" if text else f"{name}\n")
        if relation is not None:
            lines.append(relation)
    return "".join(lines)
