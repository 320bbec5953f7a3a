"""One FastAPI app serving the chat page, the embed demo and the JSON API.

    /            redirects to /chat/
    /chat/       the Gradio chat page (also the iframe target; gradio_client connects here)
    /chat/gradio.js  the installed Gradio's web-component script, for <gradio-app src=".../chat/">
    /assets/     Gradio's static frontend files (the web component preloads its CSS from here)
    /embed/      a demo newsroom article page with the chat in a sidebar (ui/embed/index.html)
    /api/ask, /api/ask/stream, /api/health   the JSON API (ui/api.py)
    /api/docs, /api/docs-assets/   Swagger UI served from local files (fastapi-offline)
    /v1/models, /v1/chat/completions   the OpenAI-compatible endpoint (ui/openai_api.py)
    /metrics     Prometheus metrics in the text format (ui/metrics.py)

/api/ask and /v1 answer through one line of workers (ui/answering.py, admission control: ui/admission.py).
    /widget.js   the script-tag chat widget (ui/widget.py)

When settings.api_token is set, /api/*, /v1/* and /metrics need `Authorization: Bearer <token>`; the chat and
embed pages accept that header or a session cookie from a short-lived embed token (`?embed=<token>`,
see ui/embedauth.py). Missing credentials get 401, wrong ones 403. CORS headers are sent only to
settings.cors_origins, which are also the only other origins allowed to frame the pages
(Content-Security-Policy frame-ancestors, ui/edges.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import gradio as gr
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.config import Settings
from rag.records import PUBLIC

from . import api, chat, edges, embedauth, openai_api, widget
from .answering import Answering, Limits
from .engine import EngineLike, open_engine, warm_up_in_background
from .metrics import Metrics, RequestMetrics
from .principals import SCOPE_KEY, Principals

log = logging.getLogger(__name__)

CHAT_PATH = "/chat"
EMBED_PATH = "/embed"
EMBED_DIR = Path(__file__).resolve().parent / "embed"
API_PREFIXES = ("/api", "/v1", "/metrics")  # bearer token only (no query token or cookie)
ASK_PATHS = ("/api/ask", "/api/ask/stream")  # what an embed token may call (the widget)
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
        headers = edges.headers_of(scope)
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
    """Credentials for the API and the pages (pure ASGI middleware: streams stay streams), and the
    principal they make (ui/principals.py), left in the request's scope for the endpoints.

    API: `Authorization: Bearer <token>` (RAG_API_TOKEN or a token of RAG_ACCESS_FILE). Pages (the
    chat, the embed demo): the same header (gradio_client), or a session cookie got by opening the
    page with `?embed=<embed token>` (ui/embedauth.py); the exchange redirects to the page without
    the token. API tokens are never accepted from a URL or a cookie, so they have no reason to reach
    a browser. Without RAG_API_TOKEN, a request with no credentials is the public principal."""

    def __init__(self, app: Any, principals: Principals, *, session_ttl_s: int = 8 * 3600,
                 on_deny: Callable[[str], None] | None = None) -> None:
        self.app = app
        self.principals = principals
        self.session_ttl_s = session_ttl_s
        self.on_deny = on_deny

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        scope[SCOPE_KEY] = PUBLIC
        path: str = scope.get("path", "")
        if any(path == p or path.startswith(p + "/") for p in API_PREFIXES):
            area = "api"
        elif path == CHAT_PATH or path.startswith(CHAT_PATH + "/"):
            area = "page"
            if path[len(CHAT_PATH):].startswith(PUBLIC_CHAT_PREFIXES):
                area = None
        elif path == EMBED_PATH or path.startswith(EMBED_PATH + "/"):
            area = "page"
        else:
            area = None
        if area is None or not self.principals.guarded or scope.get("method") == "OPTIONS":
            await self.app(scope, receive, send)  # CORS preflights carry no credentials
            return
        headers = edges.headers_of(scope)
        if area == "page" and edges.bearer(headers) is None and scope["type"] == "http":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            if query.get(embedauth.EMBED_PARAM):
                await self._exchange(scope, receive, send, query, headers)
                return
        found = self.principals.of_headers(headers, embed=area == "api" and path in ASK_PATHS,
                                           session=area == "page")
        if found.principal is None:
            message = found.message
            if found.status == 401 and area == "page":
                message = ("missing credentials: open the page with ?embed=<embed token> "
                           "(minted by `rag embed-token`) or send 'Authorization: Bearer <token>'")
            await self._deny(scope, receive, send, found.status, message, found.denial)
            return
        scope[SCOPE_KEY] = found.principal
        await self.app(scope, receive, send)

    async def _exchange(self, scope: dict, receive: Any, send: Any, query: dict, headers: dict) -> None:
        """A valid embed token becomes a session cookie, and the page is reloaded without it."""
        key = self.principals.key
        try:
            if not key:
                raise embedauth.EmbedTokenError("cannot be checked: no signing key")
            claims = embedauth.verify_embed_token(key, query[embedauth.EMBED_PARAM][0])
        except embedauth.EmbedTokenError as exc:
            await self._deny(scope, receive, send, 403, f"embed token {exc}: mint a new one with `rag embed-token`")
            return
        if claims.origin not in self.principals.origins:
            await self._deny(scope, receive, send, 403, "the embed token's origin is not in RAG_CORS_ORIGINS")
            return
        referer = headers.get("referer", "")
        if referer and _origin_of(referer) not in (claims.origin, _own_origin(scope, headers)):
            await self._deny(scope, receive, send, 403, "the embed token was minted for another origin")
            return
        rest = [(k, v) for k, vs in query.items() if k != embedauth.EMBED_PARAM for v in vs]
        location = scope.get("path", "/") + (("?" + urlencode(rest)) if rest else "")
        value = embedauth.session_cookie_value(key, claims, self.session_ttl_s)
        secure = scope.get("scheme") in ("https", "wss")
        # Cross-site iframes only send cookies that are SameSite=None (Secure, HTTPS); Partitioned
        # keeps it to this host page's site where browsers block third-party cookies.
        cookie = (f"{embedauth.SESSION_COOKIE}={value}; Path=/; HttpOnly; Max-Age={self.session_ttl_s}; "
                  + ("SameSite=None; Secure; Partitioned" if secure else "SameSite=Lax"))
        resp = Response(status_code=303, headers={"Location": location, "Set-Cookie": cookie,
                                                  "Cache-Control": "no-store"})
        await resp(scope, receive, send)

    async def _deny(self, scope: dict, receive: Any, send: Any, status: int, message: str,
                    reason: str | None = None) -> None:
        if self.on_deny is not None:
            self.on_deny(reason or ("missing_token" if status == 401 else "invalid_token"))
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
        body = json.dumps({"message": message, "detail": message})
        resp = Response(body, status_code=status, media_type="application/json", headers=headers)
        await resp(scope, receive, send)


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def _own_origin(scope: dict, headers: dict[str, str]) -> str:
    return f"{scope.get('scheme', 'http')}://{headers.get('host', '')}".lower()


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


def create_app(engine: EngineLike, settings: Settings) -> FastAPI:
    """The FastAPI app: JSON API, embed demo and the Gradio chat mounted at /chat."""
    app = FastAPI(title="Newsroom RAG", docs_url=None, openapi_url="/api/openapi.json", redoc_url=None)
    app.add_exception_handler(RequestValidationError, api.validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, api.http_error_handler)
    # One line of answer workers for every way of asking over HTTP (the chat page has Gradio's queue).
    answering = Answering(engine, Limits.from_settings(settings))
    # Prometheus metrics (ui/metrics.py), this app's own registry: GET /metrics.
    metrics = app.state.metrics = Metrics().install()
    answering.on_answer = metrics.answer
    metrics.watch_queue(lambda: sum(answering.pool.stats()[k] for k in ("running", "waiting")))
    app.include_router(api.make_router(answering))
    app.include_router(openai_api.make_router(answering))
    app.include_router(widget.make_router())
    edges.redact_access_log()

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(CHAT_PATH + "/")

    @app.get(CHAT_PATH + "/gradio.js", include_in_schema=False)
    def gradio_js() -> PlainTextResponse:
        return PlainTextResponse(_gradio_js(), media_type="text/javascript")

    app.add_api_route("/metrics", metrics.endpoint, methods=["GET"], include_in_schema=False)

    _api_docs(app)
    app.mount(EMBED_PATH, StaticFiles(directory=EMBED_DIR, html=True), name="embed")
    # The web component loaded from /chat/gradio.js preloads its stylesheet from /assets/ at the root.
    assets = Path(gr.__file__).resolve().parent / "templates" / "frontend" / "assets"
    if assets.is_dir():
        app.mount("/assets", StaticFiles(directory=assets), name="gradio-assets")

    # Middleware: the last added is the outermost. CORS wraps auth so that 401/403 answers still
    # carry CORS headers (for allowed origins) and preflights are answered before auth.
    app.add_middleware(TokenAuth, principals=Principals(settings), session_ttl_s=settings.embed_session_ttl_s,
                       on_deny=metrics.denial)
    app.add_middleware(CORSPolicy, allowed=list(settings.cors_origins))
    app.add_middleware(edges.BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(edges.SecurityHeaders, frame_origins=list(settings.cors_origins))
    app.add_middleware(RequestMetrics, metrics=metrics)  # outermost: also counts 401/403/413 and preflights

    blocks = chat.build_chat(engine, settings, on_answer=metrics.answer)
    # The chat page sheds load like the API: at most answer_queue_size waiting, then "queue full".
    blocks.queue(default_concurrency_limit=4, max_size=settings.answer_queue_size or None)
    gr.mount_gradio_app(
        app, blocks, path=CHAT_PATH, server_name=settings.host, server_port=settings.port,
        footer_links=["api"], run_history=False, ssr_mode=False, show_error=True, mcp_server=False,
        theme=chat.THEME, css=chat.CSS, head=chat.HEAD,
    )
    return app


def run(settings: Settings, engine: EngineLike | None = None, *, warm: bool = True, log_level: str = "info") -> None:
    """Serve on settings.host:settings.port (127.0.0.1:7860 by default) until interrupted.

    One Engine for the process (created from `settings` unless given), shared by every session.
    With `warm`, models load in a background thread while the server already answers."""
    import uvicorn

    engine = open_engine(settings) if engine is None else engine
    app = create_app(engine, settings)
    if warm:
        warm_up_in_background(engine)
    print(f"chat:  http://{settings.host}:{settings.port}{CHAT_PATH}/\n"
          f"embed: http://{settings.host}:{settings.port}{EMBED_PATH}/\n"
          f"api:   http://{settings.host}:{settings.port}/api/docs", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=log_level, timeout_graceful_shutdown=3)
