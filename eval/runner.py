"""`rag eval`: run the whole answering pipeline over a question set and measure it honestly.

    rag eval [--qa FILE] [--out DIR] [--limit N] [--check] [--thresholds FILE] [--index DIR]
    .venv/bin/python -m eval.runner ...            (the same, without the `rag` entry point)

This module orchestrates and parses arguments; the parts it runs are, in order:
    eval/evaluators.py  AnswerEvaluator: every item through the engine, scored (eval/scoring.py,
                        with the metric functions of eval/metrics.py)
    eval/report.py      report.md and its plots
    eval/gate.py        the thresholds and the pass/fail check of --check

Every item goes through `engine.ask(question, history)` exactly as a user's question would (the
follow-up history replayed as written in the file). Scoring works on the `Answer.to_json()` object
only, so a `results.jsonl` can be re-scored without re-running the models. Writes to --out:

    results.jsonl   one line per item: {"id"} + Answer.to_json() + categories + the item's metric fields
    metrics.json    the figures overall and per category, settings, model ids, qa file, item count, date
    report.md       summary table, definitions, failures, three PNG plots (eval/report.py)

`--check` compares the overall figures with eval/thresholds.toml (keys are metric names; a key is
a minimum, a `max_`-prefixed key a maximum) and exits 1 naming every figure on the wrong side.
Exit codes: 0 ok, 1 gate failed, 2 the run could not be made (bad file, missing model, ...).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eval import report
from eval.evaluators import AnswerEvaluator
from eval.gate import DEFAULT_THRESHOLDS, check_thresholds, gate_lines, load_thresholds
from eval.paths import CORPUS_DIR, DEFAULT_QA, EVAL_DIR
from eval.qa import QAItem, load_qa
from eval.scoring import ANSWER_KEYS, compute_metrics, result_row
from rag.errors import ConfigError, RagError

DEFAULT_OUT = EVAL_DIR / "out"

SECRET_SETTINGS = ("openai_api_key", "api_token")


# -- running -----------------------------------------------------------------------------------

def _model_ids(engine: Any) -> dict[str, str | None]:
    ids: dict[str, str | None] = {}
    for part in ("generator", "embedder"):
        try:
            ids[part] = str(getattr(engine, part).id)
        except Exception:
            ids[part] = None
    return ids


def _settings_json(engine: Any) -> dict[str, Any]:
    settings = engine.settings.model_dump(mode="json")
    for key in SECRET_SETTINGS:
        if settings.get(key):
            settings[key] = "***"
    return settings


def run_eval(engine: Any, items: Sequence[QAItem], *, out_dir: Path, progress: bool = True,
             qa_file: str | Path | None = None, thresholds: Mapping[str, Any] | None = None) -> dict:
    """Answer every item with `engine.ask`, score it, and write results.jsonl, metrics.json and
    report.md (+ PNGs) to `out_dir`. Returns the metrics.json object."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    date = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    with (out_dir / "results.jsonl").open("w", encoding="utf-8") as fh:
        def write(row: dict[str, Any]) -> None:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            fh.flush()  # a run stopped half-way can still be rescored

        rows, figures = AnswerEvaluator(items, progress=progress).evaluate(engine, on_row=write)

    metrics: dict[str, Any] = {
        "qa_file": Path(qa_file).name if qa_file else None,
        "qa_path": str(qa_file) if qa_file else None,
        "items": len(rows),
        "date": date,
        "duration_s": round(time.perf_counter() - started, 2),
        "models": _model_ids(engine),
        "settings": _settings_json(engine),
        **figures,
    }
    _write_metrics(metrics, out_dir)
    report.write_report(metrics, rows, out_dir, thresholds=thresholds)
    return metrics


def _write_metrics(metrics: Mapping[str, Any], out_dir: Path) -> None:
    text = json.dumps(metrics, ensure_ascii=False, indent=1) + "\n"
    (Path(out_dir) / "metrics.json").write_text(text, encoding="utf-8")


def load_results(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def rescore(run_dir: Path, items: Sequence[QAItem], *, out_dir: Path,
            thresholds: Mapping[str, Any] | None = None) -> dict:
    """Score a finished (or partial) run's results.jsonl again with the current metric code, without
    re-running any model; settings, models and date come from the run's metrics.json when present."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    by_id = {i.id: i for i in items}
    rows = []
    for old in load_results(run_dir / "results.jsonl"):
        item = by_id.get(old["id"])
        if item is None:
            raise ConfigError(f"{run_dir / 'results.jsonl'}: item {old['id']!r} is not in the question set")
        rows.append(result_row(item, {k: old[k] for k in ANSWER_KEYS}))
    previous = {}
    if (run_dir / "metrics.json").is_file():
        previous = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    top_k = (previous.get("settings") or {}).get("top_k")
    metrics = {key: previous.get(key) for key in ("qa_file", "qa_path", "date", "duration_s", "models", "settings")}
    metrics.update(items=len(rows), **compute_metrics(rows, top_k=top_k))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    _write_metrics(metrics, out_dir)
    report.write_report(metrics, rows, out_dir, thresholds=thresholds)
    return metrics


# -- command line ------------------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--qa", type=Path, default=DEFAULT_QA, help=f"question set (default: {_rel(DEFAULT_QA)})")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {_rel(DEFAULT_OUT)})")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N items")
    p.add_argument("--split", choices=("all", "tune", "heldout"), default="all",
                   help="only the tune or the held-out part (default: all; the report shows both)")
    p.add_argument("--check", action="store_true", help="exit 1 when a figure misses its threshold")
    p.add_argument("--thresholds", type=Path, default=DEFAULT_THRESHOLDS,
                   help=f"threshold file for --check (default: {_rel(DEFAULT_THRESHOLDS)})")
    p.add_argument("--index", type=Path, default=None, help="index folder (default: .rag/index)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def build_parser() -> argparse.ArgumentParser:
    return add_arguments(argparse.ArgumentParser(
        prog="rag eval", description="Answer the known question set and report honest figures."))


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _ensure_index(engine: Any) -> None:
    """Ingest the corpus into the configured index when there is none yet."""
    from rag import store

    index_dir = Path(engine.settings.index_dir)
    if engine.settings.store_url or store.has_index(index_dir, engine.settings.embedded_backend):
        return  # a PostgreSQL store (RAG_STORE_URL) is filled by `rag ingest`, and may be a read-only replica
    corpus = Path(engine.settings.corpus_dir)
    if not corpus.exists() and CORPUS_DIR.exists():
        corpus = CORPUS_DIR
    print(f"no index at {index_dir}; ingesting {corpus} first", file=sys.stderr)
    engine.ingest([corpus])


def run_from_args(args: argparse.Namespace, *, engine: Any = None) -> int:
    """The body of `rag eval` once arguments are parsed (RagError propagates to the caller)."""
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be a positive number, got {args.limit}")
    items = load_qa(args.qa)
    if args.split != "all":
        items = [it for it in items if it.split == args.split]
    if args.limit is not None:
        items = items[: args.limit]
    thresholds = None
    # Read before answering: a bad thresholds file fails before hours of answering, not after. The
    # shipped file is optional without --check; the report shows the gate whenever there is one.
    if args.check or args.thresholds != DEFAULT_THRESHOLDS or Path(args.thresholds).is_file():
        thresholds = load_thresholds(args.thresholds)
    if engine is None:
        from rag.config import load_settings
        from rag.pipeline import Engine

        engine = Engine(load_settings(index_dir=args.index))
    _ensure_index(engine)
    metrics = run_eval(engine, items, out_dir=args.out, progress=not args.quiet, qa_file=args.qa,
                       thresholds=thresholds)
    o = metrics["overall"]

    def f(name: str) -> str:
        return "n/a" if o.get(name) is None else f"{o[name]:.3f}"

    print(f"{metrics['items']} items from {args.qa}: accuracy {f('answer_accuracy')}, recall@5 {f('recall@5')}, "
          f"citation precision {f('citation_precision')}, refusal accuracy {f('refusal_accuracy')}, "
          f"false refusals {f('false_refusal_rate')}, groundedness {f('groundedness')}, "
          f"total p95 {f('total_p95_s')}s")
    print(f"report: {Path(args.out) / 'report.md'}")
    return _gate(metrics, thresholds or {}, args.thresholds) if args.check else 0


def _gate(metrics: Mapping[str, Any], thresholds: Mapping[str, Any], path: Path) -> int:
    """Print the gate's verdict: 1 (naming each figure on the wrong side of its limit) or 0."""
    failures, skipped = check_thresholds(metrics, thresholds)
    for label in skipped:
        print(f"gate: {label} not measured on this set; threshold skipped", file=sys.stderr)
    if failures:
        print(f"gate FAILED ({_rel(Path(path))}):", file=sys.stderr)
        for line in gate_lines(failures):
            print(f"  {line}", file=sys.stderr)
        return 1
    print("gate passed")
    return 0


def main(argv: Sequence[str] | None = None, *, engine: Any = None) -> int:
    """`rag eval` as a function: 0 ok, 1 a threshold missed (with --check), 2 the run failed."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    try:
        return run_from_args(args, engine=engine)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
