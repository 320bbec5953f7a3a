"""The store role: what retrieval, the archive pages and health need from wherever chunks live.

Two backends: `EmbeddedStore` (rag/store/embedded.py, a snapshot folder read into memory by one
process) and `PostgresStore` (rag/store/postgres.py, tables on a PostgreSQL server that many app
servers share). Both answer one search with scored candidates and their vectors, so the Retriever
does the same diversification (MMR) on top of either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from ..records import Chunk

if TYPE_CHECKING:
    from ..retrieval import Filters

Mode = Literal["dense", "lexical", "hybrid"]
Fusion = Literal["rrf", "weighted"]
RRF_K = 60


@dataclass(frozen=True)
class Candidate:
    """A chunk a first-stage search ranked, its (fused) score and its unit-length vector."""

    chunk: Chunk
    score: float
    vector: np.ndarray


class Store(Protocol):
    """Ranked candidates for a query, and the documents behind them."""

    def search(self, query: str, qvec: np.ndarray | None, n: int, *, mode: Mode, fusion: Fusion,
               alpha: float, filters: "Filters | None") -> list[Candidate]:
        """The best candidates, best first: dense and lexical top-`n` fused (or one of them)."""
        ...

    def document_ids(self) -> list[str]: ...

    def document_chunks(self, doc_id: str) -> list[Chunk]:
        """A document's chunks in text order; empty when it is not in the store."""
        ...

    def counts(self) -> dict[str, int]:
        """{"documents": n, "chunks": n}"""
        ...

    @property
    def version(self) -> str:
        """Changes whenever the content does (caches key on it); also names where the store is."""
        ...


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

    d, l = norm(dense), norm(lexical)
    return {p: alpha * d.get(p, 0.0) + (1 - alpha) * l.get(p, 0.0) for p in set(d) | set(l)}


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
