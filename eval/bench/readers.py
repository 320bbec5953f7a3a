"""Reader models and passage budgets side by side on the evaluation sets (a benchmark, not a test).

    python -m eval.bench.readers --qa eval/archive/qa.jsonl --index /work/archive/index --split tune \
        [--models smollm2-135m,qwen2.5-coder-0.5b,qwen2.5-coder-1.5b] [--windows 2] [--out eval/READER.md]

Each variant (a model and a number of windows) runs `rag eval` over the same items in a child
process of its own, one after the other, so each child's peak RSS is the whole engine's with that
model. Reported per variant: accuracy and wrong-when-answering at the fitted decision, the share of
items whose reply would have been right had every reply been given ("answer all"), prompt tokens,
time to first token and answer time (p50 / p95), peak RSS, and the CPU's SIMD flags. The decision
was fitted for the default model and budget; other models are measured at the same threshold, so
"answer all" is the fairer comparison of their reading.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from eval.paths import DEFAULT_QA, EVAL_DIR, ROOT
from rag.autotune import cpu_info

DEFAULT_MODELS = ("smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")


def run_one(args: argparse.Namespace) -> int:
    """In the child: one `rag eval` run, then its metrics, prompt sizes and this process's peak RSS."""
    from eval.runner import main as eval_main

    rc = eval_main(["--qa", str(args.qa), "--split", args.split, "--out", str(args.out_dir), "--quiet"]
                   + (["--index", str(args.index)] if args.index else [])
                   + (["--limit", str(args.limit)] if args.limit else []))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    (args.out_dir / "peak.json").write_text(json.dumps({"rc": rc, "peak_rss_mib": peak_kib / 1024}))
    return 0


def _row(variant: str, out_dir: Path, wall: float) -> dict:
    m = json.loads((out_dir / "metrics.json").read_text())["overall"]
    rows = [json.loads(line) for line in (out_dir / "results.jsonl").read_text().splitlines()]
    answerable = [r for r in rows if r["answerable"]]
    all_right = sum(1 for r in answerable if r.get("right_if_answered")) / max(1, len(answerable))
    tokens = [r["prompt_tokens"] for r in rows if r.get("prompt_tokens")]
    peak = json.loads((out_dir / "peak.json").read_text())["peak_rss_mib"]
    return {"variant": variant, "n": len(rows), "accuracy": m["answer_accuracy"], "wrong": m["wrong_when_answering"],
            "refusal": m["refusal_accuracy"], "answer_all": all_right,
            "prompt_tokens_p50": sorted(tokens)[len(tokens) // 2] if tokens else None,
            "ttft_p50": m["ttft_p50_s"], "ttft_p95": m["ttft_p95_s"], "total_p50": m["total_p50_s"],
            "total_p95": m["total_p95_s"], "peak_rss_mib": peak, "wall_s": wall}


def _fmt(v: object, spec: str = ".2f") -> str:
    return "–" if v is None else format(v, spec) if isinstance(v, float) else str(v)


def table(rows: Sequence[dict]) -> str:
    head = ("| variant | items | accuracy | wrong when answering | refusal | answer all | prompt tokens p50 | "
            "TTFT p50 / p95 s | answer p50 / p95 s | peak RSS MiB |\n|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['n']} | {_fmt(r['accuracy'])} | {_fmt(r['wrong'])} | "
                     f"{_fmt(r['refusal'])} | {_fmt(r['answer_all'])} | {_fmt(r['prompt_tokens_p50'])} | "
                     f"{_fmt(r['ttft_p50'])} / {_fmt(r['ttft_p95'])} | "
                     f"{_fmt(r['total_p50'])} / {_fmt(r['total_p95'])} | "
                     f"{_fmt(r['peak_rss_mib'], '.0f')} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--qa", type=Path, default=DEFAULT_QA)
    p.add_argument("--index", type=Path, default=None)
    p.add_argument("--split", default="tune", choices=("all", "tune", "heldout"))
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--models", default=",".join(DEFAULT_MODELS))
    p.add_argument("--windows", default="2", help="comma-separated window counts, e.g. 1,2,3")
    p.add_argument("--work", type=Path, default=EVAL_DIR / "out" / "bench-readers")
    p.add_argument("--out", type=Path, default=None, help="append the table to this Markdown file")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    p.add_argument("--out-dir", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        return run_one(args)
    rows = []
    for model in args.models.split(","):
        for n in args.windows.split(","):
            variant = f"{model}, {n} window{'s' if n != '1' else ''}"
            out_dir = args.work / f"{model}-w{n}"
            out_dir.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, "RAG_GENERATOR_MODEL": model, "RAG_READER_WINDOWS": n}
            cmd = [sys.executable, "-m", "eval.bench.readers", "--one", variant, "--out-dir", str(out_dir),
                   "--qa", str(args.qa), "--split", args.split] + (["--index", str(args.index)] if args.index else []) \
                + (["--limit", str(args.limit)] if args.limit else [])
            t = time.perf_counter()
            print(f"== {variant}", file=sys.stderr, flush=True)
            subprocess.run(cmd, env=env, check=True, cwd=ROOT)
            rows.append(_row(variant, out_dir, time.perf_counter() - t))
    cpu = cpu_info()
    text = (f"\n### {args.qa} ({args.split} part), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n"
            f"{cpu.describe()}; load average at the end {os.getloadavg()[0]:.2f}. Command: `python -m "
            f"eval.bench.readers {' '.join(argv if argv is not None else sys.argv[1:])}`\n\n{table(rows)}\n")
    print(text)
    if args.out:
        with args.out.open("a", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
