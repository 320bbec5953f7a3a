"""The JSON API a newsroom tool embeds: /api/ask, /api/ask/stream (server-sent events), /api/health."""

from __future__ import annotations

import json
import logging
from typing import Any, Iterator, Literal

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 1000
MAX_ANSWER_CHARS = 10_000
MAX_HISTORY_TURNS = 20
K_MIN, K_MAX = 1, 20


class HistoryTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(max_length=MAX_QUESTION_CHARS)
    answer: str = Field(max_length=MAX_ANSWER_CHARS)


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
        v = v.strip()
        if not v:
            raise ValueError("question must not be empty")
        if len(v) > MAX_QUESTION_CHARS:
            raise ValueError(f"question is too long ({len(v)} characters; the limit is {MAX_QUESTION_CHARS})")
        return v

    def turns(self):  # noqa: ANN201 - rag.records.Turn objects
        from rag.records import Turn

        return [Turn(t.question, t.answer) for t in self.history]


def _error_status(exc: Exception) -> int:
    from rag.errors import ConfigError, IndexError_, ModelError, RagError

    if isinstance(exc, ConfigError):
        return 400
    if isinstance(exc, (IndexError_, ModelError)):
        return 503
    if isinstance(exc, RagError):
        return 500
    return 500


def _error_message(exc: Exception) -> str:
    from rag.errors import RagError

    # An engine error explains itself; anything else stays in the server log.
    return str(exc) if isinstance(exc, RagError) else "internal error while answering; see the server log"


async def validation_error_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with a readable `message` beside FastAPI's usual `detail` list (without echoing inputs)."""
    errors = []
    for e in exc.errors():
        loc = [str(p) for p in e.get("loc", ()) if p != "body"]
        msg = str(e.get("msg", "invalid value")).removeprefix("Value error, ")
        errors.append({"loc": loc, "msg": msg, "type": e.get("type")})
    message = "; ".join(f"{'.'.join(x['loc']) or 'body'}: {x['msg']}" for x in errors) or "invalid request"
    return JSONResponse({"message": message, "detail": jsonable_encoder(errors)}, status_code=422)


def _sse(event: str, data: Any) -> str:
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    # One `data:` line per line of the payload, as the SSE format requires.
    lines = "\n".join(f"data: {line}" for line in payload.split("\n"))
    return f"event: {event}\n{lines}\n\n"


def make_router(engine: Any) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["api"])

    @router.post("/ask")
    def ask(req: AskRequest) -> JSONResponse:
        """Answer a question; returns Answer.to_json()."""
        try:
            answer = engine.ask(req.question, req.turns(), k=req.k, mode=req.mode)
        except Exception as exc:
            log.exception("/api/ask failed")
            return JSONResponse({"detail": _error_message(exc)}, status_code=_error_status(exc))
        return JSONResponse(answer.to_json())

    @router.post("/ask/stream")
    def ask_stream(req: AskRequest) -> StreamingResponse:
        """Server-sent events: `token` events carry draft text (JSON strings), then one `answer` event
        with Answer.to_json(); an `error` event {"detail": ...} if answering fails part-way."""

        def events() -> Iterator[str]:
            stream = engine.ask_stream(req.question, req.turns(), k=req.k, mode=req.mode)
            try:
                for item in stream:
                    if isinstance(item, str):
                        if item:
                            yield _sse("token", json.dumps(item, ensure_ascii=False))
                    else:
                        yield _sse("answer", item.to_json())
                        return
                yield _sse("error", {"detail": "the engine produced no answer"})
            except Exception as exc:
                log.exception("/api/ask/stream failed")
                yield _sse("error", {"detail": _error_message(exc)})
            finally:
                close = getattr(stream, "close", None)
                if close:
                    close()

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    @router.get("/health")
    def health() -> JSONResponse:
        """Index size and model ids."""
        try:
            info = dict(engine.health())
        except Exception as exc:
            log.exception("/api/health failed")
            return JSONResponse({"status": "error", "detail": _error_message(exc)}, status_code=503)
        return JSONResponse(jsonable_encoder({"status": "ok", **info}))

    return router
