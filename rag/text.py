"""Text folding shared by lexical search, the embedder, filters and evidence matching.

Journalists type "Kostunica" for "Koštunica" and straight quotes for curly ones, so the index, the
embedder's input, filters and the metrics all compare text through the one fold below.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from functools import lru_cache

# Characters NFKD does not decompose, and the quote/dash zoo of scraped news pages. "Đ" is written
# "Dj", as English-language news types it ("Djukanovic"); the other way it is typed, a bare "D"
# ("Dukanovic"), is met on the query side of lexical search (query_tokens), not by folding both
# letters into one, which would change every indexed "dj" ("Djibouti", "adjust").
_TRANSLATE = str.maketrans(
    {
        "ʼ": "'", "’": "'", "‘": "'", "‛": "'", "`": "'", "´": "'", "′": "'",
        "“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "″": '"',
        "–": "-", "—": "-", "‒": "-", "−": "-",
        "Đ": "Dj", "đ": "dj", "Ł": "L", "ł": "l", "Ø": "O", "ø": "o",
        "Æ": "AE", "æ": "ae", "Œ": "OE", "œ": "oe", "ı": "i", "\u00a0": " ",
    }
)

_WS = re.compile(r"\s+")


def strip_accents(text: str) -> str:
    """`text` without diacritics, in the spellings above, case kept: what the embedder reads (its
    tokenizer splits "Koštunica" into other pieces than "Kostunica")."""
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


def _words(text: str) -> list[str]:
    """The folded words of `text` that carry meaning: stopwords and possessive "'s" dropped."""
    words = []
    for word in _TOKEN.findall(fold(text)):
        if word.endswith("'s"):
            word = word[:-2]
        if word not in STOPWORDS:
            words.append(word)
    return words


def tokenize(text: str) -> list[str]:
    """Folded, stemmed word tokens for BM25, the same for documents and queries: "Đukanović",
    "Djukanovic" and "DJUKANOVIC" are one token."""
    return [stem(word) for word in _words(text)]


# A word with more d's is taken as typed: its spellings double with each one. Words whose stem is
# shorter are too: a swap there meets another word more often than a name ("do"/"dj" + "o" of the
# Vietnamese "Đô", "de"/"Đế", "D."/"DJ").
MAX_SPELLED_DS = 3
MIN_SPELLED_STEM = 4
_D = re.compile("dj|d")


def spellings(word: str) -> list[str]:
    """`word` and the other ways Đ's two transliterations write it, `word` first: each "d" or "dj"
    may stand for an "đ", which the fold writes "dj" ("dukanovic" -> "djukanovic"; "djokovic" ->
    "dokovic", for an article that wrote a bare "D")."""
    parts = _D.split(word)
    if not 0 < len(parts) - 1 <= MAX_SPELLED_DS or len(stem(word)) < MIN_SPELLED_STEM:
        return [word]
    out = [word]
    for letters in itertools.product(("d", "dj"), repeat=len(parts) - 1):
        spelled = parts[0] + "".join(d + rest for d, rest in zip(letters, parts[1:], strict=True))
        if spelled not in out:
            out.append(spelled)
    return out


def query_tokens(query: str) -> list[str]:
    """tokenize() for a query, each word's token followed by those of its other spellings
    (spellings()): a query typed "Dukanovic" meets the index's "djukanov". A spelling no document
    uses scores nothing; callers drop the tokens their index does not hold."""
    return [token for word in _words(query) for token in dict.fromkeys(stem(s) for s in spellings(word))]


MAX_SPELLED_VALUES = 16


@lru_cache(maxsize=1024)  # a filter checks every document against the same few values
def spelled_values(value: str) -> tuple[str, ...]:
    """fold(value) first, then its other spellings of "đ" (spellings(), word by word): what a filter
    on `value` accepts, so "Dukanovic" and "Djukanovic" both match a stored "Đukanović". A value
    with more forms than MAX_SPELLED_VALUES is taken as typed."""
    words = fold(value).split(" ")
    forms = [" ".join(combo) for combo in itertools.islice(
        itertools.product(*(spellings(w) for w in words)), MAX_SPELLED_VALUES + 1)]
    return tuple(forms) if len(forms) <= MAX_SPELLED_VALUES else tuple(forms[:1])
