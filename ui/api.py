"""The JSON API a newsroom tool embeds: /api/ask, /api/ask/stream (server-sent events), /api/health."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, AsyncIterator, Callable, Literal

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .admission import AnswerPool, Ticket, answer_job

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 1000
MAX_ANSWER_CHARS = 10_000
MAX_HISTORY_TURNS = 20
K_MIN, K_MAX = 1, 20
HEALTH_WAIT_S = 1.0  # a health check slower than this answers "starting" (503) instead of hanging
# A good health result is reused this long: under load, a probe then needs no worker thread (whose
# turn at the GIL among busy answering threads was what made the slowest probes slow).
HEALTH_FRESH_S = 1.0


def _valid_unicode(v: str, what: str) -> str:
    # JSON may escape lone surrogates ("\ud800"); they are no text and cannot be encoded further on.
    try:
        v.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{what} contains an invalid character (a lone surrogate) at position {exc.start}") from exc
    return v


class HistoryTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(max_length=MAX_QUESTION_CHARS)
    answer: str = Field(max_length=MAX_ANSWER_CHARS)

    @field_validator("question", "answer")
    @classmethod
    def _text(cls, v: str, info) -> str:  # noqa: ANN001
        return _valid_unicode(v, info.field_name)


class AskRequest(BaseModel):
    """{"question": ..., "history"?: [{"question", "answer"}], "k"?: 1..20, "mode"?: hybrid|dense|lexical}"""

    model_config = ConfigDict(extra="forbid")

    question: str
    history: list[HistoryTurn] = Field(default_factory=list, max_length=MAX_HISTORY_TURNS)
    k: int | None = Field(default=None, ge=K_MIN, le=K_MAX, strict=True)
    mode: Literal["hybrid", "dense", "lexical"] | None = None

    @field_validator("question")
    @classmethod
    def _question(cls, v: str) -> str:
        v = _valid_unicode(v, "question").strip()
        if not v:
            raise ValueError("question must not be empty")
        if len(v) > MAX_QUESTION_CHARS:
            raise ValueError(f"question is too long ({len(v)} characters; the limit is {MAX_QUESTION_CHARS})")
        return v

    def turns(self):  # noqa: ANN201 - rag.records.Turn objects
        from rag.records import Turn

        return [Turn(t.question, t.answer) for t in self.history]


class CitationOut(BaseModel):
    n: int
    doc_id: str
    title: str
    chunk_id: str
    quote: str
    start: int
    end: int
    date: str | None = None


class HitOut(BaseModel):
    rank: int
    score: float
    doc_id: str
    title: str
    chunk_id: str
    start: int
    end: int
    text: str
    metadata: dict[str, Any]


class AnswerOut(BaseModel):
    """What /api/ask returns (and the `answer` event of the stream carries): Answer.to_json()."""

    question: str
    standalone_question: str
    answer: str
    refused: bool
    status: Literal["answered", "uncertain", "not_found"] = Field(
        "answered", description="uncertain: passages were found but none states the answer surely enough "
        "(see `closest`); not_found: retrieval found nothing that matches the question")
    citations: list[CitationOut]
    closest: list[CitationOut] = Field(default_factory=list, description="for a refusal: the best sentence of "
                                       "each closest passage, to read first")
    hits: list[HitOut]
    timings: dict[str, float]


class ErrorOut(BaseModel):
    """Every error: `message` is for people; `detail` is FastAPI's usual field (a list for 422)."""

    message: str
    detail: Any = None
    retry_after: int | None = None


class HealthOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "starting", "error"]
    message: str | None = None
    documents: int | None = None
    chunks: int | None = None
    embedder: str | None = None
    generator: str | None = None
    index: str | None = None
    queue: dict[str, int] | None = None


class EventStream(StreamingResponse):
    media_type = "text/event-stream"


_ERRORS = {
    400: {"model": ErrorOut, "description": "unparsable body (not UTF-8 JSON, nested too deep)"},
    413: {"model": ErrorOut, "description": "body larger than RAG_MAX_BODY_BYTES"},
    422: {"model": ErrorOut, "description": "invalid request: `message` says which field and why"},
    503: {"model": ErrorOut, "description": "busy (with Retry-After), timed out, or the archive/model is unavailable"},
}


# The stream's errors come before any event, as JSON (the 200 answer is the event stream).
_STREAM_ERRORS = {code: {"description": r["description"],
                         "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}}
                  for code, r in _ERRORS.items()}


# One event of the stream (OpenAPI 3.1: a text/event-stream schema describes each event).
_SSE_EVENT = {"type": "object", "required": ["event", "data"], "properties": {
    "event": {"type": "string", "enum": ["queued", "heartbeat", "token", "answer", "error"]},
    "data": {"type": "string", "description": "JSON: {position}, {}, a draft string, AnswerOut, ErrorOut"}}}


def error_status(exc: Exception) -> int:
    from rag.errors import ConfigError, IndexError_, ModelError

    if isinstance(exc, ConfigError):
        return 400
    if isinstance(exc, (IndexError_, ModelError)):
        return 503
    return 500


ARCHIVE_UNAVAILABLE = "the archive is unavailable right now; please try again later"
MODEL_UNAVAILABLE = "the answering model is unavailable right now; please try again later"


def public_error(exc: Exception) -> str:
    """What a reader or API client is told; the details (paths, commands) go to the server log."""
    from rag.errors import ConfigError, IndexError_, ModelError

    if isinstance(exc, IndexError_):
        return ARCHIVE_UNAVAILABLE
    if isinstance(exc, ModelError):
        return MODEL_UNAVAILABLE
    if isinstance(exc, ConfigError):
        return str(exc)
    return "internal error while answering; see the server log"




async def validation_error_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with a readable `message` beside FastAPI's usual `detail` list (without echoing inputs)."""
    errors = []
    for e in exc.errors():
        loc = [str(p) for p in e.get("loc", ()) if p != "body"]
        msg = str(e.get("msg", "invalid value")).removeprefix("Value error, ")
        errors.append({"loc": loc, "msg": msg, "type": e.get("type")})
    message = "; ".join(f"{'.'.join(x['loc']) or 'body'}: {x['msg']}" for x in errors) or "invalid request"
    return JSONResponse({"message": message, "detail": jsonable_encoder(errors)}, status_code=422)


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own errors (unparsable body, 404, 405) with the documented `message`."""
    status = getattr(exc, "status_code", 500)
    detail = getattr(exc, "detail", None)
    message = detail if isinstance(detail, str) else "invalid request"
    if status == 400 and "parsing the body" in message:
        # FastAPI's catch-all for bodies json.loads cannot take: bad UTF-8, nesting past Python's limit.
        message = "the request body could not be parsed: send one JSON object in UTF-8, nested at most a few hundred levels"
    return JSONResponse({"message": message, "detail": message}, status_code=status,
                        headers=getattr(exc, "headers", None))


def public_answer(data: dict[str, Any]) -> dict[str, Any]:
    """Answer JSON without server paths: an absolute `source` (older indexes) keeps its file name only."""
    for hit in data.get("hits", []):
        meta = hit.get("metadata") or {}
        src = meta.get("source")
        if isinstance(src, str) and (src.startswith("/") or (len(src) > 2 and src[1] == ":")):
            meta["source"] = PurePath(src.replace("\\", "/")).name
    return data


def _sse(event: str, data: Any) -> str:
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    # One `data:` line per line of the payload, as the SSE format requires.
    lines = "\n".join(f"data: {line}" for line in payload.split("\n"))
    return f"event: {event}\n{lines}\n\n"


@dataclass(frozen=True)
class Limits:
    workers: int = 2
    queue_size: int = 32
    timeout_s: float = 120.0
    heartbeat_s: float = 2.0

    @classmethod
    def from_settings(cls, settings: Any) -> "Limits":
        if settings is None:
            return cls()
        return cls(settings.answer_workers, settings.answer_queue_size, settings.answer_timeout_s,
                   settings.stream_heartbeat_s)


def make_router(engine: Any, settings: Any = None) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["api"])
    limits = Limits.from_settings(settings)
    pool = AnswerPool(limits.workers, limits.queue_size, limits.timeout_s)
    router.answer_pool = pool  # type: ignore[attr-defined] # for tests and the server's shutdown
    health_state: dict[str, Any] = {"pending": None, "info": None, "at": 0.0}
    health_executor = ThreadPoolExecutor(1, thread_name_prefix="rag-health")

    def busy() -> JSONResponse:
        wait = pool.retry_after()
        return JSONResponse(
            {"message": f"the server is busy answering other questions; try again in {wait} s",
             "detail": "queue full", "retry_after": wait},
            status_code=503, headers={"Retry-After": str(wait)})

    def timed_out(started: bool) -> JSONResponse:
        wait = pool.retry_after()
        return JSONResponse(
            {"message": f"no answer within {limits.timeout_s:g} s" + ("" if started else " (still waiting in line)")
             + f"; try again in {wait} s", "detail": "timeout", "retry_after": wait},
            status_code=503, headers={"Retry-After": str(wait)})

    def answer_in_worker(req: AskRequest) -> Callable[[Ticket], Any]:
        return answer_job(lambda: engine.ask_stream(req.question, req.turns(), k=req.k, mode=req.mode))

    @router.post("/ask", response_model=AnswerOut, responses=_ERRORS)
    async def ask(req: AskRequest) -> JSONResponse:
        """Answer a question; returns Answer.to_json()."""
        ticket = pool.admit()
        if ticket is None:
            return busy()
        future = pool.run(ticket, answer_in_worker(req))
        try:
            answer = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), ticket.remaining())
        except (asyncio.TimeoutError, TimeoutError):
            started = ticket.started
            ticket.cancel()
            return timed_out(started)
        except asyncio.CancelledError:  # the client went away
            ticket.cancel()
            raise
        except Exception as exc:
            log.exception("/api/ask failed")
            message = public_error(exc)
            return JSONResponse({"message": message, "detail": message}, status_code=error_status(exc))
        if answer is None:
            return JSONResponse({"message": "the engine produced no answer", "detail": "no answer"}, status_code=500)
        return JSONResponse(public_answer(answer.to_json()))

    @router.post("/ask/stream", response_class=EventStream, responses={
        200: {"content": {"text/event-stream": {"schema": _SSE_EVENT}}, "description": "server-sent events"},
        **_STREAM_ERRORS})
    async def ask_stream(req: AskRequest) -> Any:
        """Server-sent events: `queued` at once ({"position": n}, again while waiting), `heartbeat`
        every few seconds when nothing else was sent, `token` events with draft text (JSON strings),
        then one `answer` event with Answer.to_json(); or an `error` event {"message", "detail"}."""
        ticket = pool.admit()
        if ticket is None:
            return busy()
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue = asyncio.Queue()

        def put(kind: str, item: Any) -> None:
            loop.call_soon_threadsafe(inbox.put_nowait, (kind, item))

        def work(ticket: Ticket) -> None:
            put("started", None)
            try:
                stream = engine.ask_stream(req.question, req.turns(), k=req.k, mode=req.mode)
                try:
                    for item in stream:
                        if ticket.stop.is_set():
                            return
                        put("item", item)
                finally:
                    close = getattr(stream, "close", None)
                    if close:
                        close()
                put("done", None)
            except Exception as exc:
                log.exception("/api/ask/stream failed")
                put("error", exc)

        def error(message: str, detail: str) -> str:
            return _sse("error", {"message": message, "detail": detail})

        async def events() -> AsyncIterator[str]:
            try:
                yield _sse("queued", {"position": ticket.position()})
                pool.run(ticket, work)
                while True:
                    wait = min(limits.heartbeat_s, ticket.remaining())
                    if wait <= 0:
                        yield error(f"no answer within {limits.timeout_s:g} s; try again later", "timeout")
                        return
                    try:
                        kind, item = await asyncio.wait_for(inbox.get(), wait)
                    except (asyncio.TimeoutError, TimeoutError):
                        position = ticket.position()
                        yield _sse("queued", {"position": position}) if position else _sse("heartbeat", {})
                        continue
                    if kind == "item" and isinstance(item, str):
                        if item:
                            yield _sse("token", json.dumps(item, ensure_ascii=False))
                    elif kind == "item":
                        yield _sse("answer", public_answer(item.to_json()))
                        return
                    elif kind == "error":
                        yield error(public_error(item), type(item).__name__)
                        return
                    elif kind == "done":
                        yield error("the engine produced no answer", "no answer")
                        return
            finally:
                ticket.cancel()  # the client left or the answer is out: free the worker

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return EventStream(events(), media_type="text/event-stream", headers=headers)

    @router.get("/health", response_model=HealthOut, responses={503: {"model": HealthOut}})
    async def health() -> JSONResponse:
        """Index size and model ids; answered at once, also while every answer worker is busy."""
        if health_state["info"] is not None and time.monotonic() - health_state["at"] < HEALTH_FRESH_S:
            return JSONResponse(jsonable_encoder({"status": "ok", **health_state["info"], "queue": pool.stats()}))
        pending = health_state["pending"]
        if pending is None or pending.done():
            pending = health_state["pending"] = health_executor.submit(engine.health)
        try:
            info = dict(await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(pending)), HEALTH_WAIT_S))
        except (asyncio.TimeoutError, TimeoutError):
            return JSONResponse({"status": "starting", "message": "the archive is still loading"}, status_code=503)
        except Exception as exc:
            log.warning("/api/health: %s", exc)
            return JSONResponse({"status": "error", "message": public_error(exc), "detail": public_error(exc)},
                                status_code=503)
        if "index" in info:  # the snapshot's name, not where it lives on the server
            info["index"] = PurePath(str(info["index"])).name
        health_state["info"], health_state["at"] = info, time.monotonic()
        return JSONResponse(jsonable_encoder({"status": "ok", **info, "queue": pool.stats()}))

    return router
