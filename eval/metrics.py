"""Evaluation metrics, one definition each: pure functions of texts and numbers, no engine.

The report's definitions (eval/report.py) name these functions. Groundedness is the engine's own
check (rag.grounding.ungrounded_terms), so it is not defined again here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from statistics import fmean

from rag.grounding import glue_numbers
from rag.text import fold, fold_loose

DEFAULT_KS = (1, 3, 5, 10)


def contains_evidence(passage: str, evidence: Iterable[str]) -> bool:
    """A passage supports an item when it contains one of its evidence quotes, compared after
    folding case, diacritics, quotes and whitespace."""
    folded = fold(passage)
    return any(fold(q) in folded for q in evidence if q.strip())


def first_hit_rank(passages: Sequence[str], evidence: Sequence[str]) -> int | None:
    for rank, passage in enumerate(passages, start=1):
        if contains_evidence(passage, evidence):
            return rank
    return None


def retrieval_metrics(results: Sequence[Sequence[str]], evidence: Sequence[Sequence[str]],
                      ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """recall@k: share of questions with at least one retrieved passage in the top k that contains
    an evidence quote. MRR: mean over questions of 1/rank of the first such passage (0 if none).
    Only questions with evidence count."""
    ranks = [first_hit_rank(r, e) for r, e in zip(results, evidence, strict=True) if e]
    n = len(ranks)
    if n == 0:
        return {**{f"recall@{k}": 0.0 for k in ks}, "mrr": 0.0, "n": 0}
    out: dict[str, float] = {f"recall@{k}": sum(1 for r in ranks if r and r <= k) / n for k in ks}
    out["mrr"] = sum(1.0 / r for r in ranks if r) / n
    out["n"] = n
    return out


def neighbour_recall(exact: Iterable[Iterable[int]], approx: Iterable[Iterable[int]]) -> float:
    """Mean over queries of the share of the exact top k (one row of ids per query) that the
    approximate search found, in any order; k is the length of each exact row."""
    shares = []
    for e, a in zip(exact, approx, strict=True):
        truth = [int(i) for i in e]
        shares.append(len(set(truth) & {int(i) for i in a}) / len(truth))
    return fmean(shares)


def normalize_answer(text: str) -> str:
    """Lower-case, strip diacritics, unify quotes, drop punctuation and articles, fold whitespace."""
    return " ".join(w for w in fold_loose(text).split() if w not in ("a", "an", "the"))


def answer_correct(answer: str, gold: Sequence[str]) -> bool:
    """Correct when the normalised answer contains a normalised gold answer as whole words."""
    got = f" {normalize_answer(glue_numbers(answer))} "
    return any(f" {normalize_answer(glue_numbers(g))} " in got for g in gold if g.strip())


def token_f1(answer: str, gold: Sequence[str]) -> float:
    """SQuAD-style token F1 between the normalised answer and each gold answer; the maximum."""
    pred = normalize_answer(glue_numbers(answer)).split()
    best = 0.0
    for g in gold:
        ref = normalize_answer(glue_numbers(g)).split()
        common = Counter(pred) & Counter(ref)
        same = sum(common.values())
        if not pred or not ref or same == 0:
            continue
        p, r = same / len(pred), same / len(ref)
        best = max(best, 2 * p * r / (p + r))
    return best


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]) of `values`; 0.0 when empty."""
    if not values:
        return 0.0
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95% for z = 1.96) of a share k/n: unlike the normal approximation
    it stays inside [0, 1] and is not zero-width at 0/n or n/n, as small evaluation parts often are."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def refusal_sweep(confidence: Sequence[float], right: Sequence[bool]) -> list[tuple[float, float, float | None]]:
    """(threshold, coverage, wrong-when-answering) for every threshold that changes the answers,
    ascending: an item is answered when its confidence is at least the threshold, and an answer is
    wrong unless `right` (a correct answer to an answerable question)."""
    pairs = list(zip(confidence, right, strict=True))
    out: list[tuple[float, float, float | None]] = []
    for t in sorted(set(confidence)):
        answered = [r for c, r in pairs if c >= t]
        wrong = sum(1 for r in answered if not r) / len(answered) if answered else None
        out.append((t, len(answered) / len(pairs) if pairs else 0.0, wrong))
    return out
