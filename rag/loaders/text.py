"""One article per file (.txt, .md/.markdown, .html/.htm) and one per line (.jsonl)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import LoadError
from . import base
from .base import Item, Problem, Skipped


class FrontMatterError(LoadError):
    def __init__(self, detail: str, line: int | None) -> None:
        super().__init__(detail)
        self.line = line


def single(path: Path, text: str, src: str, meta: Mapping[str, Any], public: str) -> list[Item]:
    """A file that is one article: plain text, Markdown or an HTML page."""
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        fields = html(text)
    elif suffix in (".md", ".markdown"):
        try:
            fields = markdown(text)
        except FrontMatterError as exc:
            return [Problem(src, str(exc), exc.line)]
    else:
        fields = {"text": text}
    fields.update(meta)
    unpublished = _unpublished(fields, src)
    if unpublished:
        return [unpublished]
    return [base.make_document(path.stem, fields, src, public)]


def _unpublished(fields: dict[str, Any], src: str) -> Skipped | Problem | None:
    """Static-site front matter (or articles.toml) that marks a page unpublished: Hugo's `draft: true` and
    Jekyll's `published: false`. A `draft` that is not true or false is not known to mean published."""
    draft = fields.pop("draft", None)
    if draft is True:
        return Skipped("front matter draft")
    if draft not in (None, False):
        return Problem(src, f"bad 'draft' value {draft!r}: must be true or false; not known to be published, "
                            "left out")
    published = fields.get("published")
    if published is False:
        return Skipped("front matter unpublished")
    if published is True:  # Jekyll's "published: true" says nothing about the date
        del fields["published"]
    return None


def jsonl(text: str, src: str, meta: Mapping[str, Any], public: str = "") -> Iterable[Item]:
    stem = Path(src).stem
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Problem(src, f"not valid JSON ({exc.msg} at column {exc.colno})", lineno)
            continue
        if not isinstance(obj, dict):
            yield Problem(src, f"expected a JSON object, got {type(obj).__name__}", lineno)
            continue
        body = obj.get("text")
        if not isinstance(body, str) or not body.strip():
            yield Problem(src, "missing or empty 'text' field", lineno)
            continue
        fields = {**meta, **obj}
        fields.setdefault("id", f"{stem}-{lineno}")
        yield base.item_document(str(fields["id"]), fields, src, public, lineno)


_FRONT = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.S)


def markdown(text: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    m = _FRONT.match(text)
    if m:
        import yaml  # only markdown with front matter needs it

        try:
            front = yaml.safe_load(m.group(1)) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            # The YAML block starts on the file's second line (after "---").
            line = mark.line + 2 if mark is not None else None
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise FrontMatterError(f"invalid YAML front matter: {problem}", line) from exc
        if front is not None and not isinstance(front, dict):
            raise FrontMatterError(f"front matter must be key: value lines, got a {type(front).__name__}", 2)
        if isinstance(front, dict):
            fields.update({k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in front.items()})
        text = text[m.end():]
    heading = re.search(r"^#\s+(.+)$", text, re.M)
    if heading and "title" not in fields:
        fields["title"] = heading.group(1).strip()
    text = re.sub(r"^#{1,6}\s+", "", text, flags=re.M)  # heading markers
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", text)  # images -> alt text
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)  # links -> their text
    text = re.sub(r"(\*\*|__|\*|_|`)(\S(?:.*?\S)?)\1", r"\2", text)  # emphasis, code
    fields["text"] = text
    return fields


def html(page: str) -> dict[str, Any]:
    import trafilatura  # heavy; only HTML needs it

    doc = trafilatura.bare_extraction(
        page, include_comments=False, include_tables=False, with_metadata=True, favor_precision=True
    )
    if doc is None:
        return {"text": ""}
    get = (lambda k: getattr(doc, k, None)) if not isinstance(doc, dict) else doc.get
    fields: dict[str, Any] = {"text": get("text") or ""}
    for ours, theirs in (("title", "title"), ("byline", "author"), ("publisher", "sitename"),
                         ("published", "date"), ("url", "url")):
        if get(theirs):
            fields[ours] = get(theirs)
    return fields
