"""What every request passes before the app: a body-size limit, security headers, access logs
without secrets, and the reading of its bearer token (for ui.server.TokenAuth and the MCP endpoint).

Pure ASGI middleware, so streamed responses stay streamed.
"""

from __future__ import annotations

import hmac
import json
import logging
from http.cookies import SimpleCookie
from typing import Any

MISSING_BEARER = "missing credentials: send 'Authorization: Bearer <token>'"


def headers_of(scope: dict) -> dict[str, str]:
    """A request's headers, names in lower case (a repeated header keeps its last value)."""
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def bearer(headers: dict[str, str]) -> str | None:
    """The credential of an `Authorization: Bearer <credential>` header; None when there is none."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def cookie(headers: dict[str, str], name: str) -> str | None:
    """A cookie's value from the Cookie header; a malformed header is the same as none."""
    if "cookie" not in headers:
        return None
    jar = SimpleCookie()
    try:
        jar.load(headers["cookie"])
    except Exception:
        return None
    return jar[name].value if name in jar else None


def is_token(given: str, token: str) -> bool:
    """Whether `given` is `token`, compared in constant time."""
    return hmac.compare_digest(given.encode(), token.encode())


class BodyLimit:
    """413 for a request body over `limit` bytes, before the app reads it.

    A declared Content-Length is checked up front; a chunked body is counted as it arrives and cut
    off at the limit (the app never sees more than `limit` bytes of it)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = None
        for k, v in scope.get("headers", []):
            if k.lower() == b"content-length":
                try:
                    length = int(v)
                except ValueError:
                    await self._reject(send, "the Content-Length header is not a number", 400)
                    return
        if length is not None and length > self.limit:
            await self._reject(send, self._too_big(length))
            return
        if length is not None:
            await self.app(scope, receive, send)
            return
        # No length given (chunked): read up to the limit here, then replay it to the app.
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                await self._reject(send, self._too_big(None))
                return
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_big(self, length: int | None) -> str:
        size = f"{length} bytes" if length is not None else "larger than the limit"
        return f"the request body is {size}; the limit is {self.limit} bytes (RAG_MAX_BODY_BYTES)"

    @staticmethod
    async def _reject(send: Any, message: str, status: int = 413) -> None:
        body = json.dumps({"message": message, "detail": message}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class RedactQuery(logging.Filter):
    """Drop query strings (they may carry tokens) from uvicorn's access log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], args[2].split("?", 1)[0] + "?[redacted]", *args[3:])
        return True


def redact_access_log() -> None:
    """Install RedactQuery on uvicorn's access logger (once per process)."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactQuery) for f in logger.filters):
        logger.addFilter(RedactQuery())


class SecurityHeaders:
    """Headers every response gets: who may frame the pages, no MIME sniffing, no URL in Referer.

    The CSP is what Gradio's frontend needs (its inline bootstrap script and styles, data: and
    blob: images, fetches and websockets to this server) and nothing else."""

    def __init__(self, app: Any, frame_origins: list[str]) -> None:
        self.app = app
        ancestors = " ".join(["'self'", *(o.rstrip("/") for o in frame_origins)])
        # 'unsafe-eval': Gradio 6's gr.HTML evaluates its templates as JavaScript ("Error rendering HTML" without it).
        csp = ("default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data: blob:; font-src 'self' data:; media-src 'self' blob: data:; "
               "connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'self'; "
               f"form-action 'self'; frame-ancestors {ancestors}")
        self.headers = [(b"content-security-policy", csp.encode("latin-1")),
                        (b"x-content-type-options", b"nosniff"),
                        (b"referrer-policy", b"same-origin")]
        if not frame_origins:
            self.headers.append((b"x-frame-options", b"SAMEORIGIN"))  # for browsers without CSP 3

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                names = {h.lower() for h, _ in self.headers}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] = kept + self.headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
