"""Read and validate evaluation sets in the eval/qa.jsonl schema."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import ConfigError
from rag.records import Turn


@dataclass(frozen=True)
class QAItem:
    id: str
    question: str
    answers: tuple[str, ...]
    evidence: tuple[str, ...]
    history: tuple[Turn, ...] = ()
    answerable: bool = True
    tags: tuple[str, ...] = field(default_factory=tuple)
    split: str = "tune"  # "tune" (fitting may read it) or "heldout" (measured once a change is complete)

    @property
    def categories(self) -> list[str]:
        """Report categories: standalone/follow-up/unanswerable, no-diacritics when tagged, and the split."""
        cats = ["unanswerable" if not self.answerable else ("follow-up" if self.history else "standalone")]
        if "no-diacritics" in self.tags:
            cats.append("no-diacritics")
        return cats + [self.split]


def load_qa(path: str | Path) -> list[QAItem]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"no such evaluation file: {path}")
    items: list[QAItem] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            history = tuple(Turn(str(t["question"]), str(t["answer"])) for t in obj.get("history") or [])
            item = QAItem(
                id=str(obj["id"]),
                question=str(obj["question"]),
                answers=tuple(obj.get("answers") or ()),
                evidence=tuple(obj.get("evidence") or ()),
                history=history,
                answerable=bool(obj.get("answerable", True)),
                tags=tuple(obj.get("tags") or ()),
                split=str(obj.get("split", "tune")),
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}:{lineno}: not a valid evaluation item ({exc!r})") from exc
        if item.split not in ("tune", "heldout"):
            raise ConfigError(f"{path}:{lineno}: split {item.split!r} of {item.id!r} must be 'tune' or 'heldout'")
        if item.answerable and not item.answers:
            raise ConfigError(f"{path}:{lineno}: answerable item {item.id!r} has no answers")
        items.append(item)
    if not items:
        raise ConfigError(f"{path}: no evaluation items")
    return items
