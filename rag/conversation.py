"""Follow-up questions made standalone before retrieval.

A 135M-parameter model cannot be trusted to rewrite questions, so the rewrite is built from the
parse: a personal pronoun ("he", "her", "they") is replaced by a person (or group) the previous turn
named, an "it" by a thing it named. Which one is meant is often not clear from grammar alone
("Who was Milošević's rival? – Koštunica. – When did he admit defeat?"), so every plausible
antecedent gives a rewrite, most salient first (the answer's subject, then the question's), and the
engine keeps the one the evidence answers best. A question that still leans on context ("Where did
that take place?") carries the previous turn along for retrieval.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .nlp import Parser, default_parser
from .question import names_in
from .records import Turn

MAX_REWRITES = 3
_PERSONAL = {"he": "", "she": "", "him": "", "his": "’s", "her": "", "hers": "’s", "they": "", "them": "",
             "their": "’s", "theirs": "’s"}
_THING = {"it": "", "its": "’s"}
_LEADING = re.compile(r"^\s*(and|so|but|also|then|ok|okay|what about)\b[\s,]*", re.I)
_PEOPLE = ("PERSON",)
_GROUPS = ("PERSON", "ORG", "NORP", "GPE")
_THINGS = ("ORG", "GPE", "LOC", "FAC", "EVENT", "WORK_OF_ART", "PRODUCT", "LAW", "NORP", "LANGUAGE")


@dataclass(frozen=True)
class Rewrite:
    """A follow-up made standalone: the question with its pronouns resolved, and the earlier turn it
    still leans on ("" when none), which retrieval carries along."""

    question: str
    follows: str = ""

    @property
    def text(self) -> str:
        """What is searched, and shown as the standalone question: the turn it leans on in brackets."""
        return f"{self.question} (following up on: {self.follows})" if self.follows else self.question


def standalone_question(question: str, history: Sequence[Turn], parser: Parser | None = None) -> Rewrite:
    return rewrites(question, history, parser)[0]


def rewrites(question: str, history: Sequence[Turn], parser: Parser | None = None) -> list[Rewrite]:
    """Standalone forms of `question`, most likely first (just the question when there is no history)."""
    question = question.strip()
    if not history:
        return [Rewrite(question)]
    parse = parser or default_parser()
    previous = ""
    antecedents: dict[str, list[str]] = {"person": [], "group": [], "thing": []}
    for turn in history[-3:]:
        asked = turn.question.strip() if not previous else _resolve_first(turn.question, antecedents, parse)
        answer = _clean(turn.answer)
        found = _antecedents(asked, answer, parse)
        for kind in antecedents:  # the latest turn is the most salient
            antecedents[kind] = found[kind] + [a for a in antecedents[kind] if a not in found[kind]]
        previous = f"{asked} {_gist(answer)}".strip()
    doc = parse([question])[0]
    out: list[str] = []
    slots = [t for t in doc if t.lower_ in _PERSONAL or (t.lower_ in _THING and t.pos_ == "PRON")]
    if slots:
        first = slots[0].lower_
        kind = "thing" if first in _THING else "group" if first in ("they", "them", "their", "theirs") else "person"
        for name in (antecedents[kind] or antecedents["person"] + antecedents["thing"])[:MAX_REWRITES]:
            out.append(_substitute(doc, slots, name))
    out = out or [question]
    final = []
    for text in out:
        bare = _capitalise(_LEADING.sub("", text))
        still_leans = bool(re.search(r"\b(that|this|those|these|there|then|the same|else|other)\b", bare, re.I))
        leans = bool(previous) and (still_leans or not names_in(parse([bare])[0]) or len(bare.split()) <= 4)
        final.append(Rewrite(bare, previous if leans else ""))
    return list(dict.fromkeys(final))


def _resolve_first(question: str, antecedents: dict[str, list[str]], parse: Parser) -> str:
    doc = parse([question])[0]
    slots = [t for t in doc if t.lower_ in _PERSONAL or (t.lower_ in _THING and t.pos_ == "PRON")]
    if not slots:
        return _LEADING.sub("", question)
    kind = "thing" if slots[0].lower_ in _THING else "person"
    names = antecedents[kind] or antecedents["person"]
    return _LEADING.sub("", _substitute(doc, slots, names[0])) if names else question


def _antecedents(question: str, answer: str, parse: Parser) -> dict[str, list[str]]:
    """Names of a turn by kind, the answer's subject first, then the question's subject, then the rest."""
    q_doc, a_doc = parse([question, answer])
    out: dict[str, list[str]] = {"person": [], "group": [], "thing": []}
    for doc in (a_doc, q_doc):
        ents = sorted(doc.ents, key=lambda e: (not _in_subject(e), e.start))
        for ent in ents:
            name = (names_in(ent.as_doc())[:1] or [ent.text])[0]
            if ent.label_ in _THINGS and (ent[0].lower_ == "the" or ent.start and doc[ent.start - 1].lower_ == "the"):
                name = f"the {name}"  # "the Bulldozer Revolution", "the Senate"
            for kind, labels in (("person", _PEOPLE), ("group", _GROUPS), ("thing", _THINGS)):
                if ent.label_ in labels and not _known(name, out[kind]):
                    out[kind].append(name)
    # A bare name as the whole answer ("The Bulldozer Revolution") is the thing an "it" means.
    bare = answer.strip().rstrip(".")
    if bare and len(bare.split()) <= 5 and not out["person"] and names_in(a_doc) and not _known(bare, out["thing"]):
        out["thing"].insert(0, bare)
    return out


def _known(name: str, names: Sequence[str]) -> bool:
    last = name.split()[-1].lower() if name.split() else ""
    return any(last and last == n.split()[-1].lower() for n in names)


def _in_subject(ent) -> bool:
    return any(t.dep_ in ("nsubj", "nsubjpass") or any(a.dep_ in ("nsubj", "nsubjpass") for a in t.ancestors)
               for t in ent)


def _substitute(doc, slots, name: str) -> str:
    out = []
    for tok in doc:
        if tok in slots:
            lower = tok.lower_
            suffix = _PERSONAL.get(lower, _THING.get(lower, ""))
            if lower == "her" and tok.tag_ == "PRP":  # "told her" is an object, not a possessive
                suffix = ""
            elif lower == "her":
                suffix = "’s"
            out.append(f"{name}{suffix}{tok.whitespace_}")
        else:
            out.append(tok.text_with_ws)
    return "".join(out)


def _clean(answer: str) -> str:
    return re.sub(r"\s*\[\d+\]", "", answer).strip()


def _gist(answer: str, max_words: int = 25) -> str:
    words = answer.split()
    return " ".join(words[:max_words]) + (" …" if len(words) > max_words else "")


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]
