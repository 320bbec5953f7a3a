"""One FastAPI app serving the chat page, the embed demo and the JSON API.

    /            redirects to /chat/
    /chat/       the Gradio chat page (also the iframe target; gradio_client connects here)
    /chat/gradio.js  the installed Gradio's web-component script, for <gradio-app src=".../chat/">
    /assets/     Gradio's static frontend files (the web component preloads its CSS from here)
    /embed/      a demo newsroom article page with the chat in a sidebar (ui/embed/index.html)
    /api/ask, /api/ask/stream, /api/health   the JSON API (ui/api.py)

When settings.api_token is set, /api/* needs `Authorization: Bearer <token>`; the chat and embed
pages accept that header, a `?token=<token>` query parameter (for an iframe src) or the cookie that
a successful `?token=` sets, so the page's own follow-up requests are let in too. Missing
credentials get 401, wrong ones 403. CORS headers are sent only to settings.cors_origins.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import PlainTextResponse, RedirectResponse, Response  # noqa: E402
from fastapi.staticfiles import StaticFiles  # noqa: E402

from starlette.exceptions import HTTPException as StarletteHTTPException  # noqa: E402

from . import api, chat, edges  # noqa: E402

log = logging.getLogger(__name__)

CHAT_PATH = "/chat"
EMBED_PATH = "/embed"
EMBED_DIR = Path(__file__).resolve().parent / "embed"
TOKEN_COOKIE = "rag_token"
# Gradio's static bundle (the same files for every install): served without a token so that the
# web component on another site can load its code; the app's data and events are protected.
PUBLIC_CHAT_PREFIXES = ("/assets/", "/static/", "/svelte/", "/favicon.ico", "/theme.css", "/robots.txt",
                        "/manifest.json", "/pwa_icon", "/gradio.js")


class CORSPolicy:
    """CORS for the whole app, Gradio's routes included: only origins in `allowed` get
    Access-Control-* headers; for any other origin the response carries none (headers that inner
    layers, e.g. Gradio's own CORS handling, may add are removed)."""

    METHODS = "GET, POST, OPTIONS"
    HEADERS = "Authorization, Content-Type"

    def __init__(self, app: Any, allowed: list[str]) -> None:
        self.app = app
        self.allowed = {o.rstrip("/") for o in allowed}

    def _ok(self, origin: str | None) -> bool:
        return bool(origin) and (origin.rstrip("/") in self.allowed or "*" in self.allowed)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        allowed = self._ok(origin)
        if scope.get("method") == "OPTIONS" and "access-control-request-method" in headers:
            if not allowed:
                resp = PlainTextResponse("Disallowed CORS origin", status_code=400, headers={"Vary": "Origin"})
            else:
                # The Gradio web component sends its own headers (x-gradio-user, ...): allow what is asked.
                asked = headers.get("access-control-request-headers", "").strip()
                resp = Response(status_code=204, headers={
                    "Access-Control-Allow-Origin": origin, "Access-Control-Allow-Methods": self.METHODS,
                    "Access-Control-Allow-Headers": asked or self.HEADERS,
                    "Access-Control-Allow-Credentials": "true", "Access-Control-Max-Age": "600", "Vary": "Origin"})
            await resp(scope, receive, send)
            return

        async def send_with_cors(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                kept = [(k, v) for k, v in message.get("headers", [])
                        if not k.lower().startswith(b"access-control-") and k.lower() != b"vary"]
                vary = [v for k, v in message.get("headers", []) if k.lower() == b"vary"]
                values = {x.strip() for v in vary for x in v.decode("latin-1").split(",") if x.strip()}
                kept.append((b"vary", ", ".join(sorted(values | {"Origin"})).encode("latin-1")))
                if allowed:
                    kept += [(b"access-control-allow-origin", origin.encode("latin-1")),
                             (b"access-control-allow-credentials", b"true")]
                message["headers"] = kept
            await send(message)

        await self.app(scope, receive, send_with_cors)


class TokenAuth:
    """Pure ASGI middleware (keeps streaming responses streaming)."""

    def __init__(self, app: Any, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket") or not self.token:
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if path.startswith("/api/") or path == "/api":
            area = "api"
        elif path == CHAT_PATH or path.startswith(CHAT_PATH + "/"):
            area = "page"
            if path[len(CHAT_PATH):].startswith(PUBLIC_CHAT_PREFIXES):
                area = None
        elif path == EMBED_PATH or path.startswith(EMBED_PATH + "/"):
            area = "page"
        else:
            area = None
        if area is None or scope.get("method") == "OPTIONS":  # CORS preflights carry no credentials
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        offered, via_query = self._offered(headers, scope, pages=area == "page")
        if offered is None:
            await self._deny(scope, receive, send, 401, "missing credentials: send 'Authorization: Bearer <token>'"
                             + (" or open the page with ?token=<token>" if area == "page" else ""))
            return
        if not hmac.compare_digest(offered.encode(), self.token.encode()):
            await self._deny(scope, receive, send, 403, "invalid token")
            return
        if not via_query:
            await self.app(scope, receive, send)
            return
        secure = scope.get("scheme") in ("https", "wss")
        cookie = (f"{TOKEN_COOKIE}={self.token}; Path=/; HttpOnly; "
                  + ("SameSite=None; Secure" if secure else "SameSite=Lax"))

        async def send_with_cookie(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode("latin-1"))]
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    @staticmethod
    def _offered(headers: dict[str, str], scope: dict, *, pages: bool) -> tuple[str | None, bool]:
        auth = headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip(), False
        if not pages:
            return None, False
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if query.get("token"):
            return query["token"][0], True
        if "cookie" in headers:
            jar = SimpleCookie()
            try:
                jar.load(headers["cookie"])
            except Exception:  # a malformed cookie header is the same as none
                return None, False
            if TOKEN_COOKIE in jar:
                return jar[TOKEN_COOKIE].value, False
        return None, False

    async def _deny(self, scope: dict, receive: Any, send: Any, status: int, message: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
        body = json.dumps({"detail": message})
        resp = Response(body, status_code=status, media_type="application/json", headers=headers)
        await resp(scope, receive, send)


def _gradio_js() -> str:
    """The installed Gradio's web-component loader; its relative import resolves under /chat/assets/."""
    path = Path(gr.__file__).resolve().parent / "templates" / "frontend" / "gradio.js"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return f'import("https://gradio.s3-us-west-2.amazonaws.com/{gr.__version__}/gradio.js");\n'


def _api_docs(app: FastAPI) -> None:
    """/api/docs with Swagger UI served from this server (the files in fastapi-offline), never a CDN."""
    try:
        import fastapi_offline
    except ImportError:
        log.warning("fastapi-offline is not installed: no /api/docs page (the schema is at /api/openapi.json)")
        return
    from fastapi.openapi.docs import get_swagger_ui_html

    static = Path(fastapi_offline.__file__).resolve().parent / "static"
    app.mount("/api/docs-assets", StaticFiles(directory=static), name="api-docs-assets")

    @app.get("/api/docs", include_in_schema=False)
    def docs() -> Response:
        return get_swagger_ui_html(openapi_url="/api/openapi.json", title="Newsroom RAG API",
                                   swagger_js_url="/api/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/api/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/api/docs-assets/favicon.png")


def create_app(engine: Any, settings: Any) -> FastAPI:
    """The FastAPI app: JSON API, embed demo and the Gradio chat mounted at /chat."""
    app = FastAPI(title="Newsroom RAG", docs_url=None, openapi_url="/api/openapi.json", redoc_url=None)
    app.add_exception_handler(RequestValidationError, api.validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, api.http_error_handler)
    app.include_router(api.make_router(engine, settings))
    edges.redact_access_log()

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(CHAT_PATH + "/")

    @app.get(CHAT_PATH + "/gradio.js", include_in_schema=False)
    def gradio_js() -> PlainTextResponse:
        return PlainTextResponse(_gradio_js(), media_type="text/javascript")

    _api_docs(app)
    app.mount(EMBED_PATH, StaticFiles(directory=EMBED_DIR, html=True), name="embed")
    # The web component loaded from /chat/gradio.js preloads its stylesheet from /assets/ at the root.
    assets = Path(gr.__file__).resolve().parent / "templates" / "frontend" / "assets"
    if assets.is_dir():
        app.mount("/assets", StaticFiles(directory=assets), name="gradio-assets")

    # Middleware: the last added is the outermost. CORS wraps auth so that 401/403 answers still
    # carry CORS headers (for allowed origins) and preflights are answered before auth.
    app.add_middleware(TokenAuth, token=settings.api_token or None)
    app.add_middleware(CORSPolicy, allowed=list(settings.cors_origins))
    app.add_middleware(edges.BodyLimit, limit=settings.max_body_bytes)

    blocks = chat.build_chat(engine, settings)
    blocks.queue(default_concurrency_limit=4)
    gr.mount_gradio_app(
        app, blocks, path=CHAT_PATH, server_name=settings.host, server_port=settings.port,
        footer_links=["api"], run_history=False, ssr_mode=False, show_error=True, mcp_server=False,
        theme=chat.THEME, css=chat.CSS, head=chat.HEAD,
    )
    return app


def warm_up(engine: Any) -> None:
    """Load the index and models now rather than in the first visitor's question (best effort)."""
    try:
        engine.search("warm up", 1)
        generator = getattr(engine, "generator", None)
        load = getattr(generator, "load", None)
        if callable(load):
            load()
        log.info("engine warmed up")
    except Exception as exc:  # the first question will report the same problem to the user
        log.warning("warm-up failed: %s", exc)


def run(settings: Any, engine: Any = None, *, warm: bool = True, log_level: str = "info") -> None:
    """Serve on settings.host:settings.port (127.0.0.1:7860 by default) until interrupted.

    One Engine for the process (created from `settings` unless given), shared by every session.
    With `warm`, models load in a background thread while the server already answers."""
    import threading

    import uvicorn

    if engine is None:
        from rag.pipeline import Engine

        engine = Engine(settings)
    app = create_app(engine, settings)
    if warm:
        threading.Thread(target=warm_up, args=(engine,), name="rag-warm-up", daemon=True).start()
    print(f"chat:  http://{settings.host}:{settings.port}{CHAT_PATH}/\n"
          f"embed: http://{settings.host}:{settings.port}{EMBED_PATH}/\n"
          f"api:   http://{settings.host}:{settings.port}/api/docs", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=log_level, timeout_graceful_shutdown=3)
