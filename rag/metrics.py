"""Evaluation metrics, one definition each (the evaluation report quotes these docstrings)."""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Sequence

from .text import fold, fold_loose

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


def normalize_answer(text: str) -> str:
    """Lower-case, strip diacritics, unify quotes, drop punctuation and articles, fold whitespace."""
    return " ".join(w for w in fold_loose(text).split() if w not in ("a", "an", "the"))


def _number_glue(text: str) -> str:
    # "600,000" and "600 000" are the number 600000, not two tokens.
    return re.sub(r"(?<=\d)[,\s](?=\d{3}\b)", "", text)


def answer_correct(answer: str, gold: Sequence[str]) -> bool:
    """Correct when the normalised answer contains a normalised gold answer as whole words."""
    got = f" {normalize_answer(_number_glue(answer))} "
    return any(f" {normalize_answer(_number_glue(g))} " in got for g in gold if g.strip())


def token_f1(answer: str, gold: Sequence[str]) -> float:
    """SQuAD-style token F1 between the normalised answer and each gold answer; the maximum."""
    pred = normalize_answer(_number_glue(answer)).split()
    best = 0.0
    for g in gold:
        ref = normalize_answer(_number_glue(g)).split()
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


# Groundedness: the check the evaluation reports, and the verifier applies to every answer sentence.

# Capitalised words that are not names. Sentence-initial words are ignored anyway; these are the
# ones that also turn up capitalised mid-sentence (titles, pronouns after a colon or quote).
COMMON_CAPITALISED = frozenset(
    """The A An In On At By For From Of To And But Or As If So He She It They We I You His Her Its
    Their Our This That These Those There Here Yes No According However President Prime Minister
    Mr Mrs Ms Dr""".split()
)

CITATION_MARKER = re.compile(r"\[\s*\d+(?:\s*[,;\-–]\s*\d+)*\s*\]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+|\n+")


def _numbers(text: str) -> list[str]:
    """Numbers with thousands separators removed ("600,000" and "600 000" -> "600000")."""
    return [m.group().replace(",", "") for m in _NUMBER.finditer(_number_glue(text))]


def ungrounded_terms(answer_text: str, cited_texts: Sequence[str]) -> list[str]:
    """Numbers and capitalised names of `answer_text` that appear in none of `cited_texts`.

    Citation markers like [1] or [1, 2] are dropped first. Numbers compare with thousands
    separators removed; words compare folded (case, diacritics) as whole words, or as the start of
    a word for names of 5+ letters ("Yugoslav" is found in "Yugoslavia"). The first word of each
    sentence and COMMON_CAPITALISED words are not checked. A possessive 's is ignored."""
    text = CITATION_MARKER.sub(" ", answer_text)
    cited = " \n ".join(cited_texts)
    cited_numbers = set(_numbers(cited))
    cited_folded = fold(cited)
    missing: list[str] = []

    def miss(term: str) -> None:
        if term not in missing:
            missing.append(term)

    for raw in _numbers(text):
        if raw not in cited_numbers:
            miss(raw)
    for sentence in _SENTENCE_END.split(text):
        for i, m in enumerate(_WORD.finditer(sentence)):
            word = re.sub(r"['’]s$", "", m.group())
            if i == 0 or not word[:1].isupper() or word in COMMON_CAPITALISED:
                continue
            # Whole words; a name of 5+ letters may also start a longer word ("Yugoslav" in "Yugoslavia").
            end = "" if len(word) >= 5 else r"(?!\w)"
            if not re.search(rf"(?<!\w){re.escape(fold(word))}{end}", cited_folded):
                miss(word)
    return missing


def refusal_sweep(confidence: Sequence[float], right: Sequence[bool]) -> list[tuple[float, float, float | None]]:
    """(threshold, coverage, wrong-when-answering) for every threshold that changes the answers,
    ascending: an item is answered when its confidence is at least the threshold, and an answer is
    wrong unless `right` (a correct answer to an answerable question)."""
    pairs = list(zip(confidence, right))
    out: list[tuple[float, float, float | None]] = []
    for t in sorted(set(confidence)):
        answered = [r for c, r in pairs if c >= t]
        wrong = sum(1 for r in answered if not r) / len(answered) if answered else None
        out.append((t, len(answered) / len(pairs) if pairs else 0.0, wrong))
    return out
