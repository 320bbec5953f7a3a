"""An OpenAI-compatible face of the archive: GET /v1/models, POST /v1/chat/completions.

Chat front ends (Open WebUI, LibreChat) and every OpenAI SDK can talk to the archive unchanged:
the last user message is the question and the earlier user/assistant pairs are the conversation
(rag.records.Turn). The reply's content is the engine's checked answer with its [n] markers and a
"Sources" list; the same citations come as structured data in a `citations` field of the response
(and of the last chunk of a stream), with `refused` saying whether the archive holds no answer. A
refusal is a normal completion whose text says so.

Streaming never shows the unchecked draft: while the model drafts, the stream sends SSE comments
(keeping proxies from timing out), then the checked answer in pieces, then the closing chunk.
Errors use OpenAI's shape, {"error": {"message", "type", "param", "code"}}, so clients show them.
The bearer token of the JSON API guards /v1 too (ui.server.TokenAuth), and /v1 answers through the
same line of workers (ui.answering): a full line gets 503 with Retry-After, not a stall.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rag.records import Answer, Final, Principal

from . import archive
from .admission import Ticket
from .answering import BUSY, Answering, Failed, TimedOut, Waiting
from .errors import error_status, public_error, validation_message
from .principals import principal_of
from .schemas import MAX_ANSWER_CHARS, MAX_HISTORY_TURNS, MAX_QUESTION_CHARS, AskRequest

MODEL_ID = "newsroom-rag"
MAX_MESSAGES = 200
CREATED = int(time.time())


class ChatMessage(BaseModel):
    # Clients add fields of their own (name, tool_calls, ...): accepted and ignored.
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    """OpenAI's request body; sampling options (temperature, max_tokens, ...) are accepted and ignored:
    the engine's own settings decide how an answer is made."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False


class OpenAIError(Exception):
    def __init__(self, message: str, *, status: int = 400, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error", retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.param, self.code, self.kind = status, param, code, kind
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        return {"error": {"message": str(self), "type": self.kind, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else None
        return JSONResponse(self.body(), status_code=self.status, headers=headers)

    def event(self) -> str:
        """The error as a stream's data line (a stream's status is already 200)."""
        return f"data: {json.dumps(self.body(), ensure_ascii=False)}\n\n"


def _text(msg: ChatMessage, i: int) -> str:
    if msg.content is None:
        return ""
    if isinstance(msg.content, str):
        return msg.content
    parts = []
    for part in msg.content:  # content parts: only text can be asked about
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise OpenAIError(f"messages[{i}].content: only text parts are supported, got type "
                              f"{str(part.get('type'))[:40]!r}", param=f"messages[{i}].content")
        parts.append(part["text"])
    return "\n".join(parts)


def conversation(messages: list[ChatMessage]) -> tuple[str, list[dict[str, str]]]:
    """(question, history): the last message must be the user's; each earlier user message followed by
    an assistant message is one turn. System prompts are the client's instructions to a model, not
    questions: the archive's own rules decide what it answers, so they are left out."""
    said = [(i, m.role, _text(m, i)) for i, m in enumerate(messages) if m.role in ("user", "assistant")]
    for i, _, text in said:
        if len(text) > MAX_ANSWER_CHARS:
            raise OpenAIError(f"messages[{i}].content is too long ({len(text)} characters; the limit is "
                              f"{MAX_ANSWER_CHARS})", param=f"messages[{i}].content")
    if not said or said[-1][1] != "user":
        raise OpenAIError("messages: the last user or assistant message must be from the user (the question)",
                          param="messages")
    turns: list[dict[str, str]] = []
    pending: str | None = None
    for _, role, text in said[:-1]:
        if role == "user":
            pending = text  # of two user messages in a row, the later one was answered
        elif pending is not None:
            turns.append({"question": pending[:MAX_QUESTION_CHARS], "answer": archive.strip_sources(text)})
            pending = None
    # A chat client resends the whole conversation; the engine only needs its recent turns.
    return said[-1][2], turns[-MAX_HISTORY_TURNS:]


def parse(body: Any) -> tuple[ChatRequest, AskRequest]:
    try:
        req = ChatRequest.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {}
        param = ".".join(str(p) for p in first.get("loc", ())) or None
        raise OpenAIError(validation_message(exc.errors()), param=param) from None
    if req.model != MODEL_ID:
        raise OpenAIError(f"the model {req.model[:100]!r} does not exist; use {MODEL_ID!r} (see GET /v1/models)",
                          status=404, param="model", code="model_not_found")
    question, history = conversation(req.messages)
    try:
        ask = archive.ask_request(question, history)
    except ValidationError as exc:
        raise OpenAIError(validation_message(exc.errors()).replace("question:", "messages[-1].content:", 1),
                          param="messages") from None
    return req, ask


def _engine_error(exc: Exception) -> OpenAIError:
    # An answer that never came (answering.NoAnswer) is an internal error here too.
    status = error_status(exc)
    return OpenAIError(public_error(exc), status=status,
                       kind="invalid_request_error" if status == 400 else "server_error")


def _chunk(cid: str, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
    payload = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": MODEL_ID,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def _pieces(text: str, words: int = 4) -> Iterator[str]:
    tokens = re.findall(r"\s*\S+", text)
    for i in range(0, len(tokens), words):
        yield "".join(tokens[i:i + words])


def _extras(out: archive.AskOut) -> dict[str, Any]:
    return {"citations": [c.model_dump() for c in out.citations], "refused": out.refused,
            "status": out.status, "standalone_question": out.standalone_question}


def make_router(answering: Answering) -> APIRouter:
    """/v1 over `answering`: the JSON API's line of workers (one line for every way of asking)."""
    router = APIRouter(prefix="/v1", tags=["openai"])
    engine = answering.engine

    def unavailable(message: str, code: str) -> OpenAIError:
        wait = answering.retry_after()
        return OpenAIError(f"{message}; try again in {wait} s", status=503, kind="server_error", code=code,
                           retry_after=wait)

    @router.get("/models")
    def models() -> JSONResponse:
        """The one model this server offers: the archive."""
        return JSONResponse({"object": "list", "data": [
            {"id": MODEL_ID, "object": "model", "created": CREATED, "owned_by": "newsroom-rag"}]})

    # OpenAI-style errors: 400 for a bad request, 401/403 for credentials, 404 for an unknown model.
    @router.post("/chat/completions", responses={400: {"description": "invalid request (OpenAI error object)"},
                                                 401: {"description": "missing credentials"},
                                                 403: {"description": "invalid token"},
                                                 404: {"description": "unknown model"},
                                                 413: {"description": "request body too large"},
                                                 503: {"description": "the answering queue is full, or no "
                                                                      "answer came in time (Retry-After)"}})
    async def chat_completions(request: Request) -> Any:
        """OpenAI chat completions; the reply carries `citations` and `refused` beside `choices`."""
        try:
            body = await request.json()
        except ValueError:
            return OpenAIError("the request body is not valid JSON").response()
        try:
            req, ask = parse(body)
        except OpenAIError as exc:
            return exc.response()
        ticket = answering.admit()
        if ticket is None:
            return unavailable(BUSY, "queue_full").response()
        cid = f"chatcmpl-{uuid.uuid4().hex}"
        if req.stream:
            stream = _stream(cid, ask, ticket, principal_of(request.scope))
            return StreamingResponse(stream, media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        match await answering.answer(ticket, ask, principal_of(request.scope)):
            case TimedOut() as late:
                return unavailable(late.message, "timeout").response()
            case Failed(exc):
                return _engine_error(exc).response()
            case Answer() as answer:
                out = archive.ask_out(engine, answer)
                return JSONResponse({
                    "id": cid, "object": "chat.completion", "created": int(time.time()), "model": MODEL_ID,
                    "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                                 "message": {"role": "assistant", "content": archive.answer_with_sources(out),
                                             "refusal": None}}],
                    **_extras(out)})

    async def _stream(cid: str, ask: AskRequest, ticket: Ticket, principal: Principal) -> AsyncIterator[str]:
        # The draft is unchecked, so it is never sent: while it is written (or the request waits in
        # line) the stream sends SSE comments as a sign of life, then the checked answer in pieces.
        with ticket:  # the client left or the answer is out: free the worker
            yield _chunk(cid, {"role": "assistant", "content": ""})
            async for event in answering.progress(ticket, ask, principal):
                match event:
                    case Waiting(position) if position:
                        yield ": queued\n\n"
                    case Final(answer):
                        out = archive.ask_out(engine, answer)
                        for piece in _pieces(archive.answer_with_sources(out)):
                            yield _chunk(cid, {"content": piece})
                        yield _chunk(cid, {}, "stop", **_extras(out))
                    case Failed(exc):
                        yield _engine_error(exc).event()
                    case TimedOut() as late:
                        yield unavailable(late.message, "timeout").event()
                    case _:  # a draft piece, or a heartbeat while answering
                        yield ": drafting\n\n"
        yield "data: [DONE]\n\n"

    return router
