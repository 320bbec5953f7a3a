"""Benchmarks (they measure and print; they assert nothing). `rag bench` is suite.main.

    suite           `rag bench` / `python -m eval.bench`: ingest, embedders, generation, end to end, serving
    machine         the machine a benchmark ran on, described the same way in every report
    corpus          a large corpus of real text (installed packages' docstrings) for ingest benchmarks
    serve           one cold start of `rag serve` (suite's serve section)
    answer          answer latency on the demo corpus and the archive benchmark
    retrieval       recall@k and MRR of each retrieval mode and fusion (eval/RETRIEVAL.md)
    readers         reader models and passage budgets side by side (eval/READER.md)
    scale           exact vs approximate dense search and BM25 at 10k-1M chunks (eval/SCALE.md)
    scale_real      the disk store on real text at 10k-1M chunks (eval/SCALE.md)
    scale_quality   retrieval quality of the disk store against the folder store
    pg              the PostgreSQL store: primary, replica, fdw shards (eval/POSTGRES.md)
    faults          kill -9 during ingest, concurrent load, one huge file
    llama_builds    two llama-cpp-python builds side by side (eval/LLAMA_BUILD.md)

Recall against an evaluation set goes through eval.evaluators.RetrievalEvaluator; recall of an
approximate index against exact search through eval.metrics.neighbour_recall.
"""

from eval.bench.suite import main

__all__ = ["main"]
