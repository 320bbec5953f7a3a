"""The JSON API a newsroom tool embeds: /api/ask, /api/ask/stream (server-sent events), /api/search,
/api/health. Each answers with what the caller's token may see (ui/principals.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import PurePath
from typing import Any

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse

from rag.records import Answer, Draft, Final

from .answering import BUSY, Answering, Failed, NoAnswer, TimedOut, Waiting
from .archive import SearchOut, SearchRequest, hits_out
from .errors import error_status, problems, problems_message, public_error
from .metrics import count_denial
from .principals import principal_of
from .schemas import AnswerOut, AskRequest, ErrorOut, HealthOut

log = logging.getLogger(__name__)

HEALTH_WAIT_S = 1.0  # a health check slower than this answers "starting" (503) instead of hanging
# A good health result is reused this long: under load, a probe then needs no worker thread (whose
# turn at the GIL among busy answering threads was what made the slowest probes slow).
HEALTH_FRESH_S = 1.0
NO_ANSWER = "the engine produced no answer"


class EventStream(StreamingResponse):
    media_type = "text/event-stream"


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "unparsable body (not UTF-8 JSON, nested too deep)"},
    413: {"model": ErrorOut, "description": "body larger than RAG_MAX_BODY_BYTES"},
    422: {"model": ErrorOut, "description": "invalid request: `message` says which field and why"},
    503: {"model": ErrorOut, "description": "busy (with Retry-After), timed out, or the archive/model is unavailable"},
}


# The stream's errors come before any event, as JSON (the 200 answer is the event stream).
_STREAM_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": r["description"],
           "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}}
    for code, r in _ERRORS.items()}


# One event of the stream (OpenAPI 3.1: a text/event-stream schema describes each event).
_SSE_EVENT = {"type": "object", "required": ["event", "data"], "properties": {
    "event": {"type": "string", "enum": ["queued", "heartbeat", "token", "answer", "error"]},
    "data": {"type": "string", "description": "JSON: {position}, {}, a draft string, AnswerOut, ErrorOut"}}}


async def validation_error_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with a readable `message` beside FastAPI's usual `detail` list (without echoing inputs)."""
    found = problems(exc.errors())
    return JSONResponse({"message": problems_message(found), "detail": jsonable_encoder(found)}, status_code=422)


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own errors (unparsable body, 404, 405) with the documented `message`."""
    status = getattr(exc, "status_code", 500)
    detail = getattr(exc, "detail", None)
    message = detail if isinstance(detail, str) else "invalid request"
    if status == 400 and "parsing the body" in message:
        # FastAPI's catch-all for bodies json.loads cannot take: bad UTF-8, nesting past Python's limit.
        message = ("the request body could not be parsed: send one JSON object in UTF-8, nested at most a few "
                   "hundred levels")
    return JSONResponse({"message": message, "detail": message}, status_code=status,
                        headers=getattr(exc, "headers", None))


def public_answer(answer: Answer) -> dict[str, Any]:
    """Answer.to_json() without server paths: an absolute `source` (older indexes) keeps its file name only."""
    data = answer.to_json()
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


def _failure(exc: Exception) -> tuple[str, str]:
    """(message, detail) of a failed answer."""
    if isinstance(exc, NoAnswer):
        return NO_ANSWER, "no answer"
    return public_error(exc), type(exc).__name__


def make_router(answering: Answering) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["api"])
    engine = answering.engine
    health_state: dict[str, Any] = {"pending": None, "info": None, "at": 0.0}
    health_executor = ThreadPoolExecutor(1, thread_name_prefix="rag-health")

    def unavailable(message: str, detail: str) -> JSONResponse:
        wait = answering.retry_after()
        return JSONResponse({"message": f"{message}; try again in {wait} s", "detail": detail, "retry_after": wait},
                            status_code=503, headers={"Retry-After": str(wait)})

    @router.post("/ask", response_model=AnswerOut, responses=_ERRORS)
    async def ask(req: AskRequest, request: Request) -> JSONResponse:
        """Answer a question; returns Answer.to_json(). It reads only what the caller's token may see."""
        ticket = answering.admit()
        if ticket is None:
            return unavailable(BUSY, "queue full")
        match await answering.answer(ticket, req, principal_of(request.scope)):
            case TimedOut() as late:
                return unavailable(late.message + ("" if late.started else " (still waiting in line)"), "timeout")
            case Failed(NoAnswer()):
                return JSONResponse({"message": NO_ANSWER, "detail": "no answer"}, status_code=500)
            case Failed(exc):
                message = public_error(exc)
                return JSONResponse({"message": message, "detail": message}, status_code=error_status(exc))
            case Answer() as answer:
                return JSONResponse(public_answer(answer))

    @router.post("/ask/stream", response_class=EventStream, responses={
        200: {"content": {"text/event-stream": {"schema": _SSE_EVENT}}, "description": "server-sent events"},
        **_STREAM_ERRORS})
    async def ask_stream(req: AskRequest, request: Request) -> Any:
        """Server-sent events: `queued` at once ({"position": n}, again while waiting), `heartbeat`
        every few seconds when nothing else was sent, `token` events with draft text (JSON strings),
        then one `answer` event with Answer.to_json(); or an `error` event {"message", "detail"}."""
        ticket = answering.admit()
        if ticket is None:
            return unavailable(BUSY, "queue full")

        async def events() -> AsyncIterator[str]:
            with ticket:  # the client left or the answer is out: free the worker
                yield _sse("queued", {"position": ticket.position()})
                async for event in answering.progress(ticket, req, principal_of(request.scope)):
                    match event:
                        case Waiting(0):
                            yield _sse("heartbeat", {})
                        case Waiting(position):
                            yield _sse("queued", {"position": position})
                        case Draft(text) if text:
                            yield _sse("token", json.dumps(text, ensure_ascii=False))
                        case Final(answer):
                            yield _sse("answer", public_answer(answer))
                        case Failed(exc):
                            message, detail = _failure(exc)
                            yield _sse("error", {"message": message, "detail": detail})
                        case TimedOut() as late:
                            yield _sse("error", {"message": f"{late.message}; try again later", "detail": "timeout"})

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return EventStream(events(), media_type="text/event-stream", headers=headers)

    @router.post("/search", response_model=SearchOut, responses=_ERRORS)
    async def search(req: SearchRequest, request: Request) -> JSONResponse:
        """The passages a query retrieves (best first), among those the caller's token may see."""
        filters = req.filters.to_filters() if req.filters else None
        principal = principal_of(request.scope)
        for key, doc_id in ((req.filters.where or {}).items() if req.filters else ()):
            if key in ("doc_id", "id") and (reason := engine.denial(str(doc_id), principal)):
                count_denial(reason)  # asked for by id: counted (the hits simply lack it)
        try:
            hits = await asyncio.to_thread(engine.search, req.query, req.k, mode=req.mode, filters=filters,
                                           principal=principal)
        except Exception as exc:
            log.exception("/api/search failed")
            message = public_error(exc)
            return JSONResponse({"message": message, "detail": message}, status_code=error_status(exc))
        return JSONResponse(jsonable_encoder(SearchOut(query=req.query, hits=hits_out(hits))))

    @router.get("/health", response_model=HealthOut, responses={503: {"model": HealthOut}})
    async def health() -> JSONResponse:
        """Index size and model ids; answered at once, also while every answer worker is busy."""
        if health_state["info"] is not None and time.monotonic() - health_state["at"] < HEALTH_FRESH_S:
            return JSONResponse(jsonable_encoder({"status": "ok", **health_state["info"],
                                                  "queue": answering.pool.stats()}))
        pending: Future | None = health_state["pending"]
        if pending is None or pending.done():
            pending = health_state["pending"] = health_executor.submit(engine.health)
        try:
            info = dict(await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(pending)), HEALTH_WAIT_S))
        except TimeoutError:
            return JSONResponse({"status": "starting", "message": "the archive is still loading"}, status_code=503)
        except Exception as exc:
            log.warning("/api/health: %s", exc)
            return JSONResponse({"status": "error", "message": public_error(exc), "detail": public_error(exc)},
                                status_code=503)
        if "index" in info:  # the snapshot's name, not where it lives on the server
            info["index"] = PurePath(str(info["index"])).name
        health_state["info"], health_state["at"] = info, time.monotonic()
        return JSONResponse(jsonable_encoder({"status": "ok", **info, "queue": answering.pool.stats()}))

    return router
