"""The access-rule benchmark (eval/bench/access.py) at a tiny size: its store opens as the disk store,
hides exactly the restricted documents, returns none of them, and its report carries the figures.
No timing gates: those are the benchmark's to report, at 1M chunks."""

from __future__ import annotations

import argparse

from eval.bench import access
from rag.store import disk


def test_access_bench_tiny(tmp_path):
    args = argparse.Namespace(chunks=2000, queries=20, rounds=1, work=tmp_path, seed=0, sentences=1500)
    report, r = access.run(args)

    assert r["leaks"] == {"unrestricted": 0, "public": 0, "desk": 0}
    assert r["checked"]["public"] > 0 and r["checked"]["desk"] > 0
    plan = access.Plan.make(2000)
    assert plan.chunks == int(plan.counts.sum()) == r["ntotal"] == 2000
    # measure() checked the store's hidden chunks against the plan's; 10% of the documents are hidden.
    assert r["hidden_docs_public"] == round(0.1 * plan.documents)
    assert r["hidden_public"] == len(plan.hidden_chunks("public")) > r["hidden_desk"] > 0
    for v in access.VARIANTS:
        assert r["hybrid"][v]["n"] == 20 and r["hybrid"][v]["p50"] > 0
        assert 0.95 <= r["recall"][f"{v}@10"] <= 1.0  # a flat index at this size: exact
    for figure in ("p50 / unrestricted", "recall@10", "leaks", "CPU:", "avx", "Built", "**Target**"):
        assert figure in report
    # The p50 cell of the public row of the hybrid table: anywhere in a report of two-decimal figures, "0.45"
    # would also be found in "10.45" or in another variant's column.
    row = next(line for line in report.splitlines() if line.startswith("| public | `"))
    assert row.split("|")[4].strip() == f"{r['hybrid']['public']['p50']:.2f}", row

    # Built as an ingest writes it: one live version whose record the store reads; reused on a second run.
    db = disk.connect(tmp_path / "index")
    try:
        info = disk.version_row(db, disk.live_version(db))
        assert info["chunks"] == 2000 and info["documents"] == plan.documents
        lex = db.execute("SELECT count(*) FROM lex").fetchone()[0]
        assert lex == 2000
    finally:
        db.close()
    assert access.build_store(tmp_path, 2000, sentence_limit=1500)["built_at"] == \
        access._record(tmp_path)["built_at"]
