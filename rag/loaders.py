"""Read articles from .txt, .md, .html and .jsonl files into cleaned Documents.

A bad file never stops the others: it becomes a Problem naming the file (and line) and the loader
moves on. Only a path that does not exist is an error, since that is a typo, not bad data.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cleaning import clean_text
from .errors import LoadError
from .records import Document

SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".jsonl")
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

    @property
    def unsupported_count(self) -> int:
        return sum(self.unsupported.values())


def load_paths(paths: Iterable[str | Path]) -> LoadResult:
    result = LoadResult()
    result.documents.extend(iter_documents(paths, result))
    return result


def iter_documents(paths: Iterable[str | Path], result: LoadResult) -> Iterator[Document]:
    """The documents under `paths`, one file at a time, so an ingest never holds the whole archive's
    text; problems and unsupported files are recorded in `result` as they are met."""
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
            if isinstance(item, Problem):
                result.problems.append(item)
            elif item.doc_id in seen:
                result.problems.append(
                    Problem(item.source, f"duplicate document id {item.doc_id!r} (first in {seen[item.doc_id]})")
                )
            else:
                seen[item.doc_id] = item.source
                yield item


def _public_name(root: Path, file: Path) -> str:
    """A file's name as readers may see it: relative to the folder given (never an absolute server path)."""
    try:
        rel = file.resolve().relative_to(root.resolve().parent)
    except ValueError:
        rel = Path(file.name)
    return rel.as_posix()


class SidecarError(LoadError):
    def __init__(self, path: Path, detail: str, line: int | None = None) -> None:
        super().__init__(f"{path}{f':{line}' if line else ''}: {detail}")
        self.path, self.detail, self.line = path, detail, line


def _load_file(path: Path, public: str | None = None) -> list[Document | Problem]:
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
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [Problem(src, f"not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}")]
    meta = _sidecar(path.parent).get(path.name, {})
    if suffix == ".jsonl":
        return list(_jsonl(text, src, meta, public))
    if suffix in (".html", ".htm"):
        fields = _html(text)
    elif suffix in (".md", ".markdown"):
        try:
            fields = _markdown(text)
        except FrontMatterError as exc:
            return [Problem(src, str(exc), exc.line)]
    else:
        fields = {"text": text}
    fields.update(meta)
    return [_document(path.stem, fields, src, public)]


def _document(default_id: str, fields: Mapping[str, Any], source: str, public: str = "") -> Document | Problem:
    fields = dict(fields)
    body = clean_text(str(fields.pop("text", "")))
    if not body.strip():
        return Problem(source, "no article text after extraction")
    doc_id = str(fields.pop("id", "") or default_id)
    title = str(fields.pop("title", "") or "").strip() or _first_line(body)
    meta = {k: v for k, v in fields.items() if v not in (None, "")}
    meta["source"] = public or Path(source).name
    return Document(doc_id=doc_id, text=body, title=title, source=source, metadata=meta)


def _first_line(text: str) -> str:
    line = text.strip().split("\n", 1)[0].strip()
    return line if len(line) <= 200 else line[:197] + "..."


_SIDECAR_CACHE: dict[Path, tuple[float, dict[str, dict[str, Any]]]] = {}


def _sidecar(folder: Path) -> dict[str, dict[str, Any]]:
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


def _jsonl(text: str, src: str, meta: Mapping[str, Any], public: str = "") -> Iterable[Document | Problem]:
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
        doc = _document(str(fields["id"]), fields, f"{src}:{lineno}", f"{public}:{lineno}")
        yield Problem(src, doc.message, lineno) if isinstance(doc, Problem) else doc


class FrontMatterError(LoadError):
    def __init__(self, detail: str, line: int | None) -> None:
        super().__init__(detail)
        self.line = line


_FRONT = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.S)


def _markdown(text: str) -> dict[str, Any]:
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


def _html(html: str) -> dict[str, Any]:
    import trafilatura  # heavy; only HTML needs it

    doc = trafilatura.bare_extraction(
        html, include_comments=False, include_tables=False, with_metadata=True, favor_precision=True
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
