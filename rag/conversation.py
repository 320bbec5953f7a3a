"""Follow-up questions made standalone before retrieval.

A 135M-parameter model cannot be trusted to rewrite questions, so the rewrite is deterministic:
personal pronouns are replaced by the person the conversation is about, and a question that still
leans on context ("Where did that conversation take place?", "How did Clinton respond?") carries
the previous standalone question along for retrieval.
"""

from __future__ import annotations

import re
from typing import Sequence

from .records import Turn

_NAME_WORD = r"[A-ZÀ-ÖØ-ÞĀ-ſ][\w’'ʼ\-]*"
# A particle joins a name only before another capitalised word ("Abu al Hasan", not "Putin already").
_NAME = re.compile(rf"{_NAME_WORD}(?:\s+(?:(?:de|van|von|bin|al)\s+)?{_NAME_WORD})*")
# Capitalised words that open questions or sentences rather than name anyone.
_NOT_NAMES = {
    "who", "whom", "whose", "what", "which", "when", "where", "why", "how", "did", "does", "do", "was",
    "were", "is", "are", "has", "had", "have", "and", "but", "so", "the", "a", "an", "in", "on", "at",
    "by", "to", "for", "of", "with", "from", "after", "before", "according", "i", "it", "he", "she",
    "they", "his", "her", "their", "its", "this", "that", "there", "then", "yes", "no", "president",
    "prime", "minister", "former", "russian", "american", "yugoslav", "serbian", "u.s", "us",
    # Words that open a question or sentence: capitalised there, but nobody's name.
    "should", "could", "would", "will", "can", "may", "might", "must", "shall", "under", "during", "since",
    "until", "between", "among", "while", "although", "because", "if", "as", "here", "many", "some", "all",
    "both", "each", "every", "besides", "despite", "tell", "name", "list", "give", "describe", "explain",
    "summarize", "summarise", "please", "why", "not", "also", "only", "even", "just", "then", "now",
}
_SUBJECT = re.compile(r"\b(he|she)\b", re.I)
_OBJECT = re.compile(r"\b(him)\b", re.I)
_POSSESSIVE = re.compile(r"\b(his)\b", re.I)
_CONTEXTUAL = re.compile(
    r"\b(it|its|they|them|their|that|this|those|these|there|then|the same|else|other)\b", re.I
)
_LEADING_CONJ = re.compile(r"^\s*(and|so|but|also|then|what about)\b[\s,]*", re.I)


def names(text: str) -> list[str]:
    """Capitalised name sequences in order, without question words and titles."""
    found: list[str] = []
    # "Ukraine's Orange Revolution" is two names: a possessive ends one.
    parts = (part for m in _NAME.finditer(text) for part in re.split(r"(?<=[’'ʼ]s)\s+", m.group()))
    for part in parts:
        words = part.split()
        while words and words[0].lower().strip("’'ʼ") in _NOT_NAMES:
            words.pop(0)
        while words and words[-1].lower() in _NOT_NAMES:
            words.pop()
        name = re.sub(r"[’'ʼ]s$", "", " ".join(words))
        if name and name not in found:
            found.append(name)
    return found


_PERSON_NOUN = (r"(\w+\s+){0,3}(president|minister|leader|rival|candidate|official|man|woman|person|"
                r"secretary|journalist|author|politician|chairman|head|advisor|adviser)")


def _asks_for_person(question: str) -> bool:
    q = question.strip().lower()
    return bool(re.match(r"(who|whom)\b", q) or re.match(rf"(which|what)\s+{_PERSON_NOUN}\b", q))


def _focus(question: str, answer: str) -> list[str]:
    """People the turn is about, most salient first."""
    in_q, in_a = names(question), names(answer)
    if _asks_for_person(question) and in_a:
        return in_a[:1] + [n for n in in_q if n not in in_a[:1]]
    return in_q + [n for n in in_a if n not in in_q]


def standalone_question(question: str, history: Sequence[Turn]) -> str:
    question = question.strip()
    if not history:
        return question
    previous: list[str] = []
    focus: list[str] = []
    for turn in history:
        rewritten = _capitalise(_LEADING_CONJ.sub("", _resolve(turn.question, focus)))
        previous.append(f"{rewritten} {_gist(turn.answer)}".strip())
        focus = _focus(rewritten, turn.answer) or focus
    resolved = _resolve(question, focus)
    thing = _named_thing(history[-1])
    if thing:  # "What is it called? – The Bulldozer Revolution." "Why is it called that?"
        resolved = _IT.sub(thing, resolved, count=1)
    bare = _capitalise(_LEADING_CONJ.sub("", resolved))
    # "called that" points at the name just put in, not at an earlier passage.
    leaning = _CONTEXTUAL.search(re.sub(r"\b(?:called|named|known as)\s+that\b", "", bare))
    still_needs_context = leaning or not names(bare) or len(bare.split()) <= 4
    if still_needs_context and previous:
        return f"{bare} (following up on: {previous[-1]})"
    return bare


_IT = re.compile(r"\bit\b(?!['’]s)")


def _named_thing(turn: Turn) -> str | None:
    """The previous answer when it is nothing but the name of a thing ("The Bulldozer Revolution"):
    a following "it" means that thing. A person's name is left to the pronoun rules ("he")."""
    answer = re.sub(r"\[\d+\]", "", turn.answer).strip().rstrip(".")
    bare = re.sub(r"^(?:the|a|an)\s+", "", answer, flags=re.I)
    if _asks_for_person(turn.question) or not bare or names(bare) != [bare] or len(bare.split()) > 5:
        return None
    return f"the {bare}" if bare != answer else bare


def _resolve(question: str, focus: Sequence[str]) -> str:
    if not focus:
        return question
    subject = focus[0]
    obj = focus[1] if len(focus) > 1 else focus[0]
    out = _SUBJECT.sub(subject, question)
    out = _OBJECT.sub(obj if _SUBJECT.search(question) else subject, out)
    out = _POSSESSIVE.sub(f"{subject}’s", out)
    return out


def _gist(answer: str, max_words: int = 25) -> str:
    """The previous answer without citation markers, short: it names what "that" refers to."""
    words = re.sub(r"\[\d+\]", "", answer).split()
    return " ".join(words[:max_words]) + (" …" if len(words) > max_words else "")


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]
