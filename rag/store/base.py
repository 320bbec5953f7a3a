"""The store contract: `Store`, what retrieval, the archive pages and health read from wherever
chunks live, and `StoreWriter`, how an ingest's plan (rag/ingest.py) is applied to it.

Three backends, one file each: the snapshot folder (rag/store/embedded.py, read into memory by one
process), the disk store (rag/store/disk.py, SQLite + FAISS files, the default) and PostgreSQL
(rag/store/postgres.py, tables that many app servers share). All answer one search with scored
candidates and their vectors, so the Retriever does the same diversification (MMR) on top of any.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Container, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol

import numpy as np

from ..errors import IndexMismatchError
from ..ingest import Action, Indexed, Job, Written
from ..lexical import TOKENIZER_VERSION
from ..records import Access, Candidate, Chunk, Document, Filters, Fusion, Mode, ruled
from ..text import fold, spelled_values

RRF_K = 60


class Store(Protocol):
    """Ranked candidates for a query, and the documents behind them."""

    def search(self, query: str, qvec: np.ndarray | None, n: int, *, mode: Mode, fusion: Fusion,
               alpha: float, filters: Filters | None) -> list[Candidate]:
        """The best candidates, best first: dense and lexical top-`n` fused (or one of them)."""
        ...

    def document_ids(self) -> list[str]: ...

    def document_chunks(self, doc_id: str) -> list[Chunk]:
        """A document's chunks in text order; empty when it is not in the store."""
        ...

    def counts(self) -> dict[str, int]:
        """{"documents": n, "chunks": n}"""
        ...

    def ruled(self) -> Ruled:
        """The documents some Access could hide, of the live version (Filters.access in `search`
        hides them before ranking; the archive listing, counts and examples ask this)."""
        ...

    @property
    def version(self) -> str:
        """Changes whenever the content does (caches key on it); also names where the store is."""
        ...


class StoreWriter(Protocol):
    """Applies an ingest's plan to one store; all the rules are the plan's. Used as a context
    manager: leaving it without `finish` undoes what was written (where the store can)."""

    def begin(self, job: Job) -> tuple[Mapping[str, Indexed], Container[str]]:
        """Open for writing and check the store was built with the job's settings (a rebuild may
        change them). Returns the documents the archive holds and those whose rows can stay."""
        ...

    def put(self, doc: Document, digest: str, action: Action) -> None:
        """A loaded document and what the plan decided for it."""
        ...

    def finish(self, kept: Sequence[str], dropped: Sequence[str]) -> Written:
        """Keep `kept` (indexed, not given), remove `dropped`, and make the change live at once."""
        ...

    def __enter__(self) -> StoreWriter: ...

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...


class Ruled:
    """The documents of one store version that carry a rule (rag.records.ruled), their chunk
    positions in the store's dense and lexical indexes, and which of them an Access hides.

    Built once per version from the few documents with rules, so a search pays nothing for an
    archive without them. What an Access hides changes only with its desks and with how many
    embargoes have passed, so it is remembered under that key (the clock moves every request)."""

    MEMORY = 64

    def __init__(self, docs: Iterable[tuple[str, Mapping[str, object], np.ndarray | int]]) -> None:
        # (doc_id, metadata, chunk positions or, where the store has none, the number of chunks)
        self.docs = [(d, m, p) for d, m, p in docs if ruled(m)]
        self._embargoes = sorted(str(m["embargo_until"]) for _, m, _ in self.docs if m.get("embargo_until"))
        self._memo: dict[tuple, tuple[frozenset[str], np.ndarray, int]] = {}
        self._lock = threading.Lock()

    def _hidden(self, access: Access) -> tuple[frozenset[str], np.ndarray, int]:
        key = (access.desks, bisect.bisect_right(self._embargoes, access.now))
        with self._lock:
            got = self._memo.get(key)
        if got is None:
            denied = [(d, p) for d, m, p in self.docs if access.denial(m)]
            arrays = [p for _, p in denied if isinstance(p, np.ndarray)]
            positions = np.unique(np.concatenate(arrays)).astype(np.int64) if arrays else np.zeros(0, np.int64)
            chunks = sum(len(p) if isinstance(p, np.ndarray) else int(p) for _, p in denied)
            got = (frozenset(d for d, _ in denied), positions, chunks)
            with self._lock:
                if len(self._memo) >= self.MEMORY:
                    self._memo.clear()
                self._memo[key] = got
        return got

    def denial(self, doc_id: str, access: Access | None) -> str | None:
        """Why `access` may not see the document (rag.records.DENIALS), or None."""
        if access is None:
            return None
        meta = next((m for d, m, _ in self.docs if d == doc_id), None)
        return access.denial(meta) if meta is not None else None

    def hidden_documents(self, access: Access | None) -> frozenset[str]:
        return self._hidden(access)[0] if access is not None and self.docs else frozenset()

    def hidden_positions(self, access: Access | None) -> np.ndarray | None:
        """Chunk positions `access` may not see; None when it sees everything."""
        if access is None or not self.docs:
            return None
        positions = self._hidden(access)[1]
        return positions if len(positions) else None

    def visible_counts(self, counts: Mapping[str, int], access: Access | None) -> dict[str, int]:
        """The store's counts less what `access` may not see (a count must not reveal an embargoed story)."""
        if access is None or not self.docs:
            return dict(counts)
        docs, _, chunks = self._hidden(access)
        return {"documents": counts["documents"] - len(docs), "chunks": counts["chunks"] - chunks}


def not_hidden(ids: Sequence[int] | np.ndarray, hidden: np.ndarray | None) -> np.ndarray:
    """A mask over `ids`: True where the id is not among `hidden` (sorted, as Ruled gives it)."""
    ids = np.asarray(ids, dtype=np.int64)
    if hidden is None or not len(hidden) or not len(ids):
        return np.ones(len(ids), dtype=bool)
    at = np.minimum(np.searchsorted(hidden, ids), len(hidden) - 1)
    return hidden[at] != ids


def check_compatible(built: Mapping[str, Any], *, embedder_id: str, chunking: dict, where: str,
                     unset_ok: bool = False) -> None:
    """Refuse to mix vectors or chunks made with other settings, and say how to rebuild. `built`:
    the store's record of its "embedder", "chunking" and "tokenizer"; `where`: "the index at DIR" or
    "the store URL"; `unset_ok`: a setting the store has no record of yet passes (a new database)."""
    for key, want, name in (("embedder", embedder_id, "embedder"), ("chunking", chunking, "chunking"),
                            ("tokenizer", TOKENIZER_VERSION, "lexical tokenizer")):
        have = built.get(key)
        if have != want and not (have is None and unset_ok):
            raise IndexMismatchError(f"{where} was built with {name} {have!r}, but the configured {name} is "
                                     f"{want!r}; rebuild it with `rag ingest --rebuild`")


def folded_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """What filters compare a document's metadata with (the stores' meta_folded): each value folded
    (rag.text.fold), a list as a list of folded values, so that a filter matches any of its items
    (`desks`, `tags`, `categories`)."""
    return {str(k): [fold(str(x)) for x in v] if isinstance(v, (list, tuple)) else fold(str(v))
            for k, v in metadata.items() if v is not None}


def filter_sql(filters: Filters | None, *, alias: str, param: str, member: str, true: str) -> tuple[str, list[Any]]:
    """Filters as a SQL predicate over a row `alias` that has doc_key, meta_folded and published
    columns, in one dialect: `param` the placeholder, `member` the predicate "the value of metadata
    key {key}, or one of its items when it is a list, is one of ({values})" (with {alias}), `true`
    the always-true predicate. Values compare folded, "đ" in either spelling, as Filters.allows does."""
    if filters is None or not filters.active():
        return true, []
    parts: list[str] = []
    args: list[Any] = []
    for key, want in (filters.where or {}).items():
        forms = spelled_values(str(want))
        values = ", ".join([param] * len(forms))
        if key in ("doc_id", "id"):
            parts.append(f"{alias}.doc_key IN ({values})")
        else:
            parts.append(member.format(alias=alias, key=param, values=values))
            args.append(str(key))
        args += forms
    if filters.since or filters.until:
        parts.append(f"{alias}.published <> ''")  # undated articles cannot be shown to fall inside a range
    if filters.since:
        parts.append(f"{alias}.published >= {param}")
        args.append(filters.since[:10])
    if filters.until:
        parts.append(f"{alias}.published <= {param}")
        args.append(filters.until[:10])
    return " AND ".join(parts), args


def rrf(*rankings: dict[int, float]) -> dict[int, float]:
    fused: dict[int, float] = {}
    for scores in rankings:
        for rank, pos in enumerate(sorted(scores, key=lambda p: -scores[p]), start=1):
            fused[pos] = fused.get(pos, 0.0) + 1.0 / (RRF_K + rank)
    return fused


def weighted(dense: dict[int, float], lexical: dict[int, float], alpha: float) -> dict[int, float]:
    """alpha * dense + (1 - alpha) * lexical, each min-max normalised over its own candidates."""

    def norm(scores: dict[int, float]) -> dict[int, float]:
        if not scores:
            return {}
        lo, hi = min(scores.values()), max(scores.values())
        return {p: (s - lo) / (hi - lo) if hi > lo else 1.0 for p, s in scores.items()}

    d, lex = norm(dense), norm(lexical)
    return {p: alpha * d.get(p, 0.0) + (1 - alpha) * lex.get(p, 0.0) for p in set(d) | set(lex)}


def fuse(dense: dict[int, float], lexical: dict[int, float], *, mode: Mode, fusion: Fusion,
         alpha: float) -> list[tuple[int, float]]:
    """(id, score) best first: one side alone in a single mode, else the two fused."""
    if mode == "dense":
        scored = dense
    elif mode == "lexical":
        scored = lexical
    elif fusion == "rrf":
        scored = rrf(dense, lexical)
    else:
        scored = weighted(dense, lexical, alpha)
    return sorted(scored.items(), key=lambda kv: -kv[1])
