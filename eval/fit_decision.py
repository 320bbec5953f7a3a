"""Fit the decision (rag/decision.py) on the TUNE parts of the question sets.

    python -m eval.fit_decision --archive-index DIR [--rows eval/out/decision-rows.jsonl] [--refit]

Every tune item goes through retrieval, the ranker and every reading the engine can make (one
window, then two, ...: `Engine.readings` without stopping), exactly as `rag ask` would; each
reading is labelled right when the answer it would give holds a gold answer (the evaluation's own
rule), and wrong for any answer to an unanswerable question. The rows are kept in --rows, so
`--refit` fits again without reading. A logistic regression (scikit-learn) learns P(right |
features). The threshold is chosen on out-of-fold probabilities (5 folds by item, so no item scores
its own fit) under the engine's own policy (answer the first reading whose probability reaches the
threshold, else refuse): the lowest at which at most 5% of the answers given are wrong. Held-out
parts are never read.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eval.metrics import answer_correct
from eval.qa import QAItem, load_qa
from rag.config import load_settings
from rag.decision import FEATURES, MODEL_PATH, DecisionModel
from rag.pipeline import Engine, relevant
from rag.reading import Reading

HERE = Path(__file__).resolve().parent
DEMO_SETS = (HERE / "qa.jsonl", HERE / "qa_holdout_a.jsonl", HERE / "qa_holdout_b.jsonl")
ARCHIVE_SET = HERE / "archive" / "qa.jsonl"
DEFAULT_ROWS = HERE / "out" / "decision-rows.jsonl"
MAX_WRONG = 0.05
FOLDS = 5
REPEATS = 5  # repeated cross-validation: a threshold set by a handful of items moves less between splits


def collect(engine: Engine, items: Sequence[QAItem], set_name: str) -> list[dict[str, Any]]:
    rows = []
    for item in items:
        found = engine.read(item.question, item.history, limit=8)
        q, evidence = found.question, found.evidence
        readings = [r for r in engine.readings(q, evidence, until_sure=False) if isinstance(r, Reading)] \
            if relevant(evidence) else []
        rows.append({"id": item.id, "set": set_name, "answerable": item.answerable, "readings": [
            {"windows": r.windows, "reply": r.reply, "x": [r.features[f] for f in FEATURES],
             "found": r.answer is not None,
             "right": bool(item.answerable and r.answer is not None and answer_correct(r.answer.text, item.answers))}
            for r in readings]})
        print(f"{item.id}: {[(r['reply'][:30], r['right']) for r in rows[-1]['readings']]}",
              file=sys.stderr, flush=True)
    return rows


def _fit(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    lr = LogisticRegression(C=c, max_iter=5000).fit((x - mean) / scale, y)
    w = lr.coef_[0] / scale
    return w, float(lr.intercept_[0] - (w * mean).sum())


def _matrix(rows: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Readings that found their reply (the others are never answered): features, labels, row index."""
    x, y, g = [], [], []
    for i, row in enumerate(rows):
        for r in row["readings"]:
            if r["found"]:
                x.append(r["x"])
                y.append(r["right"])
                g.append(i)
    return np.array(x, dtype=float), np.array(y, dtype=bool), np.array(g)


def out_of_fold(rows: Sequence[dict[str, Any]], c: float, repeats: int = REPEATS) -> list[list[float]]:
    """Per row, per reading: the mean over `repeats` shuffled 5-fold splits of the probability from a
    fit that did not see the row (0 when the reply was not found)."""
    runs = [_out_of_fold(rows, c, seed) for seed in range(repeats)]
    return [[sum(ps) / len(ps) for ps in zip(*per_run)] for per_run in zip(*runs)]


def _out_of_fold(rows: Sequence[dict[str, Any]], c: float, seed: int) -> list[list[float]]:
    from sklearn.model_selection import GroupKFold

    x, y, g = _matrix(rows)
    p = np.zeros(len(y))
    order = np.random.default_rng(seed).permutation(len(rows))
    fold_of = {int(r): k % FOLDS for k, r in enumerate(order)}
    groups = np.array([fold_of[int(i)] for i in g])
    for train, test in GroupKFold(FOLDS).split(x, y, groups):
        w, b = _fit(x[train], y[train], c)
        p[test] = 1 / (1 + np.exp(-(x[test] @ w + b)))
    out, k = [], 0
    for row in rows:
        probs = []
        for r in row["readings"]:
            probs.append(float(p[k]) if r["found"] else 0.0)
            k += r["found"]
        out.append(probs)
    return out


def policy(rows: Sequence[dict[str, Any]], probs: Sequence[Sequence[float]], t: float) -> dict[str, float]:
    """The engine's policy at threshold t: the first reading whose probability reaches t answers."""
    right = wrong = refused_unanswerable = 0
    for row, ps in zip(rows, probs):
        given = next((r for r, p in zip(row["readings"], ps) if r["found"] and p >= t), None)
        if given is None:
            refused_unanswerable += not row["answerable"]
        elif given["right"]:
            right += 1
        else:
            wrong += 1
    answerable = sum(r["answerable"] for r in rows)
    unanswerable = len(rows) - answerable
    return {"items": len(rows), "right": right, "wrong": wrong, "accuracy": right / max(1, answerable),
            "wrong_when_answering": wrong / max(1, right + wrong),
            "refusal_accuracy": refused_unanswerable / max(1, unanswerable)}


def choose_threshold(rows: Sequence[dict[str, Any]], probs: Sequence[Sequence[float]],
                     max_wrong: float = MAX_WRONG) -> float:
    for t in sorted({round(p, 6) for ps in probs for p in ps if p > 0}):
        f = policy(rows, probs, t)
        if f["right"] + f["wrong"] and f["wrong_when_answering"] <= max_wrong:
            return float(t)
    return 1.0


def tune_items(archive: bool) -> list[tuple[str, list[QAItem]]]:
    sets = [(p.stem, [i for i in load_qa(p) if i.split == "tune"]) for p in DEMO_SETS]
    if archive:
        sets.append(("archive", [i for i in load_qa(ARCHIVE_SET) if i.split == "tune"]))
    return sets


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--archive-index", type=Path, default=None,
                   help="index of eval/archive/corpus (else demo sets only)")
    p.add_argument("--rows", type=Path, default=DEFAULT_ROWS, help="where the labelled readings are kept")
    p.add_argument("--refit", action="store_true", help="fit the rows already in --rows; read nothing")
    p.add_argument("--out", type=Path, default=MODEL_PATH)
    # 0.1: out of fold on the tune parts (3 splits each), accuracy at <= 5% wrong was 0.48 for C 0.1,
    # 0.47 for 0.3, 0.42 for 1 and 0.36 for 3 (eval/READER.md).
    p.add_argument("--c", type=float, default=0.1, help="inverse regularisation strength")
    args = p.parse_args(argv)
    if not args.refit:
        rows = []
        demo = Engine(load_settings())
        for name, items in tune_items(args.archive_index is not None):
            engine = demo if name != "archive" else Engine(load_settings(index_dir=args.archive_index))
            rows += collect(engine, items, name)
        args.rows.parent.mkdir(parents=True, exist_ok=True)
        args.rows.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    rows = [json.loads(line) for line in args.rows.read_text(encoding="utf-8").splitlines()]
    x, y, _ = _matrix(rows)
    oof = out_of_fold(rows, args.c)
    t = choose_threshold(rows, oof)
    figures = policy(rows, oof, t)
    by_set = {s: policy([r for r in rows if r["set"] == s], [p for r, p in zip(rows, oof) if r["set"] == s], t)
              for s in sorted({r["set"] for r in rows})}
    w, b = _fit(x, y, args.c)
    model = DecisionModel(dict(zip(FEATURES, map(float, w))), b, t, {
        "fitted": dt.date.today().isoformat(), "tune_items": len(rows), "readings_found": int(len(y)),
        "right_among_them": int(y.sum()), "c": args.c, "max_wrong": MAX_WRONG, "folds": FOLDS, "repeats": REPEATS,
        "out_of_fold": figures, "out_of_fold_by_set": by_set})
    model.save(args.out)
    print(json.dumps({"threshold": round(t, 4), "out_of_fold": figures, "by_set": by_set,
                      "weights": {k: round(v, 3) for k, v in model.weights.items()}, "bias": round(b, 3)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
