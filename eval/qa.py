"""Read and validate evaluation sets in the eval/qa.jsonl schema.

Every item names its part of the set in `split`: "tune" (what the engine may be fitted to) or
"heldout" (measured once a change is complete; see eval/HOLDOUT.md). A file without it is refused
rather than read as all-tune, so a new set cannot slip into tuning unnoticed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import ConfigError
from rag.records import Turn

SPLITS = ("tune", "heldout")


SPELLING_TAGS = ("no-diacritics", "misspelled", "lowercase")


@dataclass(frozen=True)
class QAItem:
    id: str
    question: str
    answers: tuple[str, ...]
    evidence: tuple[str, ...]
    history: tuple[Turn, ...] = ()
    answerable: bool = True
    tags: tuple[str, ...] = field(default_factory=tuple)
    split: str = "tune"  # the files always state it; the default serves records built in code

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ConfigError(f"item {self.id!r}: split must be one of {', '.join(SPLITS)}, got {self.split!r}")

    @property
    def categories(self) -> list[str]:
        """Report categories: standalone/follow-up/unanswerable, the spelling tags (no-diacritics,
        misspelled, lowercase) it carries, and its split (tune/heldout)."""
        cats = ["unanswerable" if not self.answerable else ("follow-up" if self.history else "standalone")]
        cats += [t for t in SPELLING_TAGS if t in self.tags]
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
            split = obj["split"]
            if split not in SPLITS:
                raise ConfigError(
                    f"{path}:{lineno}: item {obj.get('id')!r}: split must be one of {', '.join(SPLITS)}, got {split!r}"
                )
            history = tuple(Turn(str(t["question"]), str(t["answer"])) for t in obj.get("history") or [])
            item = QAItem(
                id=str(obj["id"]),
                question=str(obj["question"]),
                answers=tuple(obj.get("answers") or ()),
                evidence=tuple(obj.get("evidence") or ()),
                history=history,
                answerable=bool(obj.get("answerable", True)),
                tags=tuple(obj.get("tags") or ()),
                split=split,
            )
        except KeyError as exc:
            raise ConfigError(f"{path}:{lineno}: evaluation item lacks the field {exc.args[0]!r}") from exc
        except (json.JSONDecodeError, TypeError) as exc:
            raise ConfigError(f"{path}:{lineno}: not a valid evaluation item ({exc!r})") from exc
        if item.answerable and not item.answers:
            raise ConfigError(f"{path}:{lineno}: answerable item {item.id!r} has no answers")
        items.append(item)
    if not items:
        raise ConfigError(f"{path}: no evaluation items")
    return items
