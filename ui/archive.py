"""What the MCP server and the OpenAI-compatible endpoint say about the archive, in one place.

Both call the same Engine as the JSON API and check their input with the same rules (ui.api's
AskRequest: question 1-1000 characters, at most 20 history turns, k 1-20). A citation here is the
engine's Citation plus what a reader needs to find the article again: its url, date and publisher,
taken from the article's metadata in the index.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import api

SOURCES_HEADING = "Sources:"
ARTICLE_URI_PREFIX = "archive://articles/"


class CitationOut(BaseModel):
    """One cited sentence: `quote` is article_text[start:end] of the article `doc_id`."""

    n: int
    doc_id: str
    chunk_id: str
    title: str
    quote: str
    start: int
    end: int
    url: str | None = None
    date: str | None = None
    publisher: str | None = None


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


class HitOut(BaseModel):
    rank: int
    score: float
    doc_id: str
    chunk_id: str
    title: str
    start: int
    end: int
    text: str
    url: str | None = None
    date: str | None = None
    publisher: str | None = None


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

    def to_filters(self):  # noqa: ANN201 - rag.retrieval.Filters
        from rag.retrieval import Filters

        return Filters(self.where or None, self.since, self.until)


def validation_message(exc: ValidationError) -> str:
    """The API's 422 message for the same mistake ("question: question must not be empty")."""
    parts = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e.get("loc", ()))
        msg = str(e.get("msg", "invalid value")).removeprefix("Value error, ")
        parts.append(f"{loc or 'body'}: {msg}")
    return "; ".join(parts) or "invalid request"


def ask_request(question: str, history: Sequence[Mapping[str, Any]] = (), k: int | None = None) -> api.AskRequest:
    """The JSON API's request model: raises pydantic's ValidationError on the same inputs it refuses."""
    return api.AskRequest.model_validate({"question": question, "history": list(history), "k": k})


def _meta(hit_metadata: Mapping[str, Any]) -> dict[str, str | None]:
    def text(*keys: str) -> str | None:
        for key in keys:
            value = hit_metadata.get(key)
            if value not in (None, ""):
                return str(value)
        return None

    return {"url": text("url", "link"), "date": text("published", "date"), "publisher": text("publisher")}


def document_metadata(engine: Any, doc_id: str, hits: Sequence[Any] = ()) -> dict[str, str | None]:
    """url/date/publisher of an article: from the answer's hits when they hold it, else from the index."""
    for h in hits:
        if h.chunk.doc_id == doc_id:
            return _meta(h.chunk.metadata)
    chunks = engine.retriever.store.document_chunks(doc_id)
    return _meta(chunks[0].metadata) if chunks else _meta({})


def citations_out(engine: Any, answer: Any, citations: Sequence[Any] | None = None) -> list[CitationOut]:
    return [CitationOut(n=c.n, doc_id=c.doc_id, chunk_id=c.chunk_id, title=c.title, quote=c.quote,
                        start=c.start, end=c.end, **document_metadata(engine, c.doc_id, answer.hits))
            for c in (answer.citations if citations is None else citations)]


def ask_out(engine: Any, answer: Any) -> AskOut:
    return AskOut(question=answer.question, standalone_question=answer.standalone_question, answer=answer.text,
                  refused=answer.refused, status=answer.status, citations=citations_out(engine, answer),
                  closest=citations_out(engine, answer, answer.closest))


def hits_out(hits: Sequence[Any]) -> list[HitOut]:
    return [HitOut(rank=h.rank, score=round(float(h.score), 6), doc_id=h.chunk.doc_id, chunk_id=h.chunk.chunk_id,
                   title=h.chunk.title, start=h.chunk.start, end=h.chunk.end, text=h.chunk.text,
                   **_meta(h.chunk.metadata)) for h in hits]


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
def article_ids(engine: Any) -> list[str]:
    return engine.retriever.store.document_ids()


def article(engine: Any, doc_id: str) -> tuple[str, str, dict[str, str | None]] | None:
    """(title, text, metadata) of an indexed article, or None. The text is rebuilt from its chunks at
    their offsets, so citation offsets index into it; the whitespace between sentences that no chunk
    holds is a space."""
    chunks = engine.retriever.store.document_chunks(doc_id)
    if not chunks:
        return None
    buf = [" "] * max(c.end for c in chunks)
    for c in chunks:
        buf[c.start:c.end] = c.text
    return chunks[0].title, "".join(buf), _meta(chunks[0].metadata)
