"""The restricted fixture articles (tests/fixtures/rules/newsroom.jsonl) and how a test or benchmark
tells whether one of them reached a caller without rights to it.

Each restricted article holds a made-up fact found nowhere else: a made-up word or a long number
with separators, looked for as whole words in what a caller receives (`received`), never as a
substring of a whole page: a short number can sit inside a build hash by chance.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from devtools.textmatch import says

RULES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "rules" / "newsroom.jsonl"
BEFORE = datetime(2099, 12, 10, 7, 59, 59, tzinfo=UTC)  # the embargo ends 2099-12-10T08:00:00Z
AFTER = datetime(2099, 12, 10, 8, 0, 0, tzinfo=UTC)
# What each restricted article holds that no other does: its fact, and its title.
SECRETS = {
    "bridge": ("Quorrin", "Vellmark crossing gets its new name"),
    "ledger": ("9,406,152", "Investigation: gaps in a shipping ledger"),
    "mayor": ("Zentaro", "Ostrevia mayor quits"),
}


class Clock:
    """An injectable clock a test moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [str(k), *_strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def received(body: str) -> str:
    """What a caller receives, as text a person or client reads: the string values (and keys) of a
    JSON body or of each server-sent event, one a line; any other body as it is. A stream's pieces
    are also given joined end to end, so that a fact split over two events is still found."""
    try:
        return "\n".join(_strings(json.loads(body)))
    except ValueError:
        pass
    events = [line[5:].strip() for line in body.splitlines() if line.startswith("data:")]
    if not events:
        return body
    out = []
    for event in events:
        try:
            out += _strings(json.loads(event))
        except ValueError:
            out.append(event)  # "[DONE]" and plain-text events
    return "\n".join(out) + "\n" + "".join(out)


def leaked(text: str, *docs: str) -> list[str]:
    return [s for d in docs for s in SECRETS[d] if says(text, s, ignore_case=True)]
