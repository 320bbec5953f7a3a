"""A large corpus of real text for ingest benchmarks: the docstrings of the installed packages.

Thousands of documents of English prose (with some code), found offline and identical on every
machine with the same packages. Written as one JSONL file in the engine's loader format.
"""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

from rag.calibration import docstrings

MIN_CHARS, MAX_CHARS = 300, 900  # article-brief sized: one or two chunks each


def docstring_documents(n: int, root: Path | None = None) -> list[dict[str, str]]:
    """The first `n` distinct docstrings of MIN_CHARS to MAX_CHARS characters, in a stable (path) order."""
    root = root or Path(sysconfig.get_paths()["purelib"])
    docs: list[dict[str, str]] = []
    for name, text in docstrings(root, MIN_CHARS, MAX_CHARS):
        docs.append({"id": f"doc{len(docs):05d}", "title": name, "text": text})
        if len(docs) == n:
            break
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
