"""The prompt: the chosen evidence sentence, numbered, for the model to phrase an answer from.

The model is small, so it gets one sentence rather than whole passages: a short prompt keeps
time-to-first-token low, and the answer can be checked against exactly that sentence.
"""

from __future__ import annotations

import re
from typing import Sequence

from .reader import Evidence

SYSTEM_PROMPT = (
    "You answer questions about news articles using only the numbered sources. "
    "Reply with one short sentence that states the answer, then the number of the source in brackets."
)
# One worked example: a 135M model follows a pattern far better than an instruction.
_EXAMPLE_USER = (
    "Sources:\n[1] The summit was held in Oslo on May 3, 1999, and lasted two days.\n"
    "[2] The minister, Anna Berg, left the party in 2004.\n\nQuestion: When did Anna Berg leave the party?"
)
_EXAMPLE_ANSWER = "Anna Berg left the party in 2004 [2]."


def prompt_messages(question: str, evidence: Sequence[Evidence]) -> list[dict[str, str]]:
    """Chat messages for the generator. Sources are quoted data: their text never becomes an
    instruction, and whatever the model does with them is checked afterwards anyway."""
    sources = "\n".join(f"[{ev.n}] {_one_line(ev.text)}" for ev in evidence)
    user = f"Sources:\n{sources}\n\nQuestion: {_one_line(question)}"
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": _EXAMPLE_USER},
        {"role": "assistant", "content": _EXAMPLE_ANSWER},
        {"role": "user", "content": user},
    ]


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
