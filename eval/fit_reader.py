"""Fit the reader's weights and refusal threshold on the TUNE parts of the question sets.

    python -m eval.fit_reader [--archive-index DIR] [--out rag/reader_model.json]

Every tune item goes through retrieval and the reader's first stage exactly as in `Engine.read`;
each shortlisted sentence is labelled by the item's gold data (it holds a gold answer and overlaps the
gold evidence). A logistic regression (scikit-learn) learns P(sentence answers | features). The
refusal threshold is chosen on out-of-fold probabilities (5 folds by item, so no item scores its
own fit): the lowest threshold at which at most 5% of the answers given are wrong (a wrong sentence,
or an answer to an unanswerable question). Held-out parts are never read.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eval.metrics import answer_correct, contains_evidence, refusal_sweep
from eval.qa import QAItem, load_qa
from rag.config import load_settings
from rag.pipeline import Engine
from rag.reader import FEATURES, MODEL_PATH, SHORTLIST, ReaderModel
from rag.text import fold

HERE = Path(__file__).resolve().parent
DEMO_SETS = (HERE / "qa.jsonl", HERE / "qa_holdout_a.jsonl", HERE / "qa_holdout_b.jsonl")
ARCHIVE_SET = HERE / "archive" / "qa.jsonl"
MAX_WRONG = 0.05
FOLDS = 5


def positive(item: QAItem, sentence: str, passage: str) -> bool:
    """The sentence answers the item: it holds a gold answer, in a passage that holds the gold evidence
    (or is itself part of that evidence), as the evaluation scores an answer and its citation."""
    if not item.answerable or not answer_correct(sentence, item.answers):
        return False
    s = fold(sentence)
    return contains_evidence(passage, item.evidence) or any(s in fold(e) or fold(e) in s for e in item.evidence)


def collect(engine: Engine, items: Sequence[QAItem]) -> list[dict[str, Any]]:
    rows = []
    for item in items:
        evidence = engine.first_stage(item.question, item.history, limit=SHORTLIST)
        rows.append({"id": item.id, "answerable": item.answerable,
                     "x": [[ev.features[f] for f in FEATURES] for ev in evidence],
                     "y": [positive(item, ev.text, ev.hit.chunk.text) for ev in evidence]})
    return rows


def fit(rows: Sequence[dict[str, Any]], c: float = 1.0):
    from sklearn.linear_model import LogisticRegression

    x = np.array([v for r in rows for v in r["x"]], dtype=float)
    y = np.array([v for r in rows for v in r["y"]], dtype=int)
    return LogisticRegression(C=c, max_iter=2000).fit(x, y)


def out_of_fold(rows: Sequence[dict[str, Any]]) -> tuple[list[float], list[bool]]:
    """Per item: the best candidate's probability from a model fitted without the item's fold, and
    whether that best candidate answers it."""
    conf: list[float] = [0.0] * len(rows)
    good: list[bool] = [False] * len(rows)
    for k in range(FOLDS):
        train = [r for i, r in enumerate(rows) if i % FOLDS != k and r["x"]]
        clf = fit(train)
        for i, r in enumerate(rows):
            if i % FOLDS != k or not r["x"]:
                continue
            p = clf.predict_proba(np.array(r["x"], dtype=float))[:, 1]
            j = int(np.argmax(p))
            conf[i], good[i] = float(p[j]), bool(r["y"][j])
    return conf, good


def choose_threshold(conf: Sequence[float], good: Sequence[bool], max_wrong: float = MAX_WRONG) -> float:
    """The lowest threshold at which at most `max_wrong` of the answers given are wrong (1.0, refuse
    everything, when none is)."""
    ok = [t for t, _coverage, wrong in refusal_sweep(conf, good) if wrong is not None and wrong <= max_wrong]
    return min(ok) if ok else 1.0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.fit_reader", description=__doc__.split("\n")[0])
    ap.add_argument("--demo-index", default=None, help="index of the demo corpus (default: RAG_INDEX_DIR)")
    ap.add_argument("--archive-index", default=None, help="index of the archive benchmark (eval/archive)")
    ap.add_argument("--out", default=str(MODEL_PATH))
    ap.add_argument("--max-wrong", type=float, default=MAX_WRONG,
                    help="share of wrong answers the threshold allows on the tune parts (default 0.05)")
    args = ap.parse_args(argv)
    groups = [(p, args.demo_index) for p in DEMO_SETS]
    if args.archive_index:
        groups.append((ARCHIVE_SET, args.archive_index))
    rows: list[dict[str, Any]] = []
    used: dict[str, int] = {}
    for path, index in groups:
        tune = [it for it in load_qa(path) if it.split == "tune"]
        settings = load_settings(index_dir=index) if index else load_settings()
        rows += collect(Engine(settings), tune)
        name = path.relative_to(HERE.parent).as_posix()
        used[name] = len(tune)
        print(f"{name}: {len(tune)} tune items", file=sys.stderr)
    conf, good = out_of_fold(rows)
    good = [g and r["answerable"] for g, r in zip(good, rows)]
    threshold = choose_threshold(conf, good, args.max_wrong)
    answerable = [r["answerable"] for r in rows]
    answered = [c >= threshold for c in conf]
    n_ans = sum(answerable)
    cv = {
        "accuracy": sum(a and g and r for a, g, r in zip(answered, good, answerable)) / max(1, n_ans),
        "coverage": sum(answered) / len(rows),
        "wrong_when_answering": (sum(a and not (g and r) for a, g, r in zip(answered, good, answerable))
                                 / max(1, sum(answered))),
        "best_is_right": sum(g for g, r in zip(good, answerable) if r) / max(1, n_ans),
    }
    clf = fit([r for r in rows if r["x"]])
    model = ReaderModel(dict(zip(FEATURES, map(float, clf.coef_[0]))), float(clf.intercept_[0]), threshold, {
        "fitted": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "tune_items": used, "candidates": sum(len(r["y"]) for r in rows),
        "positives": sum(sum(r["y"]) for r in rows), "max_wrong": args.max_wrong,
        "out_of_fold": {k: round(v, 4) for k, v in cv.items()},
    })
    model.save(args.out)
    print(f"threshold {threshold:.3f}; out-of-fold on the tune parts: " +
          ", ".join(f"{k} {v:.3f}" for k, v in cv.items()))
    print("weights: " + ", ".join(f"{k} {v:+.2f}" for k, v in model.weights.items()) + f", bias {model.bias:+.2f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
