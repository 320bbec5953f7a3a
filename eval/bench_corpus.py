"""A large corpus of real text for ingest benchmarks: the docstrings of the installed packages.

Thousands of documents of English prose (with some code), found offline and identical on every
machine with the same packages. Written as one JSONL file in the engine's loader format.
"""

from __future__ import annotations

import ast
import json
import sysconfig
from pathlib import Path
from typing import Iterator

MIN_CHARS, MAX_CHARS = 300, 900  # article-brief sized: one or two chunks each


def _docstrings(path: Path, module: str) -> Iterator[tuple[str, str]]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
        return
    nodes = [(module, tree)] + [
        (f"{module}.{n.name}", n) for n in ast.walk(tree)
        if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
    ]  # fmt: skip
    for name, node in nodes:
        doc = ast.get_docstring(node, clean=True)
        if doc and MIN_CHARS <= len(doc) <= MAX_CHARS:
            yield name, doc


def docstring_documents(n: int, root: Path | None = None) -> list[dict[str, str]]:
    """The first `n` distinct docstrings of MIN_CHARS to MAX_CHARS characters, in a stable (path) order."""
    root = root or Path(sysconfig.get_paths()["purelib"])
    seen: set[str] = set()
    docs: list[dict[str, str]] = []
    for path in sorted(root.rglob("*.py")):
        module = ".".join(path.relative_to(root).with_suffix("").parts)
        for name, text in _docstrings(path, module):
            if text in seen:  # inherited and copied docstrings
                continue
            seen.add(text)
            docs.append({"id": f"doc{len(docs):05d}", "title": name, "text": text})
            if len(docs) == n:
                return docs
    return docs


def write_corpus(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "docstrings.jsonl"
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for doc in docstring_documents(n):
            f.write(json.dumps(doc, ensure_ascii=False) + "\n")
    tmp.replace(path)  # a run killed mid-write leaves no short corpus to be reused
    return path
