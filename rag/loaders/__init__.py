"""Read articles into cleaned Documents, one module per format family sharing `base`'s contract.

- `text`: .txt, .md/.markdown, .html/.htm (one article a file) and .jsonl (one a line);
- `feeds`: RSS and Atom feeds;
- `wordpress`: WordPress WXR exports;
- `newsml`: IPTC NewsML-G2 and NITF;
- `rules`: the rule fields (embargo_until, desks, status, correction), checked for every format.

.xml files are told apart by their root element (`markup.sniff`). A bad file never stops the others: it
becomes a Problem naming the file (and line or item) and the loader moves on. Only a path that does not
exist is an error, since that is a typo, not bad data.

Every format reads fail-closed: an item is published only when its format says so in words the loader knows.
A status it does not know, or a status or rule field it cannot read, leaves the item out as a Problem naming
the file and item; a known unpublished one (a draft, a page, a withheld item) is counted in `skipped`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from lxml import etree

from ..errors import LoadError
from ..records import Document
from . import feeds, markup, newsml, text, wordpress
from .base import SIDECAR, Embargoed, Item, LoadResult, Problem, SidecarError, Skipped, sidecar
from .text import FrontMatterError

SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".jsonl", *markup.XML_SUFFIXES)

__all__ = ["SIDECAR", "SUFFIXES", "Embargoed", "FrontMatterError", "LoadResult", "Problem", "SidecarError", "Skipped",
           "iter_documents", "load_paths"]


def load_paths(paths: Iterable[str | Path]) -> LoadResult:
    result = LoadResult()
    result.documents.extend(iter_documents(paths, result))
    return result


def iter_documents(paths: Iterable[str | Path], result: LoadResult) -> Iterator[Document]:
    """The documents under `paths`, one file at a time, so an ingest never holds the whole archive's
    text; problems, skipped items and unsupported files are recorded in `result` as they are met."""
    files: list[tuple[Path, str]] = []  # (file, the name it is shown under in hits' metadata)
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise LoadError(f"no such file or directory: {path}")
        if path.is_dir():
            for p in sorted(q for q in path.rglob("*") if q.is_file()):
                rel = p.relative_to(path)
                if any(part.startswith(".") for part in rel.parts) or p.name == SIDECAR:
                    continue
                if p.suffix.lower() not in SUFFIXES:
                    key = p.suffix.lower() or "(no suffix)"
                    result.unsupported[key] = result.unsupported.get(key, 0) + 1
                    continue
                files.append((p, _public_name(path, p)))
        else:
            files.append((path, _public_name(path.parent, path)))
    seen: dict[str, str] = {}
    bad_sidecars: set[Path] = set()
    for file, public in files:
        try:
            items = _load_file(file, public)
        except SidecarError as exc:
            if exc.path not in bad_sidecars:
                bad_sidecars.add(exc.path)
                result.problems.append(Problem(str(exc.path), exc.detail, exc.line))
            # Loading it without its metadata would silently drop its title and dates: skip it instead.
            result.problems.append(Problem(str(file), f"skipped: its metadata file {exc.path} is invalid"))
            continue
        for item in items:
            reason = None
            if isinstance(item, Embargoed):
                item, reason = item.document, item.reason
            if isinstance(item, Problem):
                result.problems.append(item)
            elif isinstance(item, Skipped):
                result.skipped[item.reason] = result.skipped.get(item.reason, 0) + 1
            elif item.doc_id in seen:
                result.problems.append(
                    Problem(item.source, f"duplicate document id {item.doc_id!r} (first in {seen[item.doc_id]})")
                )
            else:
                seen[item.doc_id] = item.source
                if reason:
                    result.embargoed[reason] = result.embargoed.get(reason, 0) + 1
                yield item


def _public_name(root: Path, file: Path) -> str:
    """A file's name as readers may see it: relative to the folder given (never an absolute server path)."""
    try:
        rel = file.resolve().relative_to(root.resolve().parent)
    except ValueError:
        rel = Path(file.name)
    return rel.as_posix()


def _load_file(path: Path, public: str | None = None) -> Iterable[Item]:
    src = str(path)
    public = public or path.name
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        return [Problem(src, f"unsupported file type {suffix or '(none)'}; expected one of {', '.join(SUFFIXES)}")]
    try:
        data = path.read_bytes()
    except OSError as exc:
        return [Problem(src, f"cannot read: {exc.strerror}")]
    if not data.strip():
        return [Problem(src, "empty file")]
    if b"\x00" in data[:8192]:
        return [Problem(src, "binary file (contains NUL bytes), not an article")]
    if suffix in markup.XML_SUFFIXES:  # XML declares its own encoding
        return _xml(data, src, sidecar(path.parent).get(path.name, {}), public)
    try:
        decoded = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [Problem(src, f"not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}")]
    meta = sidecar(path.parent).get(path.name, {})
    if suffix == ".jsonl":
        return list(text.jsonl(decoded, src, meta, public))
    return text.single(path, decoded, src, meta, public)


def _xml(data: bytes, src: str, meta: Mapping[str, Any], public: str) -> list[Item]:
    """An XML file by what its root is: a WordPress export, a feed, NewsML-G2 or NITF."""
    try:
        root = markup.parse(data)
    except etree.XMLSyntaxError as exc:
        return [Problem(src, f"not well-formed XML: {exc}")]
    kind = markup.sniff(root)
    if kind == "wxr":
        return list(wordpress.wxr(root, src, meta, public))
    if kind == "feed":
        return list(feeds.feed(root, data, src, meta, public))
    if kind == "newsml":
        return list(newsml.newsml(root, src, meta, public))
    if kind == "nitf":
        return list(newsml.nitf(root, src, meta, public))
    return [Problem(src, f"unrecognised XML: root element <{markup.local(root)}> is not RSS, Atom, "
                         "WordPress WXR, NewsML-G2 or NITF")]

