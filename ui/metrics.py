"""Prometheus metrics of one app, served at /metrics (ui/server.py): the text format 0.0.4, or what the
scraper's Accept header asks for (OpenMetrics, text 1.0.0).

    rag_requests_total{path, method, status}   HTTP requests; `path` is one of a fixed set of routes
                                               (ROUTES, PREFIXES, else "other"), never the raw URL
    rag_request_seconds{path}                  histogram: HTTP latency, to the response's last byte
    rag_answers_total{status}                  answers given: answered / uncertain / not_found
    rag_refusals_total                         answers that were refusals (uncertain or not_found)
    rag_stage_seconds{stage}                   histogram of the engine's Answer.timings per answer:
                                               retrieve, first_token, total
    rag_queue_depth                            questions waiting or being answered in the answer pool
    rag_access_denials_total{reason}           requests or articles refused: missing_token, invalid_token
                                               (TokenAuth), embargo, desk, retracted (count_denial)

Labels hold only those fixed values: never a URL, query, token, document id, title or text. Each app
has its own CollectorRegistry (not prometheus_client's global one), so several apps in one process
keep their own counts. Answers of the HTTP faces are counted by ui/answering.py, those of the chat
page by ui/chat.py; the chat page's Gradio queue is not part of rag_queue_depth. Code that withholds
an article calls `count_denial("embargo" | "desk" | "retracted")`: it counts in the app whose request
is being served (RequestMetrics binds it; the answer pool's workers inherit it), else in the process's
app (`Metrics.install`).
"""

from __future__ import annotations

import contextvars
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from starlette.requests import Request
from starlette.responses import Response

from rag.records import ANSWERED, NOT_FOUND, UNCERTAIN, Answer

log = logging.getLogger(__name__)

# The `path` label: these routes as they are, anything under a prefix as the prefix, the rest "other".
ROUTES = frozenset({"/", "/metrics", "/api/ask", "/api/ask/stream", "/api/search", "/api/health",
                    "/api/openapi.json", "/v1/models", "/v1/chat/completions", "/widget.js"})
PREFIXES = ("/api/docs", "/api/docs-assets", "/chat", "/embed", "/assets")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
STATUSES = (ANSWERED, UNCERTAIN, NOT_FOUND)
STAGES = {"retrieve_s": "retrieve", "ttft_s": "first_token", "total_s": "total"}  # Answer.timings key -> stage
DENIAL_REASONS = ("missing_token", "invalid_token", "embargo", "desk", "retracted")
OTHER = "other"
# Seconds: a static file takes milliseconds, an answer on a CPU seconds to a minute or two.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, math.inf)

_CURRENT: contextvars.ContextVar[Metrics | None] = contextvars.ContextVar("rag_metrics", default=None)
_DEFAULT: Metrics | None = None


def route_of(path: str) -> str:
    """The `path` label of a request path: a known route, its prefix, or "other"."""
    if path in ROUTES:
        return path
    for prefix in PREFIXES:
        if path == prefix or path.startswith(prefix + "/"):
            return prefix
    return OTHER


class Metrics:
    """One app's metrics in their own registry; `endpoint` serves them (GET /metrics)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("rag_requests", "HTTP requests by route, method and status code",
                                ["path", "method", "status"], registry=r)
        self.request_seconds = Histogram("rag_request_seconds", "HTTP request latency to the response's last byte",
                                         ["path"], buckets=BUCKETS, registry=r)
        self.answers = Counter("rag_answers", "Answers given, by status (answered, uncertain, not_found)",
                               ["status"], registry=r)
        self.refusals = Counter("rag_refusals", "Answers that were refusals (status uncertain or not_found)",
                                registry=r)
        self.stage_seconds = Histogram("rag_stage_seconds", "Seconds per answer stage (retrieve, first_token, total)",
                                       ["stage"], buckets=BUCKETS, registry=r)
        self.queue_depth = Gauge("rag_queue_depth", "Questions waiting or being answered in the answer pool",
                                 registry=r)
        self.denials = Counter("rag_access_denials", "Requests or articles refused, by reason only",
                               ["reason"], registry=r)
        # Every series of a fixed label set exists from the start (at 0), so a rate() has a baseline.
        for status in (*STATUSES, OTHER):
            self.answers.labels(status)
        for stage in STAGES.values():
            self.stage_seconds.labels(stage)
        for reason in DENIAL_REASONS:
            self.denials.labels(reason)

    # -- what the app reports --------------------------------------------------------------------
    def request(self, path: str, method: str, status: int, seconds: float) -> None:
        """One HTTP request; `path` is the raw path (reduced to its route here)."""
        route = route_of(path)
        method = method.upper() if method.upper() in METHODS else OTHER
        self.requests.labels(route, method, str(int(status))).inc()
        self.request_seconds.labels(route).observe(max(0.0, seconds))

    def answer(self, answer: Answer | Mapping[str, Any]) -> None:
        """One final answer: an Answer, or its to_json() (what the chat page keeps)."""
        if isinstance(answer, Mapping):
            status, refused, timings = answer.get("status"), answer.get("refused"), answer.get("timings") or {}
        else:
            status, refused, timings = answer.status, answer.refused, answer.timings
        self.answers.labels(status if status in STATUSES else OTHER).inc()
        if refused:
            self.refusals.inc()
        for key, stage in STAGES.items():
            value = timings.get(key)
            if isinstance(value, (int, float)) and math.isfinite(value) and value >= 0:
                self.stage_seconds.labels(stage).observe(value)

    def denial(self, reason: str) -> None:
        """One access denial. Only the reasons in DENIAL_REASONS are labels; anything else counts as
        "other" (a caller's mistake must not put a document's id or a token into a label)."""
        if reason not in DENIAL_REASONS:
            log.warning("access denial with an unknown reason, counted as %r", OTHER)
            reason = OTHER
        self.denials.labels(reason).inc()

    def watch_queue(self, depth: Callable[[], float]) -> None:
        """rag_queue_depth reads depth() at each scrape."""
        self.queue_depth.set_function(depth)

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """The registry as the Accept header asks (prometheus_client's choice: OpenMetrics, or the
        text format 1.0.0 when asked for, else the text format 0.0.4 that every Prometheus reads),
        and its content type."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def endpoint(self, request: Request) -> Response:
        """GET /metrics."""
        body, content_type = self.exposition(request.headers.get("accept"))
        return Response(body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})

    # -- which app's metrics count_denial reaches ------------------------------------------------
    def install(self) -> Metrics:
        """Make these the process's metrics for count_denial outside a request (the server's app)."""
        global _DEFAULT
        _DEFAULT = self
        return self

    def bind(self) -> contextvars.Token:
        """Make these the metrics of the current context (RequestMetrics does it for each request);
        undo with `_CURRENT.reset(token)` or `unbind(token)`."""
        return _CURRENT.set(self)

    @staticmethod
    def unbind(token: contextvars.Token) -> None:
        _CURRENT.reset(token)


def current() -> Metrics | None:
    """The metrics of the request being served (bound by RequestMetrics, and carried into the answer
    pool's workers), else those of the process's app, else None."""
    return _CURRENT.get() or _DEFAULT


def count_denial(reason: str) -> None:
    """Count an access denial ("embargo", "desk", "retracted", "missing_token", "invalid_token") in the
    current app's metrics; nothing when no app has metrics. Pass the reason only, never what was withheld."""
    metrics = current()
    if metrics is not None:
        metrics.denial(reason)


class RequestMetrics:
    """Counts and times every HTTP request (pure ASGI middleware: streamed responses stay streamed).

    Outermost, so that it also sees what the other middleware answer (401/403, 413, CORS preflights).
    The time runs until the app returns: for a stream, its last event."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # an app that fails before answering
        t0 = time.perf_counter()

        async def send_with_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        token = self.metrics.bind()
        try:
            await self.app(scope, receive, send_with_status)
        finally:
            self.metrics.unbind(token)
            self.metrics.request(scope.get("path", ""), scope.get("method", ""), status, time.perf_counter() - t0)
