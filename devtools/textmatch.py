"""Finding a fact in what a reader or client receives, so that a test cannot pass or fail by chance.

A short string searched for with `in` may be found inside another word, number or hash: "2 documents"
inside "12 documents", "bench" inside "benchmark", "4718" inside a build hash "e544718859...".
"""

from __future__ import annotations

import re


def says(text: str, phrase: str, *, ignore_case: bool = False) -> bool:
    """`phrase` occurs in `text` as a whole: no letter, digit or underscore right before or after it.
    (Lookarounds rather than \\b, so a phrase may begin or end with punctuation: "$3", "(1 .docx)".)"""
    flags = re.IGNORECASE if ignore_case else 0
    return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text, flags) is not None
