"""Grounding: the numbers and names of a text that its sources do not hold.

The verifier (rag/citations.py) refuses a sentence in the model's own words that names anything
its source lacks; the evaluation reports the same check over every answer as "groundedness"
(eval/scoring.py), so the figure measures exactly the rule the engine applies.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .text import fold

# Capitalised words that are not names. Sentence-initial words are ignored anyway; these are the
# ones that also turn up capitalised mid-sentence (titles, pronouns after a colon or quote).
COMMON_CAPITALISED = frozenset(
    """The A An In On At By For From Of To And But Or As If So He She It They We I You His Her Its
    Their Our This That These Those There Here Yes No According However President Prime Minister
    Mr Mrs Ms Dr""".split()
)

CITATION_MARKER = re.compile(r"\[\s*\d+(?:\s*[,;\-–]\s*\d+)*\s*\]")
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+|\n+")
_THOUSANDS = re.compile(r"(?<=\d)[,\s](?=\d{3}\b)")


def glue_numbers(text: str) -> str:
    """`text` with thousands separators removed: "600,000" and "600 000" are the number 600000,
    not two tokens (answers and sources write them either way)."""
    return _THOUSANDS.sub("", text)


def _numbers(text: str) -> list[str]:
    """Numbers with thousands separators removed ("600,000" and "600 000" -> "600000")."""
    return [m.group().replace(",", "") for m in NUMBER.finditer(glue_numbers(text))]


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
