"""Retrieval quality of the disk store against the folder store on an evaluation set (a benchmark, not a test).

    PYTHONPATH=. .venv/bin/python -m eval.bench.scale_quality [--qa eval/qa.jsonl]

Builds corpus/ with both embedded backends in a temporary folder and prints recall@1/3/5/10 and MRR
for each mode and fusion (the variants of eval/bench/retrieval.py), side by side. The disk store
ranks lexical hits with SQLite FTS5's bm25() instead of bm25s, over the same tokens.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from eval.bench.retrieval import VARIANTS
from eval.evaluators import RetrievalEvaluator
from eval.paths import CORPUS_DIR, DEFAULT_QA
from eval.qa import load_qa
from rag.config import load_settings
from rag.pipeline import Engine


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--qa", default=DEFAULT_QA, type=Path)
    ap.add_argument("-k", type=int, default=10)
    args = ap.parse_args()
    evaluator = RetrievalEvaluator.of(load_qa(args.qa), k=args.k)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("folder", "disk"):
            engine = Engine(load_settings(index_dir=Path(tmp) / backend, embedded_backend=backend))
            engine.ingest([CORPUS_DIR])
            queries = evaluator.queries(engine)
            for v in VARIANTS:
                results[(backend, v)] = evaluator(engine, searcher=v.retriever(engine), queries=queries)
    print(f"{args.qa.name}: {len(evaluator.items)} answerable questions with evidence; folder -> disk")
    print("| mode | fusion | MMR | recall@1 | recall@3 | recall@5 | recall@10 | MRR |")
    print("|---|---|---|---|---|---|---|---|")
    for v in VARIANTS:
        a, b = results[("folder", v)], results[("disk", v)]
        cells = " | ".join(f"{a[m]:.3f} → {b[m]:.3f}" for m in ("recall@1", "recall@3", "recall@5", "recall@10", "mrr"))
        print(f"| {v.mode} | {v.fusion_label} | {v.mmr_label} | {cells} |")


if __name__ == "__main__":
    main()
