"""Replay of recorded provider traffic (vcrpy cassettes in ../shared/recorded) over real HTTP.

The cassettes stay where they are; tests that use them skip when ``shared/`` is absent. A test
picks an interaction, points the real SDK at :class:`ReplayServer`, re-sends the recorded request
through the instrumented SDK method, and compares the span with the recorded response.
"""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

SHARED = Path(__file__).resolve().parents[3] / "shared"
RECORDED = SHARED / "recorded" / "openllmetry"


@dataclass
class Interaction:
    cassette: Path
    index: int
    method: str
    uri: str
    request_body: bytes
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.uri).path

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.uri).query).items()}

    @property
    def host(self) -> str:
        return urlsplit(self.uri).hostname or ""

    def request_json(self) -> Any:
        try:
            return json.loads(self.request_body or b"null")
        except ValueError:
            return None

    def response_json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def is_sse(self) -> bool:
        return "text/event-stream" in self.headers.get("content-type", "") or self.body.lstrip().startswith(
            (b"data:", b"event:")
        )

    def sse_events(self) -> Iterator[tuple[str | None, Any]]:
        """(event name, parsed data) for each SSE event; ``[DONE]`` is skipped."""
        text = self.body.decode("utf-8", "replace")
        for block in text.replace("\r\n", "\n").split("\n\n"):
            name: str | None = None
            data: list[str] = []
            for line in block.split("\n"):
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
            if not data or data == ["[DONE]"]:
                continue
            try:
                yield name, json.loads("\n".join(data))
            except ValueError:
                continue

    def label(self) -> str:
        return f"{self.cassette.parent.name}/{self.cassette.stem}#{self.index}"


def _as_bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, dict):  # vcrpy: {"string": ...}
        return _as_bytes(value.get("string"))
    return str(value).encode()


def _decode(body: bytes, encoding: str) -> bytes:
    try:
        if "gzip" in encoding or body[:2] == b"\x1f\x8b":
            return gzip.decompress(body)
        if "deflate" in encoding:
            return zlib.decompress(body)
    except (OSError, zlib.error):
        return body
    return body


def load(cassette: Path) -> list[Interaction]:
    data = yaml.safe_load(cassette.read_text(encoding="utf-8")) or {}
    out: list[Interaction] = []
    for index, item in enumerate(data.get("interactions") or []):
        request, response = item.get("request") or {}, item.get("response") or {}
        headers = {
            str(k).lower(): (v[0] if isinstance(v, list) and v else str(v))
            for k, v in (response.get("headers") or {}).items()
        }
        body = _decode(_as_bytes(response.get("body")), headers.get("content-encoding", ""))
        out.append(
            Interaction(
                cassette=cassette,
                index=index,
                method=str(request.get("method", "GET")).upper(),
                uri=str(request.get("uri", "")),
                request_body=_as_bytes(request.get("body")),
                status=int((response.get("status") or {}).get("code", 200)),
                headers=headers,
                body=body,
            )
        )
    return out


def interactions(provider: str, path_suffixes: tuple[str, ...], method: str = "POST") -> list[Interaction]:
    """Every recorded interaction of ``provider`` whose URL path ends with one of the suffixes."""
    root = RECORDED / provider
    if not root.is_dir():
        return []
    found = []
    for cassette in sorted(root.rglob("*.yaml")):
        for interaction in load(cassette):
            if interaction.method == method and interaction.path.endswith(path_suffixes):
                found.append(interaction)
    return found


@dataclass
class ReplayServer:
    """Answers every request with the current interaction's recorded response."""

    current: Interaction | None = None
    requests: list[tuple[str, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        replay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                replay.requests.append((self.path, body))
                interaction = replay.current
                if interaction is None:
                    self.send_error(500, "no interaction selected")
                    return
                self.send_response(interaction.status)
                content_type = interaction.headers.get("content-type", "application/json")
                self.send_header("content-type", content_type)
                for name in ("retry-after", "x-request-id", "apim-request-id"):
                    if name in interaction.headers:
                        self.send_header(name, interaction.headers[name])
                self.send_header("content-length", str(len(interaction.body)))
                self.end_headers()
                self.wfile.write(interaction.body)

            do_GET = do_POST

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
