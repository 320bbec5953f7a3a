"""Evaluators: given an engine, measure it on a question set and return the figures.

As sentence-transformers' evaluators do: built from the data, called with what is measured.
    AnswerEvaluator     every item through `engine.ask`: the figures of `rag eval` (eval/scoring.py)
    RetrievalEvaluator  recall@k and MRR of a search over the answerable items with evidence: the one
                        recall loop of the retrieval benchmarks (eval/bench/)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from eval.metrics import retrieval_metrics
from eval.qa import QAItem
from eval.scoring import compute_metrics, result_row, right
from rag.records import Hit


def asked_top_k(engine: Any) -> int | None:
    """How many hits the engine is asked for (settings.top_k): recall@k above it is not measured."""
    top_k = getattr(engine.settings, "top_k", None)
    return int(top_k) if top_k is not None else None


@dataclass(frozen=True)
class AnswerEvaluator:
    """Answers every item with `engine.ask(question, history)` (the follow-up history replayed as
    written, exactly as a user's question would go) and scores each `Answer.to_json()`."""

    items: Sequence[QAItem]
    progress: bool = True  # a tqdm bar on stderr with the running count of right answers

    def rows(self, engine: Any, on_row: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
        """The scored result rows in item order; `on_row` sees each as soon as it is scored (so a run
        that is stopped half-way leaves what it answered)."""
        from tqdm import tqdm

        rows: list[dict[str, Any]] = []
        n_right = 0
        with tqdm(self.items, desc="eval", unit="q", disable=not self.progress, file=sys.stderr) as bar:
            for item in bar:
                row = result_row(item, engine.ask(item.question, item.history).to_json())
                rows.append(row)
                if on_row is not None:
                    on_row(row)
                n_right += right(row)
                bar.set_postfix(right=f"{n_right}/{len(rows)}")
        return rows

    def evaluate(self, engine: Any, on_row: Callable[[dict[str, Any]], None] | None = None,
                 ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """(rows, figures): the scored rows and {"overall": ..., "by_category": ...}."""
        rows = self.rows(engine, on_row)
        return rows, compute_metrics(rows, top_k=asked_top_k(engine))

    def __call__(self, engine: Any) -> dict[str, Any]:
        return self.evaluate(engine)[1]


class Searcher(Protocol):
    def search(self, query: str, k: int) -> Sequence[Hit]: ...


@dataclass(frozen=True)
class RetrievalEvaluator:
    """recall@1/3/5/10 and MRR (eval.metrics.retrieval_metrics) of the top `k` hits per question,
    over the answerable items that have evidence; "search_s" is the time spent searching, all
    questions together. Follow-ups are searched with the standalone question the engine rewrites
    them into."""

    items: Sequence[QAItem]
    k: int = 10

    @classmethod
    def of(cls, items: Sequence[QAItem], k: int = 10) -> RetrievalEvaluator:
        """The evaluator over the items that can be scored: answerable, with evidence."""
        return cls(tuple(i for i in items if i.answerable and i.evidence), k)

    def queries(self, engine: Any) -> list[str]:
        return [engine.standalone_question(i.question, i.history) for i in self.items]

    def __call__(self, engine: Any, *, searcher: Searcher | None = None,
                 queries: Sequence[str] | None = None) -> dict[str, float]:
        """Search with `searcher` (default: the engine) for `queries` (default: self.queries(engine),
        worth computing once when several searchers are compared)."""
        searcher = searcher or engine
        queries = self.queries(engine) if queries is None else queries
        t = time.perf_counter()
        found = [[h.chunk.text for h in searcher.search(q, self.k)] for q in queries]
        seconds = time.perf_counter() - t
        return {**retrieval_metrics(found, [i.evidence for i in self.items]), "search_s": seconds}
