"""Retrieval quality of the disk store against the folder store on an evaluation set (a benchmark, not a test).

    PYTHONPATH=. .venv/bin/python -m eval.bench_scale_quality [--qa eval/qa.jsonl]

Builds corpus/ with both embedded backends in a temporary folder and prints recall@1/3/5/10 and MRR
for each mode and fusion (the variants of eval/bench_retrieval.py), side by side. The disk store
ranks lexical hits with SQLite FTS5's bm25() instead of bm25s, over the same tokens.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rag.config import load_settings
from rag.metrics import retrieval_metrics
from rag.pipeline import Engine
from rag.retrieval import Retriever

from eval.qa import load_qa

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = [("dense", "rrf", 0.0, 1.0), ("lexical", "rrf", 0.0, 1.0), ("hybrid", "rrf", 0.0, 1.0),
            ("hybrid", "rrf", 0.0, 0.8), ("hybrid", "weighted", 0.5, 1.0), ("hybrid", "weighted", 0.3, 1.0),
            ("hybrid", "weighted", 0.3, 0.8)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--qa", default=ROOT / "eval/qa.jsonl", type=Path)
    ap.add_argument("-k", type=int, default=10)
    args = ap.parse_args()
    items = [i for i in load_qa(args.qa) if i.answerable and i.evidence]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("folder", "disk"):
            engine = Engine(load_settings(index_dir=Path(tmp) / backend, embedded_backend=backend))
            engine.ingest([ROOT / "corpus"])
            queries = [engine.standalone_question(i.question, i.history) for i in items]
            for mode, fusion, alpha, lam in VARIANTS:
                r = Retriever(engine.retriever.store, engine.embedder, mode=mode, fusion=fusion, mmr_lambda=lam,
                              alpha=alpha)
                hits = [[h.chunk.text for h in r.search(q, args.k)] for q in queries]
                results[(backend, mode, fusion, alpha, lam)] = retrieval_metrics(hits, [i.evidence for i in items])
    print(f"{args.qa.name}: {len(items)} answerable questions with evidence; folder -> disk")
    print("| mode | fusion | MMR | recall@1 | recall@3 | recall@5 | recall@10 | MRR |")
    print("|---|---|---|---|---|---|---|---|")
    for mode, fusion, alpha, lam in VARIANTS:
        a, b = results[("folder", mode, fusion, alpha, lam)], results[("disk", mode, fusion, alpha, lam)]
        label = "-" if mode != "hybrid" else (f"weighted α={alpha}" if fusion == "weighted" else "rrf")
        cells = " | ".join(f"{a[m]:.3f} → {b[m]:.3f}" for m in ("recall@1", "recall@3", "recall@5", "recall@10", "mrr"))
        print(f"| {mode} | {label} | {'λ=' + str(lam) if lam < 1 else 'off'} | {cells} |")


if __name__ == "__main__":
    main()
