"""Check a drafted answer against the evidence, sentence by sentence, and cite what holds.

The model's draft is treated as a proposal: a sentence survives only when its numbers and names
appear in the passage it cites and most of its words come from the cited sentence. Markers are
repaired (added, re-pointed, removed); an answer with nothing left, or a question the evidence
does not cover, becomes a refusal that lists the closest passages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from .chunking import split_sentences
from .conversation import names
from .evidence import Evidence
from .kinds import answer_type, fits, is_checkable, is_strict, known_places
from .metrics import ungrounded_terms
from .records import Citation, Hit
from .text import fold, tokenize

_MARKER = re.compile(r"\s*\[(\d+)\]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# Words a question uses to ask, not to say what it is about.
_FILLER = set(tokenize(
    "say said says tell told according name named call called happen happened describe characterize "
    "characterise date year month day time many much percentage percent number also other kind "
    "please give list explain mean meaning really actually exactly"
))
REFUSAL_PREFIX = "The archive does not say"
MIN_COVERAGE = 0.4
# How much lower than the best evidence sentence's score the sentence a draft rests on may rank.
SUPPORT_MARGIN = 0.05


@dataclass(frozen=True)
class Verdict:
    text: str
    citations: tuple[Citation, ...]
    refused: bool
    reason: str = ""


def question_coverage(question: str, hits: Sequence[Hit], evidence: Sequence[Evidence]) -> tuple[float, list[str]]:
    """Share of the question's content terms found near the best evidence; and terms found nowhere.

    Names and numbers of the question that occur in no retrieved passage are returned as missing:
    a question about "Chechnya" cannot be answered from passages that never mention it.
    """
    passages = " ".join(f"{h.chunk.title} {h.chunk.text}" for h in hits)
    folded = fold(passages)
    missing = [n for n in names(question) if fold(n) not in folded]
    missing += [n for n in _NUMBER.findall(question) if fold(n) not in folded]
    terms = [t for t in dict.fromkeys(tokenize(question)) if t not in _FILLER]
    if not terms:
        return 0.0, missing
    near = set()
    for ev in evidence[:2]:
        near.update(tokenize(f"{ev.context} {ev.hit.chunk.title}"))
    return sum(t in near for t in terms) / len(terms), missing


def verify(question: str, draft: str, evidence: Sequence[Evidence], hits: Sequence[Hit],
           context: str = "") -> Verdict:
    """`question` is what is asked; `context` (a follow-up's earlier turn) only widens coverage."""
    coverage, missing = question_coverage(f"{question} {context}".strip(), hits, evidence)
    if not evidence or missing or coverage < MIN_COVERAGE:
        why = f"not mentioned in the archive: {', '.join(missing)}" if missing else f"coverage {coverage:.2f}"
        return refusal(question, hits, why)
    kind, places = answer_type(question), known_places(h.chunk.text for h in hits)
    if is_strict(question) and not any(ev.fits(question, places) for ev in evidence):
        # "How many votes …?" with no count of votes in any evidence sentence, or "When did Ivanov
        # meet …?" with no date of Ivanov meeting anyone: whatever the model writes would answer
        # another question.
        return refusal(question, hits, f"no {'statement' if kind == 'other' else kind} of the asked kind in the evidence")

    kept: list[tuple[str, Evidence]] = []
    for sentence in _sentences(draft):
        cited = [int(n) for n in _MARKER.findall(sentence)]
        plain = _MARKER.sub("", sentence).strip()
        if not plain or fold(plain).startswith("not in sources"):
            continue
        if plain.endswith("?"):
            continue  # a question back is not an answer
        support = _support(plain, cited, evidence, question)
        if support is not None:
            kept.append((plain, support))
        if len(kept) == 3:
            break

    # The best-ranked sentence of the asked-for kind: the answer unless the draft rests on one as good.
    typed = [ev for ev in evidence if ev.fits(question, places)] or list(evidence)
    # Among those, the one that repeats most of what was asked ("arrested", "died"); ties by rank.
    asked = [t for t in dict.fromkeys(tokenize(question)) if t not in _FILLER]
    best = max(typed, key=lambda ev: (sum(t in set(tokenize(ev.text)) for t in asked), ev.score))
    if kept and best.score - max(ev.score for _, ev in kept) > SUPPORT_MARGIN:
        kept = []  # the model copied a true sentence, but not one about what was asked
    if not kept or (is_checkable(question) and not any(fits(s, kind, question, places=places) for s, _ in kept)):
        # The draft holds nothing checkable, or not the kind of thing asked for: quote the best
        # evidence sentence that has it instead of passing on an unsupported claim.
        kept = [(f"“{best.text}”", best)]
    return _cite(kept)


def _support(sentence: str, cited: Sequence[int], evidence: Sequence[Evidence], question: str = "") -> Evidence | None:
    """The evidence that backs `sentence`: the one it cites if that holds, else any that does.

    The sentence must also say something the question did not: an echo of the question is
    "supported" by any passage that repeats its words, and answers nothing.
    """
    by_n = {ev.n: ev for ev in evidence}
    order = [by_n[n] for n in cited if n in by_n] + [ev for ev in evidence if ev.n not in cited]
    numbers = [fold(n) for n in _NUMBER.findall(sentence)]
    people = [fold(n) for n in names(sentence)]
    words = [t for t in tokenize(sentence) if t not in _FILLER]
    asked = set(tokenize(question))
    if question and not any(w not in asked for w in words):
        return None
    for ev in order:
        # Numbers and names must stand in the cited sentence itself: the model readily borrows a
        # date from the sentence next door and pins it on the wrong event.
        sentence_text = fold(ev.text)
        if any(n not in sentence_text for n in numbers) or any(p not in sentence_text for p in people):
            continue
        if ungrounded_terms(sentence, [ev.text]):  # any other capitalised word ("Russian" for "Russia’s")
            continue
        if words:
            source = set(tokenize(ev.context))
            if sum(w in source for w in words) / len(words) < 0.6:
                continue
            # What the answer repeats from the question ("died") must be what the source says too.
            if any(w in asked and w not in source for w in words):
                continue
        return ev
    return None


def _cite(kept: Sequence[tuple[str, Evidence]]) -> Verdict:
    numbers: dict[int, int] = {}
    citations: list[Citation] = []
    parts: list[str] = []
    for sentence, ev in kept:
        if ev.n not in numbers:
            numbers[ev.n] = len(numbers) + 1
            c = ev.hit.chunk
            citations.append(Citation(numbers[ev.n], c.doc_id, c.title, c.chunk_id, ev.text, ev.start, ev.end))
        body = sentence.rstrip()
        if body.endswith("”"):  # a quotation keeps its own punctuation inside the marks
            parts.append(f"{body} [{numbers[ev.n]}]")
            continue
        end = body[-1] if body and body[-1] in ".!?" else "."
        body = body[:-1] if body and body[-1] in ".!?" else body
        parts.append(f"{body} [{numbers[ev.n]}]{end}")
    return Verdict(" ".join(parts), tuple(citations), refused=False)


def refusal(question: str, hits: Sequence[Hit], reason: str = "") -> Verdict:
    lines = [f"{REFUSAL_PREFIX} — no passage in the archive answers: “{question.strip()}”"]
    if hits:
        lines.append("Closest passages:")
        for h in hits[:3]:
            snippet = h.chunk.text[:160].replace("\n", " ")
            lines.append(f"- {h.chunk.title}: “{snippet}…”")
    return Verdict("\n".join(lines), (), refused=True, reason=reason)


def _sentences(draft: str) -> list[str]:
    text = draft.strip()
    # Markers belong to the sentence before them: "… percent. [1]" -> "… percent [1]."
    text = re.sub(r"([.!?])\s*((?:\[\d+\]\s*)+)", lambda m: f" {m.group(2).strip()}{m.group(1)} ", text)
    return [text[s:e] for s, e in split_sentences(text)]
