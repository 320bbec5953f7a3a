"""The rule fields an article may carry, checked in one place for every format (issue 25).

- `embargo_until`: an ISO 8601 time WITH a zone; kept as UTC, `YYYY-MM-DDTHH:MM:SSZ`.
- `desks`: the desks that may see it, a list of strings (or one comma-separated string); absent = everyone.
- `status`: published | corrected | retracted (absent = published).
- `correction`: the correction's text.

Validated here at load time; enforced by every store before ranking (rag.records.Access,
rag/store/base.py Ruled). A document without them gets no such keys.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

FIELDS = ("embargo_until", "desks", "status", "correction")
STATUSES = ("published", "corrected", "retracted")


class RuleError(ValueError):
    pass


def embargo(value: Any) -> str:
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str) and value.strip():
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError:
            raise RuleError("not an ISO 8601 time") from None
    elif isinstance(value, date):
        raise RuleError("a date without a time and zone")
    else:
        raise RuleError("not an ISO 8601 time")
    if when.tzinfo is None or when.utcoffset() is None:
        raise RuleError("ISO 8601 time without a zone (add Z or +hh:mm)")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def desks(value: Any) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(d, str) for d in items):
        raise RuleError("must be a list of desk names or a comma-separated string")
    names = [d.strip() for d in items if d.strip()]
    if not names:
        raise RuleError("names no desk (leave the field out for everyone)")
    return names


def status(value: Any) -> str:
    if not isinstance(value, str) or value.strip().lower() not in STATUSES:
        raise RuleError(f"must be one of {', '.join(STATUSES)}")
    return value.strip().lower()


def correction(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RuleError("must be non-empty text")
    return value.strip()


_CHECKS = {"embargo_until": embargo, "desks": desks, "status": status, "correction": correction}


def apply(fields: dict[str, Any]) -> str | None:
    """Normalise the rule fields present in `fields` in place; the first bad one's message, else None."""
    for name, check in _CHECKS.items():
        if fields.get(name) in (None, ""):  # absent or empty: dropped like any empty field
            continue
        try:
            fields[name] = check(fields[name])
        except RuleError as exc:
            return f"bad {name!r} value {fields[name]!r}: {exc}; document not ingested"
    return None
