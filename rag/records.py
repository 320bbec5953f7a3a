"""The typed records that flow through the engine: Document -> Chunk -> Candidate -> Hit -> Answer,
with the search settings (Mode, Filters) and the answer stream's events (Draft, Final)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeAlias

import numpy as np

from .text import fold, spelled_values

Mode = Literal["dense", "lexical", "hybrid"]
MODES: tuple[Mode, ...] = ("dense", "lexical", "hybrid")
Fusion = Literal["rrf", "weighted"]


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

    @property
    def date(self) -> str:
        """The article's publication date (YYYY-MM-DD) from its metadata, or "" when it has none."""
        return str(self.metadata.get("published") or self.metadata.get("date") or "")[:10]

    @property
    def correction(self) -> str:
        """The correction the article carries (rag/loaders/rules.py), or ""."""
        return str(self.metadata.get("correction") or "")


@dataclass(frozen=True)
class Principal:
    """Who asks: a name for logs and metrics (never a token) and the desks whose articles it may see.
    No credentials is the public principal: no desks."""

    name: str = "public"
    desks: frozenset[str] = frozenset()

    @classmethod
    def of(cls, name: str, desks: Iterable[str]) -> Principal:
        return cls(name, frozenset(desk_key(d) for d in desks if d.strip()))

    @classmethod
    def trusted(cls, where: str, values: Iterable[str]) -> Principal:
        """The principal a local command names (`--as DESK`, repeated or comma-separated); none: the public."""
        desks = [d for value in values for d in value.split(",") if d.strip()]
        return cls.of(f"{where}:" + ",".join(desks), desks) if desks else PUBLIC


PUBLIC = Principal()
DENIALS = ("retracted", "embargo", "desk")  # why a document is hidden, for counting (never its content)


def desk_key(name: str) -> str:
    """A desk name as compared: case and surrounding space do not matter."""
    return name.strip().lower()


def utc_stamp(when: datetime) -> str:
    """A time as rag/loaders/rules.py stores `embargo_until`: UTC, `YYYY-MM-DDTHH:MM:SSZ` (compares as text)."""
    if when.tzinfo is None:
        raise ValueError(f"a time without a zone: {when!r}")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Access:
    """What one request may see, fixed when it starts: the principal's desks at time `now`.
    Every store applies it before ranking (issue 25): a retracted article is hidden from everyone,
    an embargoed one until `now` passes its `embargo_until`, a desk article from principals
    without one of its desks."""

    desks: frozenset[str]
    now: str  # utc_stamp

    @classmethod
    def of(cls, principal: Principal, when: datetime) -> Access:
        return cls(principal.desks, utc_stamp(when))

    def denial(self, metadata: Mapping[str, Any]) -> str | None:
        """Why a document with this metadata is hidden (one of DENIALS), or None when it is visible."""
        if str(metadata.get("status") or "").strip().lower() == "retracted":
            return "retracted"
        until = metadata.get("embargo_until")
        if until and str(until) > self.now:
            return "embargo"
        desks = metadata.get("desks")
        if desks:
            names = desks.split(",") if isinstance(desks, str) else desks
            if not {desk_key(str(d)) for d in names} & self.desks:
                return "desk"
        return None


RULE_KEYS = ("status", "embargo_until", "desks")  # metadata an Access reads


def ruled(metadata: Mapping[str, Any]) -> bool:
    """Whether some Access could hide a document with this metadata."""
    return bool(metadata.get("embargo_until") or metadata.get("desks")
                or str(metadata.get("status") or "").strip().lower() == "retracted")


@dataclass(frozen=True)
class Filters:
    """Restrict results: metadata equality (doc_id, publisher, ...) and a published-date range.
    Values compare folded (rag.text.fold), "đ" in either spelling (rag.text.spelled_values), as search does.
    `access`: who asks and when; stores apply it whether or not the rest is active."""

    where: Mapping[str, str] | None = None
    since: str | None = None  # ISO date, inclusive
    until: str | None = None
    access: Access | None = None

    def active(self) -> bool:
        """Whether the metadata and date part restricts anything (`access` is applied apart)."""
        return bool(self.where or self.since or self.until)

    def allows(self, doc_id: str, metadata: Mapping[str, Any]) -> bool:
        if self.access is not None and self.access.denial(metadata):
            return False
        for key, want in (self.where or {}).items():
            have = doc_id if key in ("doc_id", "id") else metadata.get(key)
            items = have if isinstance(have, (list, tuple)) else () if have is None else (have,)
            forms = spelled_values(str(want))
            if not any(fold(str(x)) in forms for x in items):  # a list matches by any of its items
                return False
        if self.since or self.until:
            published = str(metadata.get("published") or "")[:10]
            if not published:
                return False  # undated articles cannot be shown to fall inside a range
            if self.since and published < self.since[:10]:
                return False
            if self.until and published > self.until[:10]:
                return False
        return True


@dataclass(frozen=True)
class Candidate:
    """A chunk a store's first-stage search ranked, its (fused) score and its unit-length vector."""

    chunk: Chunk
    score: float
    vector: np.ndarray


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
    date: str = ""  # the article's publication date, when its metadata has one
    correction: str = ""  # the article's correction, when it has been corrected

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "date": self.date or None, "correction": self.correction or None}


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of a conversation."""

    question: str
    answer: str


ANSWERED, UNCERTAIN, NOT_FOUND = "answered", "uncertain", "not_found"


@dataclass(frozen=True)
class Answer:
    """`status`: "answered"; "uncertain" (passages were found but none states an answer surely
    enough: the closest are given, their best sentences in `closest`); or "not_found" (retrieval
    found nothing that matches the question). `refused` is true for both of the latter."""

    question: str
    standalone_question: str
    text: str
    refused: bool
    citations: tuple[Citation, ...] = ()
    hits: tuple[Hit, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)
    confidence: float = 0.0  # the decision's probability that the answer is right
    candidate: str = ""  # the answer it would give (also for a refusal: what fell below the threshold)
    status: str = ANSWERED
    closest: tuple[Citation, ...] = ()  # for a refusal: the best sentence of each closest passage
    decision: Mapping[str, float] = field(default_factory=dict)  # the decision's features
    prompt_tokens: int = 0  # what the model read (0 when it was not asked)
    reply: str = ""  # the model's reply as it wrote it, before it was checked

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "standalone_question": self.standalone_question,
            "answer": self.text,
            "refused": self.refused,
            "status": self.status,
            "citations": [c.to_json() for c in self.citations],
            "closest": [c.to_json() for c in self.closest],
            "hits": [h.to_json() for h in self.hits],
            "confidence": round(float(self.confidence), 4),
            "candidate": self.candidate,
            "decision": {k: round(float(v), 4) for k, v in self.decision.items()},
            "prompt_tokens": self.prompt_tokens,
            "reply": self.reply,
            "timings": {k: round(float(v), 4) for k, v in self.timings.items()},
        }


@dataclass(frozen=True)
class Draft:
    """A piece of the model's draft, as it writes it (shown while the engine checks the reply)."""

    text: str


@dataclass(frozen=True)
class Final:
    """The checked answer: always the last event of an answer stream."""

    answer: Answer


# What Engine.ask_stream yields: Draft pieces, then one Final. Consumers `match` on the two.
Event: TypeAlias = Draft | Final
