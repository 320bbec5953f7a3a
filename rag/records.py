"""The typed records that flow through the engine: Document -> Chunk -> Hit -> Answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class Document:
    """A cleaned article. `text` is what chunk offsets point into."""

    doc_id: str
    text: str
    title: str = ""
    source: str = ""  # file path (and line for .jsonl) it came from
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Chunk:
    """A contiguous span of a document: doc.text[start:end] == text."""

    doc_id: str
    chunk_id: str
    start: int
    end: int
    text: str
    title: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    """A chunk returned by retrieval, ranked from 1."""

    chunk: Chunk
    score: float
    rank: int

    def to_json(self) -> dict[str, Any]:
        c = self.chunk
        return {
            "rank": self.rank,
            "score": round(float(self.score), 6),
            "doc_id": c.doc_id,
            "title": c.title,
            "chunk_id": c.chunk_id,
            "start": c.start,
            "end": c.end,
            "text": c.text,
            "metadata": dict(c.metadata),
        }


@dataclass(frozen=True)
class Citation:
    """The exact sentence of a document an answer sentence rests on."""

    n: int
    doc_id: str
    title: str
    chunk_id: str
    quote: str
    start: int  # offsets of `quote` in the document text
    end: int

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "doc_id": self.doc_id,
            "title": self.title,
            "chunk_id": self.chunk_id,
            "quote": self.quote,
            "start": self.start,
            "end": self.end,
        }


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of a conversation."""

    question: str
    answer: str


@dataclass(frozen=True)
class Answer:
    question: str
    standalone_question: str
    text: str
    refused: bool
    citations: tuple[Citation, ...] = ()
    hits: tuple[Hit, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)
    confidence: float = 0.0  # the reader's probability that the best candidate sentence answers
    candidate: str = ""  # that sentence (also for a refusal: what fell below the threshold)

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "standalone_question": self.standalone_question,
            "answer": self.text,
            "refused": self.refused,
            "citations": [c.to_json() for c in self.citations],
            "hits": [h.to_json() for h in self.hits],
            "confidence": round(float(self.confidence), 4),
            "candidate": self.candidate,
            "timings": {k: round(float(v), 4) for k, v in self.timings.items()},
        }
