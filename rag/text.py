"""Text folding shared by lexical search and evidence matching.

Journalists type "Kostunica" for "Koštunica" and straight quotes for curly ones, so both the index
and the metrics compare folded text.
"""

from __future__ import annotations

import re
import unicodedata

# Characters NFKD does not decompose, and the quote/dash zoo of scraped news pages.
_TRANSLATE = str.maketrans(
    {
        "ʼ": "'", "’": "'", "‘": "'", "‛": "'", "`": "'", "´": "'", "′": "'",
        "“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "″": '"',
        "–": "-", "—": "-", "‒": "-", "−": "-",
        "Đ": "D", "đ": "d", "Ł": "L", "ł": "l", "Ø": "O", "ø": "o",
        "Æ": "AE", "æ": "ae", "Œ": "OE", "œ": "oe", "ı": "i", "\u00a0": " ",
    }
)

_WS = re.compile(r"\s+")


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.translate(_TRANSLATE))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def fold(text: str) -> str:
    """Case-, accent-, quote- and whitespace-insensitive form of `text`."""
    return _WS.sub(" ", strip_accents(text).casefold()).strip()


_PUNCT = re.compile(r"[^\w\s]")


def fold_loose(text: str) -> str:
    """fold() that also drops punctuation: for comparing short answers."""
    return _WS.sub(" ", _PUNCT.sub(" ", fold(text))).strip()


# Numbers keep their inner separators (48.96, 600,000) so they stay one token.
_TOKEN = re.compile(r"[a-z0-9]+(?:[.,'][a-z0-9]+)*")

STOPWORDS = frozenset(
    """a an and are as at be been but by did do does for from had has have he her his how i if in
    into is it its me my of on or our she so than that the their them then there these they this
    to was we were what when where which who whom why will with would you your""".split()
)


_STEMMER = None


def stem(token: str) -> str:
    global _STEMMER
    if _STEMMER is None:
        import Stemmer  # PyStemmer: Snowball English, so "elected" meets "election"

        _STEMMER = Stemmer.Stemmer("english")
    return token if any(c.isdigit() for c in token) else _STEMMER.stemWord(token)


def tokenize(text: str) -> list[str]:
    """Folded word tokens for BM25; "Đ" is spelled "Dj" as journalists type it ("Djukanovic"), the
    same single form for documents and queries, so both spellings of a query score alike."""
    tokens: list[str] = []
    for tok in _TOKEN.findall(strip_accents(text.replace("Đ", "Dj").replace("đ", "dj")).casefold()):
        if tok.endswith("'s"):
            tok = tok[:-2]
        if tok in STOPWORDS:
            continue
        tokens.append(stem(tok))
    return tokens
