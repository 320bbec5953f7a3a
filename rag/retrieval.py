"""Retrieval: dense, lexical (BM25) or hybrid, with metadata filters and diversification.

Hybrid fuses the two rankings (reciprocal rank fusion by default; a weighted sum of normalised
scores is the alternative, measured by eval/bench_retrieval.py), then MMR keeps the top k from
being near-copies of one another (overlapping chunks of one passage).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Mapping

import numpy as np

from .embedding import Embedder
from .errors import ConfigError
from .records import Hit
from .store import Snapshot
from .text import fold

Mode = Literal["dense", "lexical", "hybrid"]
MODES = ("dense", "lexical", "hybrid")
RRF_K = 60


@dataclass(frozen=True)
class Filters:
    """Restrict results: metadata equality (doc_id, publisher, ...) and a published-date range."""

    where: Mapping[str, str] | None = None
    since: str | None = None  # ISO date, inclusive
    until: str | None = None

    def active(self) -> bool:
        return bool(self.where or self.since or self.until)

    def allows(self, doc_id: str, metadata: Mapping[str, Any]) -> bool:
        for key, want in (self.where or {}).items():
            have = doc_id if key in ("doc_id", "id") else metadata.get(key)
            if have is None or fold(str(have)) != fold(str(want)):
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


class Retriever:
    def __init__(self, snapshot: Snapshot, embedder: Embedder, *, mode: Mode = "hybrid",
                 fusion: str = "weighted", mmr_lambda: float = 0.8, alpha: float = 0.3) -> None:
        _check_mode(mode)
        if fusion not in ("rrf", "weighted"):
            raise ConfigError(f"unknown fusion {fusion!r}; expected rrf or weighted")
        self.snapshot = snapshot
        self.embedder = embedder
        self.mode = mode
        self.fusion = fusion
        self.mmr_lambda = mmr_lambda
        self.alpha = alpha  # weight of the dense score in weighted fusion

    @property
    def size(self) -> int:
        return len(self.snapshot.chunks)

    def search(self, query: str, k: int = 5, *, mode: Mode | None = None, filters: Filters | None = None,
               candidates: int = 50, diversify: bool = True) -> list[Hit]:
        mode = mode or self.mode
        _check_mode(mode)
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        if not query.strip() or self.size == 0:
            return []
        allowed = self._allowed(filters)
        if allowed is not None and len(allowed) == 0:
            return []
        pool = max(candidates, 4 * k)
        qvec = self.embedder.embed([query])[0] if mode != "lexical" or diversify else None
        dense = self._dense(qvec, pool, allowed) if mode != "lexical" else {}
        lexical = self._lexical(query, pool, allowed) if mode != "dense" else {}
        if mode == "dense":
            scored = dense
        elif mode == "lexical":
            scored = lexical
        elif self.fusion == "rrf":
            scored = _rrf(dense, lexical)
        else:
            scored = _weighted(dense, lexical, self.alpha)
        ranked = sorted(scored.items(), key=lambda kv: -kv[1])
        if diversify and qvec is not None and self.mmr_lambda < 1.0:
            ranked = self._mmr(ranked, k)
        return [Hit(self.snapshot.chunks[pos], float(score), rank)
                for rank, (pos, score) in enumerate(ranked[:k], start=1)]

    def _allowed(self, filters: Filters | None) -> np.ndarray | None:
        if filters is None or not filters.active():
            return None
        chunks = self.snapshot.chunks
        return np.array([i for i, c in enumerate(chunks) if filters.allows(c.doc_id, c.metadata)], dtype=np.int64)

    def _dense(self, qvec: np.ndarray, n: int, allowed: np.ndarray | None) -> dict[int, float]:
        scores, ids = self.snapshot.dense.search(qvec[None, :], n, allowed)
        return {int(i): float(s) for s, i in zip(scores[0], ids[0]) if i >= 0}

    def _lexical(self, query: str, n: int, allowed: np.ndarray | None) -> dict[int, float]:
        scores = self.snapshot.lexical.scores(query)
        if allowed is not None:
            masked = np.full_like(scores, -1.0)
            masked[allowed] = scores[allowed]
            scores = masked
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
        return {int(i): float(scores[i]) for i in top if scores[i] > 0}

    def _mmr(self, ranked: list[tuple[int, float]], k: int) -> list[tuple[int, float]]:
        """Maximal marginal relevance over the fused list; relevance is the fused score scaled to [0, 1]."""
        if len(ranked) <= 1:
            return ranked
        top = ranked[: max(4 * k, 20)]
        scores = np.array([s for _, s in top])
        lo, hi = scores.min(), scores.max()
        rel = (scores - lo) / (hi - lo) if hi > lo else np.ones_like(scores)
        vecs = self.snapshot.vectors[[p for p, _ in top]]
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


def _rrf(*rankings: dict[int, float]) -> dict[int, float]:
    fused: dict[int, float] = {}
    for scores in rankings:
        for rank, pos in enumerate(sorted(scores, key=lambda p: -scores[p]), start=1):
            fused[pos] = fused.get(pos, 0.0) + 1.0 / (RRF_K + rank)
    return fused


def _weighted(dense: dict[int, float], lexical: dict[int, float], alpha: float) -> dict[int, float]:
    def norm(scores: dict[int, float]) -> dict[int, float]:
        if not scores:
            return {}
        lo, hi = min(scores.values()), max(scores.values())
        return {p: (s - lo) / (hi - lo) if hi > lo else 1.0 for p, s in scores.items()}

    d, l = norm(dense), norm(lexical)
    return {p: alpha * d.get(p, 0.0) + (1 - alpha) * l.get(p, 0.0) for p in set(d) | set(l)}
