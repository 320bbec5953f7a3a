"""The contract every format module shares: a format reads one file's text and gives Documents and Problems.

`make_document` turns one item's fields into a Document (or a Problem); every format calls it through this
module (`base.make_document`), so one patch here sees every document read (eval/bench/faults.py does).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cleaning import clean_text
from ..errors import LoadError
from ..records import Document
from . import rules

SIDECAR = "articles.toml"


@dataclass(frozen=True)
class Problem:
    source: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.message}"


@dataclass
class LoadResult:
    documents: list[Document] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # Files found in folders but not of a type the loader reads, by suffix (".pdf": 3).
    unsupported: dict[str, int] = field(default_factory=dict)
    # Items read but deliberately not ingested, by format, status and type ("wxr draft post": 2, "wxr page": 1).
    skipped: dict[str, int] = field(default_factory=dict)
    # Documents ingested under an embargo their format set, by reason ("wxr future post": 1): in the archive
    # now, shown to readers when the embargo passes.
    embargoed: dict[str, int] = field(default_factory=dict)

    @property
    def unsupported_count(self) -> int:
        return sum(self.unsupported.values())

    @property
    def skipped_count(self) -> int:
        return sum(self.skipped.values())


class Unreadable(LoadError):
    """A field an item's publication depends on (its status, type, embargo) that cannot be read; the message
    names the field and its value. The item is then not known to be published and is left out."""


@dataclass(frozen=True)
class Skipped:
    """An item a format leaves out on purpose (a draft, a page); counted in LoadResult.skipped."""

    reason: str


@dataclass(frozen=True)
class Embargoed:
    """A document whose format holds it back until a time (a scheduled WordPress post, an embargoed agency
    item): ingested with `embargo_until` set, and counted in LoadResult.embargoed under `reason`."""

    document: Document
    reason: str


Item = Document | Problem | Skipped | Embargoed


class SidecarError(LoadError):
    def __init__(self, path: Path, detail: str, line: int | None = None) -> None:
        super().__init__(f"{path}{f':{line}' if line else ''}: {detail}")
        self.path, self.detail, self.line = path, detail, line


def make_document(default_id: str, fields: Mapping[str, Any], source: str, public: str = "") -> Document | Problem:
    fields = dict(fields)
    body = clean_text(str(fields.pop("text", "")))
    if not body.strip():
        return Problem(source, "no article text after extraction")
    bad = rules.apply(fields)
    if bad:
        return Problem(source, bad)
    doc_id = str(fields.pop("id", "") or default_id)
    title = str(fields.pop("title", "") or "").strip() or first_line(body)
    meta = {k: v for k, v in fields.items() if v not in (None, "")}
    meta["source"] = public or Path(source).name
    return Document(doc_id=doc_id, text=body, title=title, source=source, metadata=meta)


def item_document(default_id: str, fields: Mapping[str, Any], src: str, public: str, number: int) -> Item:
    """Item `number` of a many-article file (a .jsonl line, a feed entry): its document, or a Problem
    naming the file and the item."""
    doc = make_document(default_id, fields, f"{src}:{number}", f"{public}:{number}")
    return Problem(src, doc.message, number) if isinstance(doc, Problem) else doc


def held(item: Document | Problem, reason: str) -> Item:
    """`item` as held under an embargo its format set, when it became a document."""
    return Embargoed(item, reason) if isinstance(item, Document) else item


def first_line(text: str) -> str:
    line = text.strip().split("\n", 1)[0].strip()
    return line if len(line) <= 200 else line[:197] + "..."


_SIDECAR_CACHE: dict[Path, tuple[float, dict[str, dict[str, Any]]]] = {}


def sidecar(folder: Path) -> dict[str, dict[str, Any]]:
    """Per-file metadata from `articles.toml` beside the files: a table per file name."""
    path = folder / SIDECAR
    if not path.exists():
        return {}
    mtime = path.stat().st_mtime
    cached = _SIDECAR_CACHE.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise SidecarError(path, f"not UTF-8 at offset {exc.start}") from exc
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"at line (\d+)", str(exc))
        raise SidecarError(path, f"invalid TOML: {exc}", int(line.group(1)) if line else None) from exc
    except OSError as exc:
        raise SidecarError(path, f"cannot read: {exc.strerror}") from exc
    bad = [name for name, v in table.items() if not isinstance(v, dict)]
    if bad:
        raise SidecarError(path, f"{bad[0]!r} must be a table ([\"{bad[0]}\"] with key = value lines under it)")
    data = {name: dict(v) for name, v in table.items()}
    _SIDECAR_CACHE[path] = (mtime, data)
    return data
