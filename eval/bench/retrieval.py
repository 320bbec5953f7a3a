"""Retrieval quality of each mode and fusion on the evaluation set (a benchmark, not a test).

    .venv/bin/python -m eval.bench.retrieval [--qa eval/qa.jsonl] [--out eval/RETRIEVAL.md]

Builds a fresh index of corpus/ in a temporary folder, then reports recall@1/3/5/10 and MRR for
dense, lexical and hybrid retrieval (RRF and weighted fusion, with and without MMR).
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

from eval.evaluators import RetrievalEvaluator
from eval.paths import CORPUS_DIR, DEFAULT_QA, EVAL_DIR
from eval.qa import load_qa
from rag.config import load_settings
from rag.pipeline import Engine
from rag.records import Mode
from rag.retrieval import Retriever


@dataclass(frozen=True)
class Variant:
    """One retrieval configuration: mode, fusion (hybrid only), its α, and MMR's λ (1: off)."""

    mode: Mode
    fusion: str = "rrf"
    alpha: float = 0.0
    mmr_lambda: float = 1.0

    @property
    def fusion_label(self) -> str:
        if self.mode != "hybrid":
            return "-"
        return f"weighted α={self.alpha}" if self.fusion == "weighted" else self.fusion

    @property
    def mmr_label(self) -> str:
        return f"λ={self.mmr_lambda}" if self.mmr_lambda < 1 else "off"

    def retriever(self, engine: Engine) -> Retriever:
        """A retriever of this variant over the engine's store and embedder."""
        return Retriever(engine.retriever.store, engine.embedder, mode=self.mode, fusion=self.fusion,
                         mmr_lambda=self.mmr_lambda, alpha=self.alpha)


VARIANTS = (
    Variant("dense"),
    Variant("lexical"),
    Variant("hybrid", "rrf"),
    Variant("hybrid", "rrf", mmr_lambda=0.8),
    Variant("hybrid", "weighted", 0.5),
    Variant("hybrid", "weighted", 0.3),
    Variant("hybrid", "weighted", 0.3, 0.8),
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--qa", default=DEFAULT_QA, type=Path)
    ap.add_argument("--out", default=EVAL_DIR / "RETRIEVAL.md", type=Path)
    ap.add_argument("-k", type=int, default=10)
    args = ap.parse_args()

    evaluator = RetrievalEvaluator.of(load_qa(args.qa), k=args.k)
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(load_settings(index_dir=Path(tmp) / "index"))
        engine.ingest([CORPUS_DIR])
        queries = evaluator.queries(engine)
        rows = []
        for v in VARIANTS:
            m = evaluator(engine, searcher=v.retriever(engine), queries=queries)
            rows.append((v, m, m["search_s"] / len(queries) * 1000))
    s = engine.settings
    lines = [
        f"Retrieval on {args.qa.name}: {len(evaluator.items)} answerable questions with evidence "
        f"(follow-ups use the engine's standalone rewrite). Index: corpus/, "
        f"{engine.retriever.store.counts()['chunks']} chunks.",
        "",
        f"Defaults: mode {s.retrieval_mode}, fusion {s.fusion} α={s.hybrid_alpha}, MMR λ={s.mmr_lambda}, chunks "
        f"{s.chunk_tokens}/{s.chunk_overlap} tokens.",
        "",
        "| mode | fusion | MMR | recall@1 | recall@3 | recall@5 | recall@10 | MRR | ms/query |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for v, m, ms in rows:
        lines.append(f"| {v.mode} | {v.fusion_label} | {v.mmr_label} | {m['recall@1']:.3f} | {m['recall@3']:.3f} | "
                     f"{m['recall@5']:.3f} | {m['recall@10']:.3f} | {m['mrr']:.3f} | {ms:.1f} |")
    text = "\n".join(lines)
    print(text)
    args.out.write_text("# Retrieval benchmark\n\n" + text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
