"""Rules that strip page chrome from scraped articles without touching the body.

Each rule judges one line; a line is dropped only when a rule matches it. The rule set is a plain
list so a newsroom can add its own site's chrome (`DEFAULT_RULES + [my_rule]`).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_BULLET = re.compile(r"^[\s•·▪◦\-–*]+")


def _bare(line: str) -> str:
    return _BULLET.sub("", line).strip()


@dataclass(frozen=True)
class LineRule:
    """Drop a line when `pattern` matches the whole line (bullets and spaces ignored)."""

    name: str
    pattern: re.Pattern[str]

    def drops(self, line: str, context: LineContext) -> bool:
        return bool(self.pattern.fullmatch(_bare(line)))


@dataclass(frozen=True)
class LineContext:
    counts: Counter[str]  # how often each bare line occurs in the document
    seen_before: bool  # an identical bare line already occurred earlier


class RepeatedShortLine:
    """A short line repeated verbatim (a photo caption shown three times): keep the first."""

    name = "repeated-caption"

    def __init__(self, max_chars: int = 300) -> None:
        self.max_chars = max_chars

    def drops(self, line: str, context: LineContext) -> bool:
        bare = _bare(line)
        return context.seen_before and 0 < len(bare) <= self.max_chars


Rule = LineRule | RepeatedShortLine | Callable[[str, LineContext], bool]

_I = re.IGNORECASE
DEFAULT_RULES: list[Rule] = [
    LineRule("skip-link", re.compile(r"skip to (main )?content", _I)),
    LineRule("share-bar", re.compile(r"share(?: (?:to|on|this|via)(?: [\w.]+){0,3})?", _I)),
    LineRule("comment-prompt", re.compile(r"(leave a comment|\d* ?comments?|add a comment)", _I)),
    LineRule(
        "relative-time",
        re.compile(
            r"(\d+|an?|one) (second|minute|hour|day|week|month|year)s? ago|just now|yesterday", _I
        ),
    ),
    LineRule("menu", re.compile(r"(menu|search|subscribe|sign in|log in|advertisement)", _I)),
    RepeatedShortLine(),
]


def clean_text(text: str, rules: Sequence[Rule] = DEFAULT_RULES) -> str:
    """Normalise the text and drop chrome lines. Paragraphs end up one per line, blank-separated."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [ln.strip() for ln in text.split("\n")]
    counts = Counter(_bare(ln) for ln in lines if ln)
    seen: set[str] = set()
    kept: list[str] = []
    for line in lines:
        if not line:
            continue
        bare = _bare(line)
        ctx = LineContext(counts=counts, seen_before=bare in seen)
        seen.add(bare)
        if any(_drops(rule, line, ctx) for rule in rules):
            continue
        kept.append(_normalise_bullet(line))
    cleaned = "\n\n".join(kept)
    # A rule set that eats everything is a broken rule set, not an empty article.
    return cleaned if cleaned.strip() else text.strip()


def _drops(rule: Rule, line: str, ctx: LineContext) -> bool:
    if isinstance(rule, (LineRule, RepeatedShortLine)):
        return rule.drops(line, ctx)
    return bool(rule(line, ctx))


def _normalise_bullet(line: str) -> str:
    if line[:1] in "•·▪◦":
        return "• " + line[1:].strip()
    return re.sub(r"[ \t]+", " ", line)
