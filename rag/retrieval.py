"""Retrieval: dense, lexical (BM25) or hybrid, with metadata filters and diversification.

Hybrid fuses the two rankings (reciprocal rank fusion by default; a weighted sum of normalised
scores is the alternative, measured by eval/bench/retrieval.py), then MMR keeps the top k from
being near-copies of one another (overlapping chunks of one passage).
"""

from __future__ import annotations

import numpy as np

from .embedding import Embedder
from .errors import ConfigError
from .records import MODES, Candidate, Filters, Hit, Mode
from .store import EmbeddedStore, Snapshot
from .store.base import Store


class Retriever:
    """First-stage search on a Store (embedded snapshot or PostgreSQL), then MMR over the candidates."""

    def __init__(self, source: Snapshot | Store, embedder: Embedder, *, mode: Mode = "hybrid",
                 fusion: str = "weighted", mmr_lambda: float = 0.8, alpha: float = 0.3) -> None:
        _check_mode(mode)
        if fusion not in ("rrf", "weighted"):
            raise ConfigError(f"unknown fusion {fusion!r}; expected rrf or weighted")
        self.store: Store = EmbeddedStore(source) if isinstance(source, Snapshot) else source
        self.embedder = embedder
        self.mode = mode
        self.fusion = fusion
        self.mmr_lambda = mmr_lambda
        self.alpha = alpha  # weight of the dense score in weighted fusion

    @property
    def snapshot(self) -> Snapshot:
        """The in-memory snapshot (embedded store only)."""
        if not isinstance(self.store, EmbeddedStore):
            raise ConfigError(f"the store {self.store.version} has no in-memory snapshot; use retriever.store")
        return self.store.snapshot

    @property
    def size(self) -> int:
        return self.store.counts()["chunks"]

    def search(self, query: str, k: int = 5, *, mode: Mode | None = None, filters: Filters | None = None,
               candidates: int = 50, diversify: bool = True) -> list[Hit]:
        mode = mode or self.mode
        _check_mode(mode)
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        if not query.strip():
            return []
        pool = max(candidates, 4 * k)
        qvec = self.embedder.embed([query])[0] if mode != "lexical" or diversify else None
        ranked = self.store.search(query, qvec, pool, mode=mode, fusion=self.fusion, alpha=self.alpha,
                                   filters=filters)
        if diversify and qvec is not None and self.mmr_lambda < 1.0:
            ranked = self._mmr(ranked, k)
        return [Hit(c.chunk, float(c.score), rank) for rank, c in enumerate(ranked[:k], start=1)]

    def _mmr(self, ranked: list[Candidate], k: int) -> list[Candidate]:
        """Maximal marginal relevance over the fused list; relevance is the fused score scaled to [0, 1]."""
        if len(ranked) <= 1:
            return ranked
        top = ranked[: max(4 * k, 20)]
        scores = np.array([c.score for c in top])
        lo, hi = scores.min(), scores.max()
        rel = (scores - lo) / (hi - lo) if hi > lo else np.ones_like(scores)
        vecs = np.stack([c.vector for c in top]).astype(np.float32, copy=False)
        chosen: list[int] = []
        left = list(range(len(top)))
        while left and len(chosen) < k:
            if chosen:
                sim = (vecs[left] @ vecs[chosen].T).max(axis=1)
                mmr = self.mmr_lambda * rel[left] - (1 - self.mmr_lambda) * sim
                best = left[int(np.argmax(mmr))]
            else:
                best = left[0]
            chosen.append(best)
            left.remove(best)
        return [top[i] for i in chosen] + [top[i] for i in left] + ranked[len(top):]


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ConfigError(f"unknown retrieval mode {mode!r}; expected one of {', '.join(MODES)}")
