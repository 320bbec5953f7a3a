"""What a question asks: its form, the entity types that answer it, what it names, its verb.

The only hand-written knowledge here is the small mapping from question forms ("when", "how many",
"which city") to the entity types of spaCy's English pipeline (OntoNotes labels). Everything else
comes from the parse: entities, lemmas, parts of speech and the dependency tree.
"""

from __future__ import annotations

from dataclasses import dataclass

from .nlp import Parser, default_parser
from .text import fold, tokenize

NUMERIC = frozenset({"CARDINAL", "QUANTITY", "MONEY", "PERCENT"})
# Question forms -> entity labels of an answer. A form not listed asks for a statement, not a typed span.
WH_TYPES: dict[str, frozenset[str]] = {
    "when": frozenset({"DATE", "TIME"}),
    "who": frozenset({"PERSON", "ORG"}),
    "whom": frozenset({"PERSON", "ORG"}),
    "whose": frozenset({"PERSON", "ORG"}),
    "where": frozenset({"GPE", "LOC", "FAC", "ORG"}),
    "how many": NUMERIC,
    "how much": NUMERIC,
    "how old": frozenset({"DATE", "CARDINAL"}),
    "how long": frozenset({"DATE", "TIME", "QUANTITY"}),
    "how far": frozenset({"QUANTITY"}),
    "how tall": frozenset({"QUANTITY"}),
    "how big": frozenset({"QUANTITY"}),
}
# "What <noun> …?" / "Which <noun> …?": generic nouns that name a type. Other nouns ("which treaty")
# are answered by the sentence that matches best, with no type required.
NOUN_TYPES: dict[str, frozenset[str]] = {
    **dict.fromkeys(("year", "date", "day", "month", "decade", "century", "season"), frozenset({"DATE"})),
    "time": frozenset({"DATE", "TIME"}),
    **dict.fromkeys(("hour", "minute"), frozenset({"TIME"})),
    **dict.fromkeys(("percentage", "percent", "proportion", "share"), frozenset({"PERCENT"})),
    **dict.fromkeys(("number", "amount", "total", "figure"), NUMERIC),
    **dict.fromkeys(("price", "cost", "sum", "fee", "salary"), frozenset({"MONEY"})),
    **dict.fromkeys(("city", "country", "state", "town", "nation", "province", "capital", "village"),
                    frozenset({"GPE"})),
    **dict.fromkeys(("place", "region", "location", "area"), frozenset({"GPE", "LOC", "FAC"})),
    **dict.fromkeys(("company", "organization", "organisation", "agency", "party", "team", "newspaper",
                     "university", "institution", "body", "firm", "group"), frozenset({"ORG", "NORP"})),
    **dict.fromkeys(("person", "man", "woman", "people"), frozenset({"PERSON"})),
    "language": frozenset({"LANGUAGE", "NORP"}),
    "nationality": frozenset({"NORP"}),
}
_WH = {"what", "which", "who", "whom", "whose", "when", "where", "why", "how"}
# Entity labels that are figures: a question's dates and numbers are matched as numbers, not names.
_FIGURES = frozenset({"DATE", "TIME", "PERCENT", "MONEY", "QUANTITY", "ORDINAL", "CARDINAL"})


@dataclass(frozen=True)
class Question:
    text: str
    form: str  # "when", "how many", "which city", "what", "why", ... ("" when none is found)
    expected: frozenset[str]  # entity labels an answer holds; empty: the answer is a statement
    names: tuple[str, ...]  # named things the question mentions (entities and proper-noun runs)
    numbers: tuple[str, ...]
    terms: tuple[str, ...]  # folded, stemmed content words (rag.text.tokenize)
    verbs: tuple[str, ...]  # lemmas of its content verbs ("admit" in "when did he admit defeat?")
    subject: str  # the named thing the question is about, when its parse shows one
    verb: str = ""  # lemma of the verb the question word belongs to ("direct" in "who directed X?")
    arguments: tuple[str, ...] = ()  # folded, stemmed words of that verb's other arguments
    unit: str = ""  # lemma of what "how many/much" counts ("vote" in "how many votes …?")
    latest: bool = False  # it asks for the current state ("now", "currently", "latest"): newest evidence first

    @property
    def form_noun(self) -> str:
        """The noun of a "what/which <noun>" form ("element" in "Which chemical element …?")."""
        word, _, noun = self.form.partition(" ")
        return noun if word in ("what", "which") else ""

    @property
    def typed(self) -> bool:
        return bool(self.expected)


# Words by which a question asks for the state of things now, whatever the archive's dates: the
# answer should come from the newest article that holds one, dated "as of" it (issue 25).
LATEST_WORDS = frozenset({"now", "currently", "current", "latest", "presently", "nowadays", "today"})


def analyse(text: str, parser: Parser | None = None) -> Question:
    doc = (parser or default_parser())([text])[0]
    form, expected = _form(doc)
    names = tuple(n for n in names_in(doc) if not _numeric(n))
    numbers = tuple(t.text for t in doc if t.like_num and any(c.isdigit() for c in t.text))
    verbs = tuple(dict.fromkeys(t.lemma_.lower() for t in doc if t.pos_ == "VERB" and t.lemma_.lower() not in _WH))
    verb, arguments = _asked_verb(doc)
    unit = ""
    if form in ("how many", "how much"):
        unit = next((t.lemma_.lower() for t in doc[2:5] if t.pos_ == "NOUN"), "")
    latest = any(_asks_now(t) for t in doc) or any(
        a.lower_ == "most" and b.lower_ == "recent" for a, b in zip(doc, doc[1:]))
    return Question(text=text, form=form, expected=expected, names=names, numbers=numbers,
                    terms=tuple(dict.fromkeys(tokenize(text))), verbs=verbs, subject=_subject(doc, names),
                    verb=verb, arguments=arguments, unit=unit, latest=latest)


def _asks_now(t) -> bool:
    """"now", "currently", "the current/latest X", "today" as an adverb: not a name's word ("Survey of
    Current Business"), not the end of a compound ("carrier-current"), not "today's" as a noun."""
    if t.lower_ not in LATEST_WORDS or t.ent_type_ and t.lower_ != "today":
        return False
    if t.i > 0 and t.doc[t.i - 1].text == "-":
        return False
    return t.pos_ in ("ADJ", "ADV") or (t.lower_ == "today" and t.dep_ == "npadvmod")


def _asked_verb(doc) -> tuple[str, tuple[str, ...]]:
    """The content verb that governs the question word, and the words of its other arguments:
    in "Who directed the 1939 film?" the answer fills the subject slot of "direct", beside "film"."""
    wh = next((t for t in doc if t.lower_ in _WH), None)
    tok = wh
    while tok is not None and tok.pos_ != "VERB" and tok.head.i != tok.i:
        tok = tok.head
    if tok is None or tok.pos_ != "VERB":
        tok = next((t for t in doc if t.pos_ == "VERB"), None)
    if tok is None:
        return "", ()
    words = [t.text for t in tok.subtree
             if t.i != tok.i and t.lower_ not in _WH and t.pos_ in ("PROPN", "NOUN", "NUM", "ADJ")]
    return tok.lemma_.lower(), tuple(dict.fromkeys(tokenize(" ".join(words))))


def _form(doc) -> tuple[str, frozenset[str]]:
    for i, tok in enumerate(doc):
        word = tok.lower_
        if word not in _WH:
            continue
        nxt = doc[i + 1] if i + 1 < len(doc) else None
        if word == "how" and nxt is not None and f"how {nxt.lower_}" in WH_TYPES:
            form = f"how {nxt.lower_}"
            return form, WH_TYPES[form]
        if word in ("what", "which") and tok.dep_ == "det" or (word in ("what", "which") and nxt is not None
                                                                and nxt.pos_ in ("NOUN", "ADJ")):
            noun = tok.head if tok.dep_ == "det" and tok.head.pos_ == "NOUN" else _next_noun(doc, i)
            if noun is not None:
                lemma = noun.lemma_.lower()
                return f"{word} {lemma}", NOUN_TYPES.get(lemma, frozenset())
        if word in ("what", "which") and tok.head.lemma_ == "be":
            # "What is the capital city of Costa Rica?": the copula's other noun names the type.
            noun = next((t for t in tok.head.children if t.i != tok.i and t.dep_ in ("nsubj", "attr")
                         and t.pos_ == "NOUN"), None)
            if noun is not None and noun.lemma_.lower() in NOUN_TYPES:
                return f"{word} {noun.lemma_.lower()}", NOUN_TYPES[noun.lemma_.lower()]
        return word, WH_TYPES.get(word, frozenset())
    return "", frozenset()


def _next_noun(doc, i: int):
    for tok in doc[i + 1: i + 4]:
        if tok.pos_ == "NOUN":
            return tok
        if tok.pos_ not in ("ADJ", "ADV", "NOUN"):
            return None
    return None


def names_in(doc) -> tuple[str, ...]:
    """Entities other than bare numbers, and runs of proper nouns the entity recogniser missed."""
    found: list[str] = []
    covered: set[int] = set()
    for ent in doc.ents:
        if ent.label_ in _FIGURES or any(t.lower_ in _WH for t in ent):
            continue
        text = ent.text.strip()
        if text.lower().startswith("the "):
            text = text[4:]
        found.append(_strip_possessive(text))
        covered.update(range(ent.start, ent.end))
    run: list[str] = []
    for tok in list(doc) + [None]:
        if tok is not None and tok.pos_ == "PROPN" and tok.i not in covered and tok.lower_ not in _WH:
            run.append(tok.text)
            continue
        if run:
            found.append(_strip_possessive(" ".join(run)))
            run = []
    return tuple(dict.fromkeys(n for n in found if n))


def _strip_possessive(text: str) -> str:
    for suffix in ("'s", "’s", "ʼs"):
        if text.endswith(suffix):
            return text[: -len(suffix)]
    return text


def _subject(doc, names: tuple[str, ...]) -> str:
    """The name standing as (or inside) the grammatical subject; else the first name."""
    for tok in doc:
        if tok.dep_ in ("nsubj", "nsubjpass") and tok.lower_ not in _WH:
            span = fold(" ".join(t.text for t in tok.subtree))
            for name in names:
                if fold(name) in span:
                    return name
    return names[0] if names else ""


def name_in(name: str, text_folded: str) -> bool:
    """A name is present when its last word is (surnames carry a name: "Koštunica" for "Vojislav
    Koštunica"), compared folded."""
    words = [w for w in tokenize(name)]
    if not words:
        return fold(name) in text_folded
    return fold(name) in text_folded or words[-1] in set(tokenize(text_folded))


def _numeric(name: str) -> bool:
    """Dates and figures ("2004", "the 1990s") are matched as numbers, not as names."""
    return any(c.isdigit() for c in name)
