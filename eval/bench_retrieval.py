"""Retrieval quality of each mode and fusion on the evaluation set (a benchmark, not a test).

    .venv/bin/python eval/bench_retrieval.py [--qa eval/qa.jsonl] [--out eval/RETRIEVAL.md]

Builds a fresh index of corpus/ in a temporary folder, then reports recall@1/3/5/10 and MRR for
dense, lexical and hybrid retrieval (RRF and weighted fusion, with and without MMR).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rag.config import load_settings
from rag.metrics import retrieval_metrics
from rag.pipeline import Engine
from rag.retrieval import Retriever

from eval.qa import load_qa

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--qa", default=ROOT / "eval/qa.jsonl", type=Path)
    ap.add_argument("--out", default=ROOT / "eval/RETRIEVAL.md", type=Path)
    ap.add_argument("-k", type=int, default=10)
    args = ap.parse_args()

    items = [i for i in load_qa(args.qa) if i.answerable and i.evidence]
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(load_settings(index_dir=Path(tmp) / "index"))
        engine.ingest([ROOT / "corpus"])
        base = engine.retriever
        queries = [engine.standalone_question(i.question, i.history) for i in items]
        variants = [
            ("dense", "-", 0.0, 1.0),
            ("lexical", "-", 0.0, 1.0),
            ("hybrid", "rrf", 0.0, 1.0),
            ("hybrid", "rrf", 0.0, 0.8),
            ("hybrid", "weighted", 0.5, 1.0),
            ("hybrid", "weighted", 0.3, 1.0),
            ("hybrid", "weighted", 0.3, 0.8),
        ]
        rows = []
        for mode, fusion, alpha, lam in variants:
            r = Retriever(base.store, base.embedder, mode=mode, fusion=fusion if fusion != "-" else "rrf",
                          mmr_lambda=lam, alpha=alpha)
            t = time.perf_counter()
            results = [[h.chunk.text for h in r.search(q, args.k)] for q in queries]
            ms = (time.perf_counter() - t) / len(queries) * 1000
            m = retrieval_metrics(results, [i.evidence for i in items])
            label = f"weighted α={alpha}" if fusion == "weighted" else fusion
            rows.append((mode, label, f"λ={lam}" if lam < 1 else "off", m, ms))
    lines = [
        f"Retrieval on {args.qa.name}: {len(items)} answerable questions with evidence "
        f"(follow-ups use the engine's standalone rewrite). Index: corpus/, {base.store.counts()['chunks']} chunks.",
        "",
        f"Defaults: mode {engine.settings.retrieval_mode}, fusion {engine.settings.fusion} "
        f"α={engine.settings.hybrid_alpha}, MMR λ={engine.settings.mmr_lambda}, chunks "
        f"{engine.settings.chunk_tokens}/{engine.settings.chunk_overlap} tokens.",
        "",
        "| mode | fusion | MMR | recall@1 | recall@3 | recall@5 | recall@10 | MRR | ms/query |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for mode, fusion, mmr, m, ms in rows:
        lines.append(f"| {mode} | {fusion} | {mmr} | {m['recall@1']:.3f} | {m['recall@3']:.3f} | "
                     f"{m['recall@5']:.3f} | {m['recall@10']:.3f} | {m['mrr']:.3f} | {ms:.1f} |")
    text = "\n".join(lines)
    print(text)
    args.out.write_text("# Retrieval benchmark\n\n" + text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
