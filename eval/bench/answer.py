"""Answer latency on the demo corpus and on the archive benchmark (a benchmark, not a test).

    python -m eval.bench.answer [--archive-index DIR] [--repeats 3]

Every question of a set (its history replayed) goes through `Engine.ask` at the default settings;
each repeat gives p50/p95 of the total time, and of the total time of the answers that were not
refused (those run the model). Printed as min / median / max over the repeats, with the CPU's flags.
The first question of each engine is asked once beforehand, so model loading is not counted.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from eval.bench.machine import machine
from eval.bench.suite import spread
from eval.metrics import percentile
from eval.paths import DEFAULT_QA, EVAL_DIR
from eval.qa import load_qa
from rag.config import load_settings
from rag.pipeline import Engine


def measure(engine: Engine, path: Path, repeats: int) -> dict[str, list[float]]:
    items = load_qa(path)
    engine.ask(items[0].question)  # load the models and the index
    out: dict[str, list[float]] = {"p50": [], "p95": [], "answered_p50": [], "ttft_p50": []}
    for _ in range(repeats):
        totals, answered, ttft = [], [], []
        for item in items:
            a = engine.ask(item.question, item.history)
            totals.append(a.timings["total_s"])
            ttft.append(a.timings["ttft_s"])
            if not a.refused:
                answered.append(a.timings["total_s"])
        out["p50"].append(percentile(totals, 50))
        out["p95"].append(percentile(totals, 95))
        out["answered_p50"].append(percentile(answered, 50) if answered else float("nan"))
        out["ttft_p50"].append(percentile(ttft, 50))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.bench.answer", description=__doc__.split("\n")[0])
    ap.add_argument("--archive-index", default=None, help="index of the archive benchmark (eval/archive)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    runs = [("demo corpus, eval/qa.jsonl", load_settings(), DEFAULT_QA)]
    if args.archive_index:
        runs.append(("archive, eval/archive/qa.jsonl", load_settings(index_dir=args.archive_index),
                     EVAL_DIR / "archive" / "qa.jsonl"))
    print("\n".join(machine()))
    print("\n| corpus | total p50 (s) | total p95 (s) | answered p50 (s) | TTFT p50 (s) |\n|---|---|---|---|---|")
    for name, settings, path in runs:
        r = measure(Engine(settings), path, args.repeats)
        cells = " | ".join(spread(r[key]) for key in ("p50", "p95", "answered_p50", "ttft_p50"))
        print(f"| {name} | {cells} |")
    print(f"\nmin / median / max over {args.repeats} repeats")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
