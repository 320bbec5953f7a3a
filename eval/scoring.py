"""Scoring one answer against its item, and aggregating scored rows into the figures of metrics.json.

Works on `Answer.to_json()` objects only (no engine, no models), so a finished run's results.jsonl
can be scored again with the current metric code (eval/runner.py rescore).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from eval.metrics import (
    DEFAULT_KS,
    answer_correct,
    contains_evidence,
    first_hit_rank,
    percentile,
    retrieval_metrics,
    token_f1,
)
from eval.qa import QAItem
from rag.grounding import CITATION_MARKER, ungrounded_terms

# The report's order of the categories; any other category of a row follows, sorted.
CATEGORIES = ("heldout", "tune", "standalone", "follow-up", "unanswerable", "no-diacritics", "misspelled", "lowercase")

LATENCY_METRICS = ("ttft_p50_s", "ttft_p95_s", "total_p50_s", "total_p95_s")
METRIC_NAMES = tuple(f"recall@{k}" for k in DEFAULT_KS) + (
    "mrr", "answer_accuracy", "token_f1", "citation_precision", "citation_coverage", "refusal_accuracy",
    "false_refusal_rate", "wrong_when_answering", "groundedness",
) + LATENCY_METRICS

# The fields of Answer.to_json() that scoring reads back from a results.jsonl line.
ANSWER_KEYS = ("question", "standalone_question", "answer", "refused", "citations", "hits", "timings")


# -- one item ------------------------------------------------------------------------------------

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


def result_row(item: QAItem, answer: Mapping[str, Any]) -> dict[str, Any]:
    """One results.jsonl line: {"id"} + Answer.to_json() + the item's categories, tags, history
    and its metric fields (score_item)."""
    return {"id": item.id, **answer, "categories": item.categories, "tags": list(item.tags),
            "history": [{"question": t.question, "answer": t.answer} for t in item.history],
            **score_item(item, answer)}


def right(row: Mapping[str, Any]) -> bool:
    """Whether the engine did the right thing: a correct answer, or a refusal of an unanswerable item."""
    return bool(row["correct"] if row["answerable"] else row["refusal_correct"])


# -- a group of rows -------------------------------------------------------------------------------

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
