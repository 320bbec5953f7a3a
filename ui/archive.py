"""What the MCP server and the OpenAI-compatible endpoint say about the archive, in one place.

Both call the same Engine as the JSON API and check their input with the same rules (ui.schemas'
AskRequest: question 1-1000 characters, at most 20 history turns, k 1-20). A citation here is the
engine's Citation plus what a reader needs to find the article again: its url, date and publisher,
taken from the article's metadata in the index.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rag.records import PUBLIC, Answer, Citation, Filters, Hit, Principal

from .engine import EngineLike
from .metrics import count_denial
from .schemas import AskRequest, CitationFields, HitFields

SOURCES_HEADING = "Sources:"
ARTICLE_URI_PREFIX = "archive://articles/"


class ArticleSource(BaseModel):
    """Where a reader finds the article again (from its metadata). Listed first among the bases of a
    model so that these fields follow the record's."""

    url: str | None = None
    date: str | None = None
    publisher: str | None = None

    @staticmethod
    def of(metadata: Mapping[str, Any]) -> dict[str, str | None]:
        def text(*keys: str) -> str | None:
            for key in keys:
                value = metadata.get(key)
                if value not in (None, ""):
                    return str(value)
            return None

        return {"url": text("url", "link"), "date": text("published", "date"), "publisher": text("publisher")}


class CitationOut(ArticleSource, CitationFields):
    """One cited sentence: `quote` is article_text[start:end] of the article `doc_id`."""


class HitOut(ArticleSource, HitFields):
    pass


class AskOut(BaseModel):
    question: str
    standalone_question: str
    answer: str = Field(description="the checked answer with [n] markers, or why there is none")
    refused: bool = Field(description="true when no answer is given (see status)")
    status: str = Field("answered", description="answered; uncertain: passages were found but none states the "
                        "answer surely enough (the closest are in `closest`): the archive may still hold it; "
                        "not_found: nothing in the archive matches the question")
    citations: list[CitationOut]
    closest: list[CitationOut] = Field(default_factory=list, description="for a refusal: the best sentence of "
                                       "each closest passage")


class SearchOut(BaseModel):
    query: str
    hits: list[HitOut]


class SearchFilters(BaseModel):
    """Metadata equality (e.g. {"publisher": "Meduza"} or {"doc_id": ...}) and a published-date range."""

    model_config = ConfigDict(extra="forbid")

    where: dict[str, str] | None = None
    since: str | None = Field(default=None, description="published on or after, YYYY-MM-DD")
    until: str | None = Field(default=None, description="published on or before, YYYY-MM-DD")

    @field_validator("since", "until")
    @classmethod
    def _date(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                dt.date.fromisoformat(v)
            except ValueError:
                raise ValueError(f"expected a date YYYY-MM-DD, got {v!r}") from None
        return v

    def to_filters(self) -> Filters:
        return Filters(self.where or None, self.since, self.until)


class SearchRequest(BaseModel):
    """/api/search: the passages a question retrieves, without an answer."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=1000)
    k: int | None = Field(default=None, ge=1, le=50)
    mode: Literal["dense", "lexical", "hybrid"] | None = None
    filters: SearchFilters | None = None


def ask_request(question: str, history: Sequence[Mapping[str, Any]] = (), k: int | None = None) -> AskRequest:
    """The JSON API's request model: raises pydantic's ValidationError on the same inputs it refuses."""
    return AskRequest.model_validate({"question": question, "history": list(history), "k": k})


def document_source(engine: EngineLike, doc_id: str, hits: Sequence[Hit] = ()) -> dict[str, str | None]:
    """url/date/publisher of an article: from the answer's hits when they hold it, else from the index."""
    for h in hits:
        if h.chunk.doc_id == doc_id:
            return ArticleSource.of(h.chunk.metadata)
    chunks = engine.retriever.store.document_chunks(doc_id)
    return ArticleSource.of(chunks[0].metadata if chunks else {})


def citations_out(engine: EngineLike, answer: Answer, citations: Sequence[Citation]) -> list[CitationOut]:
    return [CitationOut(n=c.n, doc_id=c.doc_id, chunk_id=c.chunk_id, title=c.title, quote=c.quote,
                        start=c.start, end=c.end, correction=c.correction or None,
                        **document_source(engine, c.doc_id, answer.hits))
            for c in citations]


def ask_out(engine: EngineLike, answer: Answer) -> AskOut:
    return AskOut(question=answer.question, standalone_question=answer.standalone_question, answer=answer.text,
                  refused=answer.refused, status=answer.status,
                  citations=citations_out(engine, answer, answer.citations),
                  closest=citations_out(engine, answer, answer.closest))


def hits_out(hits: Sequence[Hit]) -> list[HitOut]:
    return [HitOut(rank=h.rank, score=round(float(h.score), 6), doc_id=h.chunk.doc_id, chunk_id=h.chunk.chunk_id,
                   title=h.chunk.title, start=h.chunk.start, end=h.chunk.end, text=h.chunk.text,
                   **ArticleSource.of(h.chunk.metadata)) for h in hits]


def sources_text(citations: Sequence[CitationOut]) -> str:
    """The "Sources" list placed under an answer in chat clients that show plain text or Markdown."""
    if not citations:
        return ""
    lines = [SOURCES_HEADING]
    for c in citations:
        about = ", ".join(x for x in (c.publisher, c.date) if x)
        line = f"[{c.n}] {c.title}" + (f" ({about})" if about else "") + f": “{c.quote}”"
        if c.url:
            line += f" {c.url}"
        lines.append(line)
    return "\n".join(lines)


def answer_with_sources(out: AskOut) -> str:
    sources = sources_text(out.citations)
    return f"{out.answer.rstrip()}\n\n{sources}" if sources else out.answer


_SOURCES_TAIL = re.compile(r"\n\s*(?:\*\*)?Sources:?(?:\*\*)?\s*\n.*\Z", re.S)


def strip_sources(text: str) -> str:
    """An earlier answer as the engine wrote it: without the Sources list a chat client echoes back."""
    return _SOURCES_TAIL.sub("", text).rstrip()


# -- articles as resources --------------------------------------------------------------------
def article_ids(engine: EngineLike, principal: Principal = PUBLIC) -> list[str]:
    """The articles `principal` may see now."""
    hidden = engine.hidden_documents(principal)
    return [d for d in engine.retriever.store.document_ids() if d not in hidden]


def article(engine: EngineLike, doc_id: str, principal: Principal = PUBLIC
            ) -> tuple[str, str, dict[str, str | None]] | None:
    """(title, text, source) of an indexed article `principal` may see now, or None (also for one it
    may not: the same answer as for no such article). The text is rebuilt from its chunks at their
    offsets, so citation offsets index into it; the whitespace between sentences that no chunk
    holds is a space."""
    reason = engine.denial(doc_id, principal)
    if reason is not None:
        count_denial(reason)
        return None
    chunks = engine.retriever.store.document_chunks(doc_id)
    if not chunks:
        return None
    buf = [" "] * max(c.end for c in chunks)
    for c in chunks:
        buf[c.start:c.end] = c.text
    return chunks[0].title, "".join(buf), ArticleSource.of(chunks[0].metadata)
