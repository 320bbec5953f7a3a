"""report.md for an evaluation run: the figures, what they mean, what went wrong, and the plots."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from eval.gate import checks
from eval.metrics import refusal_sweep, wilson_interval

LATENCY_PNG = "latency.png"
CATEGORY_PNG = "accuracy_by_category.png"
COVERAGE_PNG = "accuracy_coverage.png"

LABELS = {
    "recall@1": "retrieval recall@1",
    "recall@3": "retrieval recall@3",
    "recall@5": "retrieval recall@5",
    "recall@10": "retrieval recall@10",
    "mrr": "retrieval MRR",
    "answer_accuracy": "answer accuracy",
    "token_f1": "token F1",
    "citation_precision": "citation precision",
    "citation_coverage": "citation coverage",
    "refusal_accuracy": "refusal accuracy",
    "false_refusal_rate": "false-refusal rate",
    "wrong_when_answering": "wrong when answering",
    "groundedness": "groundedness",
    "ttft_p50_s": "time to first token p50 (s)",
    "ttft_p95_s": "time to first token p95 (s)",
    "total_p50_s": "total time p50 (s)",
    "total_p95_s": "total time p95 (s)",
}

DEFINITIONS = {
    "recall@k": "share of answerable items with evidence where one of the answer's first k `hits` contains an "
                "evidence quote (folded compare, `eval.metrics.contains_evidence`); k above the number of hits an "
                "answer carries (settings.top_k) is not measured (n/a).",
    "mrr": "mean over the same items of 1/rank of the first hit containing evidence, 0 when none does.",
    "answer_accuracy": "share of answerable items whose answer, normalised, contains a normalised gold answer as "
                       "whole words (`eval.metrics.answer_correct`); a refusal counts as wrong. Citation markers "
                       "such as [1] are removed before scoring. An answer that quotes a whole sentence holding "
                       "the gold answer counts as correct; token F1 shows how much else it says.",
    "token_f1": "mean over answerable items of the best SQuAD token F1 against the gold answers "
                "(`eval.metrics.token_f1`, citation markers removed); a refusal scores 0.",
    "citation_precision": "share of citations, over all answerable non-refused answers, whose cited passage (the "
                          "hit with the citation's chunk_id, else the quote itself) contains an evidence quote.",
    "citation_coverage": "share of correct answers with at least one such supporting citation.",
    "refusal_accuracy": "share of unanswerable items the engine refused.",
    "false_refusal_rate": "share of answerable items the engine refused (lower is better).",
    "wrong_when_answering": "share of the answers given (not refused) that are wrong: an answerable item answered "
                            "incorrectly, or an unanswerable one answered at all (lower is better).",
    "groundedness": "share of non-refused answers in which every number and every capitalised name appears in the "
                    "answer's cited passages or quotes (folded compare, whole words, or a word's start for names of 5+ "
                    "letters; citation markers, the first word of each sentence and a few common words such as "
                    "The/In/He/President are not checked). The terms missing are listed under Failures.",
    "latency": "p50/p95 (linear interpolation, `eval.metrics.percentile`) of `timings.ttft_s` (question in to "
               "first answer token) and `timings.total_s` over all items that report them.",
}

MAX_QUOTE = 300

Row = Mapping[str, Any]  # one results.jsonl line (eval/scoring.py result_row)


def _fmt(value: Any, counts: Sequence[Any] | None = None, *, seconds: bool = False) -> str:
    if value is None:
        return "n/a"
    text = f"{value:.2f}" if seconds else f"{value:.3f}"
    if counts and counts[0] is not None:
        lo, hi = wilson_interval(int(counts[0]), int(counts[1]))
        text += f" ({counts[0]}/{counts[1]}; 95% CI {lo:.2f}–{hi:.2f})"
    elif counts and not seconds:
        text += f" (n={counts[1]})"
    return text


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _clip(text: str, n: int = MAX_QUOTE) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


# -- plots -------------------------------------------------------------------------------------

def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def plot_latency(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    fig = _figure(10, 4)
    hist, cdf = fig.subplots(1, 2)
    series = []
    for key, label in (("ttft_s", "time to first token"), ("total_s", "total")):
        values = sorted(float(r["timings"][key]) for r in rows if (r.get("timings") or {}).get(key) is not None)
        series.append((label, values))
    all_values = [v for _, vs in series for v in vs]
    bins = 20 if all_values else 1
    for label, values in series:
        if not values:
            continue
        hist.hist(values, bins=bins, range=(0, max(all_values) or 1), alpha=0.6, label=f"{label} (n={len(values)})")
        cdf.step(values, [(i + 1) / len(values) for i in range(len(values))], where="post", label=label)
    hist.set_xlabel("seconds")
    hist.set_ylabel("items")
    hist.set_title("Latency histogram")
    cdf.set_xlabel("seconds")
    cdf.set_ylabel("share of items")
    cdf.set_ylim(0, 1.02)
    cdf.set_title("Latency CDF")
    cdf.grid(alpha=0.3)
    if all_values:
        hist.legend()
        cdf.legend(loc="lower right")
    else:
        hist.text(0.5, 0.5, "no timings", ha="center", transform=hist.transAxes)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_categories(metrics: Mapping[str, Any], path: Path) -> Path:
    """Per category: answer accuracy (answerable items), and refusal accuracy for unanswerable ones."""
    groups = [("overall", metrics["overall"])] + list(metrics["by_category"].items())
    labels, acc, refusal = [], [], []
    for name, m in groups:
        labels.append(f"{name}\n(n={m['n_items']})")
        acc.append(m.get("answer_accuracy"))
        refusal.append(m.get("refusal_accuracy"))
    fig = _figure(max(6, 1.6 * len(groups)), 4)
    ax = fig.subplots()
    xs = list(range(len(groups)))
    width = 0.38
    for offset, values, label in ((-width / 2, acc, "answer accuracy"), (width / 2, refusal, "refusal accuracy")):
        pos = [x + offset for x, v in zip(xs, values, strict=True) if v is not None]
        vals = [v for v in values if v is not None]
        bars = ax.bar(pos, vals, width, label=label)
        for bar, v in zip(bars, vals, strict=True):
            ax.text(bar.get_x() + bar.get_width() / 2, v + 0.01, f"{v:.2f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(xs, labels)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("share")
    ax.set_title("Accuracy by category")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    return path


# -- markdown ----------------------------------------------------------------------------------

def plot_coverage(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Accuracy and wrong-when-answering against coverage as the refusal threshold sweeps the
    confidences of the run; the engine's own operating point is marked."""
    conf = [float(r.get("confidence") or 0.0) for r in rows]
    right = [bool(r["answerable"] and r.get("right_if_answered")) for r in rows]
    n_answerable = max(1, sum(1 for r in rows if r["answerable"]))
    sweep = refusal_sweep(conf, right)
    cov = [c for _, c, _ in sweep]
    acc = [sum(1 for x, ok in zip(conf, right, strict=True) if x >= t and ok) / n_answerable for t, _, _ in sweep]
    wrong = [w if w is not None else 0.0 for _, _, w in sweep]
    fig = _figure(6.4, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(cov, acc, marker=".", label="accuracy (answerable items)")
    ax.plot(cov, wrong, marker=".", label="wrong when answering")
    answered = [r for r in rows if not r.get("refused")]
    if rows:
        here = len(answered) / len(rows)
        ax.axvline(here, color="grey", linestyle="--", label=f"engine threshold (coverage {here:.2f})")
    ax.set_xlabel("coverage (share of items answered)")
    ax.set_ylabel("share")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, loc="center left")
    ax.set_title("Sweeping the refusal threshold")
    fig.tight_layout()
    fig.savefig(path)
    return path


def _summary_table(metrics: Mapping[str, Any]) -> list[str]:
    groups = [("overall", metrics["overall"])] + list(metrics["by_category"].items())
    lines = ["| metric | " + " | ".join(name for name, _ in groups) + " |",
             "|---|" + "---|" * len(groups),
             "| items | " + " | ".join(str(m["n_items"]) for _, m in groups) + " |"]
    for key, label in LABELS.items():
        seconds = key.endswith("_s")
        cells = [_fmt(m.get(key), (m.get("counts") or {}).get(key), seconds=seconds) for _, m in groups]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _gate_table(metrics: Mapping[str, Any], thresholds: Mapping[str, Any]) -> list[str]:
    lines = ["| metric | scope | limit | measured | status |", "|---|---|---|---|---|"]
    for c in checks(metrics, thresholds):
        op = "≤" if c.kind == "maximum" else "≥"
        status = "n/a" if c.measured is None else ("**FAIL**" if c.failed else "pass")
        lines.append(f"| {c.metric} | {c.scope} | {op} {c.limit} | {_fmt(c.measured)} | {status} |")
    return lines


def _item_head(r: Mapping[str, Any]) -> list[str]:
    out = [f"- **{r['id']}** ({', '.join(r['categories'])}): {_cell(r['question'])}"]
    for turn in r.get("history") or []:
        out.append(f"  - earlier turn: {_clip(turn['question'], 160)} → {_clip(turn['answer'], 160)}")
    if r.get("standalone_question") and r["standalone_question"] != r["question"]:
        out.append(f"  - rewritten as: {_clip(r['standalone_question'], 200)}")
    return out


def _citations(r: Mapping[str, Any]) -> list[str]:
    out = []
    supported = r.get("citation_supported") or []
    for i, c in enumerate(r.get("citations") or []):
        mark = ""
        if i < len(supported):
            mark = " (supports the evidence)" if supported[i] else " (**no evidence in the cited passage**)"
        out.append(f"  - [{c.get('n')}] {c.get('doc_id')} / {c.get('chunk_id')}{mark}: “{_clip(c.get('quote', ''))}”")
    return out or ["  - no citations"]


def _rank(r: Mapping[str, Any]) -> str:
    rank = r.get("first_relevant_rank")
    return f"evidence at hit {rank}" if rank else f"evidence not in the {len(r.get('hits') or [])} hits"


def _got(r: Mapping[str, Any], n: int) -> str:
    return f"  - got: {_clip(r['answer'], n)}"


def _evidence(r: Mapping[str, Any]) -> str:
    return f"  - evidence: “{_clip(' / '.join(r['evidence']))}”"


def _wrong(r: Mapping[str, Any]) -> list[str]:
    return [f"  - expected: {' / '.join(r['expected_answers'])}", _got(r, 500),
            f"  - {_rank(r)}; token F1 {r['token_f1']:.2f}", *_citations(r)]


def _false_refusal(r: Mapping[str, Any]) -> list[str]:
    return [f"  - expected: {' / '.join(r['expected_answers'])}; {_rank(r)}", _got(r, 300)]


def _missed_refusal(r: Mapping[str, Any]) -> list[str]:
    return [_got(r, 500), *_citations(r)]


def _uncited(r: Mapping[str, Any]) -> list[str]:
    return [_got(r, 300), *_citations(r)]


def _bad_citations(r: Mapping[str, Any]) -> list[str]:
    return [_evidence(r), *_citations(r)]


def _ungrounded(r: Mapping[str, Any]) -> list[str]:
    return [f"  - not in the cited passages: {', '.join(f'`{t}`' for t in r['ungrounded_terms'])}", _got(r, 500)]


def _retrieval_miss(r: Mapping[str, Any]) -> list[str]:
    return [_evidence(r)]


# (heading, which rows, what to show under each row's question), in the report's order.
FAILURES: tuple[tuple[str, Callable[[Row], Any], Callable[[Row], list[str]]], ...] = (
    ("Wrong answers", lambda r: r["answerable"] and not r["refused"] and not r["correct"], _wrong),
    ("False refusals: answerable items refused", lambda r: r["answerable"] and r["refused"], _false_refusal),
    ("Missed refusals: unanswerable items answered", lambda r: not r["answerable"] and not r["refused"],
     _missed_refusal),
    ("Correct answers without a supporting citation",
     lambda r: r["correct"] and r.get("has_supporting_citation") is False, _uncited),
    ("Answers citing passages without the evidence",
     lambda r: r.get("citation_supported") and not all(r["citation_supported"]), _bad_citations),
    ("Ungrounded answers", lambda r: r.get("grounded") is False, _ungrounded),
    ("Retrieval misses: evidence in none of the hits",
     lambda r: r["answerable"] and r["evidence"] and not r.get("first_relevant_rank"), _retrieval_miss),
)


def _failures(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    out = ["## Failures"]
    for heading, failed, details in FAILURES:
        picked = [r for r in rows if failed(r)]
        out += ["", f"### {heading} ({len(picked)})", ""]
        for r in picked:
            out += _item_head(r) + details(r)
    return out


def render(metrics: Mapping[str, Any], rows: Sequence[Mapping[str, Any]],
           thresholds: Mapping[str, Any] | None = None) -> str:
    s = metrics.get("settings") or {}
    models = metrics.get("models") or {}
    lines = [
        "# Evaluation report",
        "",
        f"{metrics['items']} items from `{metrics.get('qa_file') or 'unknown file'}`, run "
        f"{metrics.get('date') or 'at an unknown date'}"
        + (f" in {metrics['duration_s']:.0f}s." if metrics.get("duration_s") is not None else "."),
        f"Generator `{models.get('generator') or 'unknown'}`, embedder `{models.get('embedder') or 'unknown'}`"
        + (f"; retrieval {s.get('retrieval_mode')} (fusion {s.get('fusion')}, α={s.get('hybrid_alpha')}, "
           f"top_k={s.get('top_k')}), chunks {s.get('chunk_tokens')}/{s.get('chunk_overlap')} tokens" if s else "")
        + ". All settings are in `metrics.json`; every answer with its hits is in `results.jsonl`.",
        "",
        "## Summary",
        "",
        "Shares show (numerator/denominator); n/a means the group has nothing to measure.",
        "",
        *_summary_table(metrics),
        "",
    ]
    if thresholds:
        lines += ["## Gate (`rag eval --check`)", "", *_gate_table(metrics, thresholds), ""]
    lines += [
        "## Plots",
        "",
        f"![Latency histogram and CDF]({LATENCY_PNG})",
        "",
        f"![Accuracy by category]({CATEGORY_PNG})",
        "",
        f"![Accuracy and wrong answers against coverage, sweeping the refusal threshold]({COVERAGE_PNG})",
        "",
        "## Definitions",
        "",
        *[f"- **{name}**: {text}" for name, text in DEFINITIONS.items()],
        "- **categories**: standalone (no history), follow-up (history replayed as written), unanswerable, "
        "no-diacritics (question typed without diacritics); an item can be in two.",
        "",
        *_failures(rows),
        "",
    ]
    return "\n".join(lines)


def write_report(metrics: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], out_dir: Path,
                 thresholds: Mapping[str, Any] | None = None) -> Path:
    """Write report.md and its two PNGs into out_dir; returns the report's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_latency(rows, out_dir / LATENCY_PNG)
    plot_categories(metrics, out_dir / CATEGORY_PNG)
    plot_coverage(rows, out_dir / COVERAGE_PNG)
    path = out_dir / "report.md"
    path.write_text(render(metrics, rows, thresholds), encoding="utf-8")
    return path
