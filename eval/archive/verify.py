"""Check the archive question set against the built corpus, and measure retrieval on it.

    python -m eval.archive.verify [--qa eval/archive/qa.jsonl] [--corpus eval/archive/corpus] [--index DIR]

For every answerable item: an evidence quote occurs in some document of the corpus and an answer
occurs in an evidence quote (both compared folded, as the metrics do). With --index, also the
recall@5 of hybrid search (what `rag search -k 5` returns) for the answerable items; follow-ups
are searched with the standalone question the engine rewrites them into.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from eval.metrics import contains_evidence
from eval.qa import QAItem, load_qa
from rag.loaders import load_paths
from rag.text import fold

ROOT = Path(__file__).resolve().parents[2]


def check_evidence(items: list[QAItem], corpus: Path) -> tuple[list[str], set[str]]:
    """Problems found, and the documents the evidence comes from."""
    loaded = load_paths([corpus])
    texts = {d.doc_id: fold(d.text) for d in loaded.documents}
    problems: list[str] = []
    used: set[str] = set()
    for item in items:
        if not item.answerable:
            continue
        found = [doc for doc, text in texts.items() if any(fold(q) in text for q in item.evidence)]
        if not found:
            problems.append(f"{item.id}: no evidence quote occurs in {corpus}: {item.evidence!r}")
        used.update(found)
        if not any(fold(a) in fold(q) for a in item.answers for q in item.evidence):
            problems.append(f"{item.id}: no answer {item.answers!r} occurs in its evidence")
    return problems, used


def recall_at_5(items: list[QAItem], index: Path) -> tuple[dict[str, float], list[str]]:
    from rag.config import load_settings
    from rag.pipeline import Engine

    engine = Engine(load_settings(index_dir=str(index)))
    found: Counter[str] = Counter()
    total: Counter[str] = Counter()
    misses: list[str] = []
    for item in items:
        if not item.answerable:
            continue
        cat = item.categories[0]
        query = engine.standalone_question(item.question, item.history) if item.history else item.question
        hits = engine.search(query, 5)
        total[cat] += 1
        total["all"] += 1
        if any(contains_evidence(h.chunk.text, item.evidence) for h in hits):
            found[cat] += 1
            found["all"] += 1
        else:
            misses.append(f"{item.id} [{cat}] {query!r} -> {[h.chunk.doc_id for h in hits]}")
    return {c: found[c] / total[c] for c in total}, misses


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.archive.verify", description=__doc__.splitlines()[0])
    p.add_argument("--qa", type=Path, default=ROOT / "eval" / "archive" / "qa.jsonl")
    p.add_argument("--corpus", type=Path, default=ROOT / "eval" / "archive" / "corpus")
    p.add_argument("--index", type=Path, default=None, help="archive index folder (RAG_INDEX_DIR) for recall@5")
    args = p.parse_args(argv)
    if not args.corpus.is_dir():
        print(f"no corpus at {args.corpus}: run python -m eval.archive.build first", file=sys.stderr)
        return 2
    items = load_qa(args.qa)
    problems, used = check_evidence(items, args.corpus)
    answerable = sum(1 for i in items if i.answerable)
    print(f"{len(items)} items, {answerable} answerable; evidence from {len(used)} distinct documents")
    for line in problems:
        print("  " + line)
    print(f"evidence found for {answerable - sum(1 for p in problems if 'no evidence' in p)}/{answerable}")
    if args.index:
        recall, misses = recall_at_5(items, args.index)
        print("recall@5: " + ", ".join(f"{c} {v:.3f}" for c, v in sorted(recall.items())))
        for line in misses:
            print("  miss " + line)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
