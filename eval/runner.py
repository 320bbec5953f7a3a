"""`rag eval`: run the whole answering pipeline over a question set and measure it honestly.

    rag eval [--qa FILE] [--out DIR] [--limit N] [--check] [--thresholds FILE] [--index DIR]
    .venv/bin/python -m eval.runner ...            (the same, without the `rag` entry point)

Every item goes through `engine.ask(question, history)` exactly as a user's question would (the
follow-up history replayed as written in the file). Scoring works on the `Answer.to_json()` object
only, so a `results.jsonl` can be re-scored without re-running the models. Writes to --out:

    results.jsonl   one line per item: {"id"} + Answer.to_json() + categories + the item's metric fields
    metrics.json    the figures overall and per category, settings, model ids, qa file, item count, date
    report.md       summary table, definitions, failures, two PNG plots (eval/report.py)

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
import tomllib
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from rag.errors import ConfigError, RagError
from rag.metrics import (
    CITATION_MARKER,
    DEFAULT_KS,
    answer_correct,
    contains_evidence,
    first_hit_rank,
    percentile,
    retrieval_metrics,
    token_f1,
    ungrounded_terms,
)

from eval.qa import QAItem, load_qa

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_QA = HERE / "qa.jsonl"
DEFAULT_OUT = HERE / "out"
DEFAULT_THRESHOLDS = HERE / "thresholds.toml"

CATEGORIES = ("heldout", "tune", "standalone", "follow-up", "unanswerable", "no-diacritics", "misspelled", "lowercase")

# Shares (num/den), means, and latency percentiles; the order is the report's order.
SHARE_METRICS = tuple(f"recall@{k}" for k in DEFAULT_KS) + (
    "answer_accuracy", "citation_precision", "citation_coverage", "refusal_accuracy",
    "false_refusal_rate", "wrong_when_answering", "groundedness",
)
MEAN_METRICS = ("mrr", "token_f1")
LATENCY_METRICS = ("ttft_p50_s", "ttft_p95_s", "total_p50_s", "total_p95_s")
METRIC_NAMES = tuple(f"recall@{k}" for k in DEFAULT_KS) + (
    "mrr", "answer_accuracy", "token_f1", "citation_precision", "citation_coverage", "refusal_accuracy",
    "false_refusal_rate", "wrong_when_answering", "groundedness",
) + LATENCY_METRICS

SECRET_SETTINGS = ("openai_api_key", "api_token")


# -- per-item scoring --------------------------------------------------------------------------

def cited_passage(citation: Mapping[str, Any], hits: Sequence[Mapping[str, Any]]) -> str:
    """The text a citation points to: the hit with its chunk_id, else the quote itself."""
    for h in hits:
        if h.get("chunk_id") == citation.get("chunk_id"):
            return str(h.get("text", ""))
    return str(citation.get("quote", ""))


def score_item(item: QAItem, answer: Mapping[str, Any]) -> dict[str, Any]:
    """The per-item metric fields for one `Answer.to_json()` object (None where not applicable)."""
    refused = bool(answer.get("refused"))
    text = str(answer.get("answer", ""))
    bare = CITATION_MARKER.sub(" ", text)  # "[1]" is not part of the answer's words
    hits = answer.get("hits") or []
    citations = answer.get("citations") or []
    passages = [cited_passage(c, hits) for c in citations]
    out: dict[str, Any] = {
        "answerable": item.answerable,
        "expected_answers": list(item.answers),
        "evidence": list(item.evidence),
        "refusal_correct": refused == (not item.answerable),
        "first_relevant_rank": None,
        "correct": None,
        "token_f1": None,
        "citation_supported": None,
        "has_supporting_citation": None,
        "ungrounded_terms": None,
        "grounded": None,
        "confidence": float(answer.get("confidence") or 0.0),
        # Whether answering would be right at any threshold: the answer given, or for a refusal the
        # candidate sentence that fell below the threshold (for the accuracy-coverage curve).
        "right_if_answered": False,
    }
    if item.answerable:
        out["correct"] = (not refused) and answer_correct(bare, item.answers)
        out["right_if_answered"] = out["correct"] if not refused else answer_correct(
            str(answer.get("candidate") or ""), item.answers)
        out["token_f1"] = 0.0 if refused else token_f1(bare, item.answers)
        if item.evidence:
            out["first_relevant_rank"] = first_hit_rank([str(h.get("text", "")) for h in hits], item.evidence)
            if not refused:
                out["citation_supported"] = [contains_evidence(p, item.evidence) for p in passages]
                out["has_supporting_citation"] = any(out["citation_supported"])
    if not refused:
        # The article's date is shown with the quote; it comes from the article's metadata.
        cited_texts = passages + [str(c.get("quote", "")) for c in citations] + [
            str(c.get("date") or "") for c in citations]
        out["ungrounded_terms"] = ungrounded_terms(text, cited_texts)
        out["grounded"] = not out["ungrounded_terms"]
    return out


ANSWER_KEYS = ("question", "standalone_question", "answer", "refused", "citations", "hits", "timings")


def result_row(item: QAItem, answer: Mapping[str, Any]) -> dict[str, Any]:
    """One results.jsonl line: {"id"} + Answer.to_json() + the item's categories, tags, history
    and its metric fields (score_item)."""
    return {"id": item.id, **answer, "categories": item.categories, "tags": list(item.tags),
            "history": [{"question": t.question, "answer": t.answer} for t in item.history],
            **score_item(item, answer)}


# -- aggregation -------------------------------------------------------------------------------

def _share(flags: Iterable[bool]) -> tuple[float | None, list[int]]:
    flags = list(flags)
    if not flags:
        return None, [0, 0]
    num = sum(1 for f in flags if f)
    return num / len(flags), [num, len(flags)]


def aggregate(rows: Sequence[Mapping[str, Any]], *, top_k: int | None = None) -> dict[str, Any]:
    """The figures for a group of scored result rows; None where the group has nothing to measure.

    recall@k is measured for k up to `top_k`, the number of hits the engine was asked for (default:
    the most hits any answer carries); an answer returning fewer hits simply misses at those ranks.
    `counts` holds [numerator, denominator] for shares and [None, n] for means and percentiles."""
    m: dict[str, Any] = {"n_items": len(rows)}
    counts: dict[str, list[int | None]] = {}
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]

    # Retrieval, over the hits each answer carries: recall@k for k above the number of hits
    # asked for cannot be measured and is left None rather than copied from a smaller k.
    ret_rows = [r for r in answerable if r["evidence"]]
    max_hits = top_k if top_k is not None else max((len(r.get("hits") or []) for r in ret_rows), default=0)
    rm = retrieval_metrics([[str(h.get("text", "")) for h in r.get("hits") or []] for r in ret_rows],
                           [r["evidence"] for r in ret_rows])
    n_ret = int(rm["n"])
    for k in DEFAULT_KS:
        name = f"recall@{k}"
        measurable = n_ret > 0 and k <= max_hits
        m[name] = rm[name] if measurable else None
        counts[name] = [round(rm[name] * n_ret), n_ret] if measurable else [0, n_ret]
    m["mrr"] = rm["mrr"] if n_ret else None
    counts["mrr"] = [None, n_ret]

    m["answer_accuracy"], counts["answer_accuracy"] = _share(r["correct"] for r in answerable)
    f1s = [r["token_f1"] for r in answerable]
    m["token_f1"] = sum(f1s) / len(f1s) if f1s else None
    counts["token_f1"] = [None, len(f1s)]

    supported = [s for r in answerable if r["citation_supported"] is not None for s in r["citation_supported"]]
    m["citation_precision"], counts["citation_precision"] = _share(supported)
    m["citation_coverage"], counts["citation_coverage"] = _share(
        r["has_supporting_citation"] for r in answerable if r["correct"] and r["has_supporting_citation"] is not None
    )
    m["refusal_accuracy"], counts["refusal_accuracy"] = _share(r["refused"] for r in unanswerable)
    m["false_refusal_rate"], counts["false_refusal_rate"] = _share(r["refused"] for r in answerable)
    m["wrong_when_answering"], counts["wrong_when_answering"] = _share(
        not (r["answerable"] and r["correct"]) for r in rows if not r["refused"])
    m["groundedness"], counts["groundedness"] = _share(r["grounded"] for r in rows if r["grounded"] is not None)

    for key in ("ttft_s", "total_s"):
        values = [float(r["timings"][key]) for r in rows if (r.get("timings") or {}).get(key) is not None]
        short = key[:-2]
        for q in (50, 95):
            name = f"{short}_p{q}_s"
            m[name] = percentile(values, q) if values else None
            counts[name] = [None, len(values)]
    m["counts"] = counts
    return m


def compute_metrics(rows: Sequence[Mapping[str, Any]], *, top_k: int | None = None) -> dict[str, Any]:
    """{"overall": aggregate(rows), "by_category": {category: aggregate(rows of that category)}}."""
    cats = [c for c in CATEGORIES if any(c in r["categories"] for r in rows)]
    cats += sorted({c for r in rows for c in r["categories"]} - set(cats))
    return {
        "overall": aggregate(rows, top_k=top_k),
        "by_category": {c: aggregate([r for r in rows if c in r["categories"]], top_k=top_k) for c in cats},
    }


# -- running -----------------------------------------------------------------------------------

def _model_ids(engine: Any) -> dict[str, str | None]:
    ids: dict[str, str | None] = {}
    for part in ("generator", "embedder"):
        try:
            ids[part] = str(getattr(engine, part).id)
        except Exception:  # noqa: BLE001 - a model that cannot be named is reported as unknown
            ids[part] = None
    return ids


def _top_k(engine: Any) -> int | None:
    top_k = getattr(engine.settings, "top_k", None)
    return int(top_k) if top_k is not None else None


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
    from tqdm import tqdm

    from eval import report

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    date = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    rows: list[dict[str, Any]] = []
    n_correct = n_scored = 0
    with (out_dir / "results.jsonl").open("w", encoding="utf-8") as fh, \
            tqdm(items, desc="eval", unit="q", disable=not progress, file=sys.stderr) as bar:
        for item in bar:
            answer = engine.ask(item.question, item.history)
            row = result_row(item, answer.to_json())
            rows.append(row)
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            fh.flush()
            n_scored += 1
            n_correct += 1 if (row["correct"] if item.answerable else row["refusal_correct"]) else 0
            bar.set_postfix(right=f"{n_correct}/{n_scored}")

    metrics: dict[str, Any] = {
        "qa_file": Path(qa_file).name if qa_file else None,
        "qa_path": str(qa_file) if qa_file else None,
        "items": len(rows),
        "date": date,
        "duration_s": round(time.perf_counter() - started, 2),
        "models": _model_ids(engine),
        "settings": _settings_json(engine),
        **compute_metrics(rows, top_k=_top_k(engine)),
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
    from eval import report

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


# -- the gate ----------------------------------------------------------------------------------

def load_thresholds(path: Path) -> dict[str, Any]:
    """Read a thresholds file: top-level `name = minimum` / `max_name = maximum`, and optional
    tables `[category.<name>]` with the same keys for one category. Unknown names are an error."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no such thresholds file: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc

    def check(table: Mapping[str, Any], where: str) -> None:
        for key, value in table.items():
            name = key[4:] if key.startswith("max_") else key
            if name not in METRIC_NAMES:
                raise ConfigError(f"{path}: unknown metric {key!r}{where}; known: {', '.join(METRIC_NAMES)}")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{path}: {key}{where} must be a number, got {value!r}")

    check({k: v for k, v in data.items() if k != "category"}, "")
    for cat, table in (data.get("category") or {}).items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [category.{cat}] must be a table")
        check(table, f" in [category.{cat}]")
    return data


def check_thresholds(metrics: Mapping[str, Any], thresholds: Mapping[str, Any]) -> tuple[list[dict], list[str]]:
    """(failures, skipped). A failure is {"metric", "scope", "measured", "limit", "kind"} with kind
    "minimum" or "maximum"; `skipped` names thresholds whose figure this set cannot measure (None)."""
    failures: list[dict] = []
    skipped: list[str] = []
    scopes: list[tuple[str, Mapping[str, Any], Mapping[str, Any] | None]] = [
        ("overall", {k: v for k, v in thresholds.items() if k != "category"}, metrics.get("overall"))
    ]
    for cat, table in (thresholds.get("category") or {}).items():
        scopes.append((cat, table, (metrics.get("by_category") or {}).get(cat)))
    for scope, table, figures in scopes:
        for key, limit in table.items():
            kind = "maximum" if key.startswith("max_") else "minimum"
            name = key[4:] if kind == "maximum" else key
            measured = (figures or {}).get(name)
            label = name if scope == "overall" else f"{name} [{scope}]"
            if measured is None:
                skipped.append(label)
            elif (measured < limit) if kind == "minimum" else (measured > limit):
                failures.append({"metric": name, "scope": scope, "measured": measured, "limit": limit, "kind": kind})
    return failures, skipped


def gate_lines(failures: Sequence[Mapping[str, Any]]) -> list[str]:
    out = []
    for f in failures:
        label = f["metric"] if f["scope"] == "overall" else f"{f['metric']} [{f['scope']}]"
        op = "below minimum" if f["kind"] == "minimum" else "above maximum"
        out.append(f"{label}: measured {f['measured']:.4f}, {op} {f['limit']:.4f}")
    return out


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
    if not corpus.exists() and (ROOT / "corpus").exists():
        corpus = ROOT / "corpus"
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
    if args.check or args.thresholds != DEFAULT_THRESHOLDS:
        thresholds = load_thresholds(args.thresholds)  # fail before hours of answering, not after
    elif Path(args.thresholds).is_file():
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
    if not args.check:
        return 0
    failures, skipped = check_thresholds(metrics, thresholds or {})
    for label in skipped:
        print(f"gate: {label} not measured on this set; threshold skipped", file=sys.stderr)
    if failures:
        print(f"gate FAILED ({_rel(Path(args.thresholds))}):", file=sys.stderr)
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
