"""The pydantic models at ui/'s edges: what a question may be, and what an answer looks like on the
wire, built from the engine's records (rag.records).

Requests: AskRequest (the JSON API's body, and the rules MCP and /v1 check their input with).
Responses: the fields of a Citation and a Hit are declared once (CitationFields, HitFields); the JSON
API documents them as Citation.to_json() and Hit.to_json() give them (CitationOut, HitOut, AnswerOut),
and ui.archive adds where each article can be found (ArticleSource) for MCP and /v1.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from rag.records import Turn

MAX_QUESTION_CHARS = 1000
MAX_ANSWER_CHARS = 10_000
MAX_HISTORY_TURNS = 20
K_MIN, K_MAX = 1, 20


def _valid_unicode(v: str, what: str) -> str:
    # JSON may escape lone surrogates ("\ud800"); they are no text and cannot be encoded further on.
    try:
        v.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{what} contains an invalid character (a lone surrogate) at position {exc.start}") from exc
    return v


# -- requests ---------------------------------------------------------------------------------
class HistoryTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(max_length=MAX_QUESTION_CHARS)
    answer: str = Field(max_length=MAX_ANSWER_CHARS)

    @field_validator("question", "answer")
    @classmethod
    def _text(cls, v: str, info: ValidationInfo) -> str:
        return _valid_unicode(v, info.field_name or "text")


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

    def turns(self) -> list[Turn]:
        return [Turn(t.question, t.answer) for t in self.history]


# -- the records' fields ----------------------------------------------------------------------
class CitationFields(BaseModel):
    """rag.records.Citation: `quote` is article_text[start:end] of the article `doc_id`."""

    n: int
    doc_id: str
    chunk_id: str
    title: str
    quote: str
    start: int
    end: int
    correction: str | None = Field(None, description="the article's correction, when it has been corrected")


class HitFields(BaseModel):
    """rag.records.Hit: a retrieved passage, ranked from 1; `text` is article_text[start:end]."""

    rank: int
    score: float
    doc_id: str
    chunk_id: str
    title: str
    start: int
    end: int
    text: str


# -- the JSON API's answer --------------------------------------------------------------------
class CitationOut(CitationFields):
    date: str | None = None


class HitOut(HitFields):
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
