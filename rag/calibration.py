"""Real English prose found offline: the docstrings of Python source trees.

The int8 OpenVINO embedder calibrates its activation ranges on the standard library's docstrings
(the same on every machine with the same Python), and the ingest benchmark uses the installed
packages' docstrings as its large corpus.
"""

from __future__ import annotations

import ast
import sysconfig
from collections.abc import Iterator
from pathlib import Path

# Test suites and third-party packages are skipped so the standard library means the same everywhere.
_SKIP = {"site-packages", "dist-packages", "test", "tests", "idle_test"}


def _module_docstrings(path: Path, module: str) -> Iterator[tuple[str, str]]:
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
        if doc:
            yield name, doc


def docstrings(root: Path, min_chars: int, max_chars: int, *,
               skip: set[str] = frozenset()) -> Iterator[tuple[str, str]]:
    """(dotted name, text) of each distinct docstring of `min_chars` to `max_chars` under `root`, in path order."""
    seen: set[str] = set()
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if skip & set(parts[:-1]):
            continue
        for name, text in _module_docstrings(path, ".".join(parts)):
            if min_chars <= len(text) <= max_chars and text not in seen:  # inherited docstrings repeat
                seen.add(text)
                yield name.removeprefix("."), text


def calibration_texts(n: int = 256) -> list[str]:
    """`n` passage-sized standard-library docstrings (short ones and long ones, as chunks are)."""
    texts: list[str] = []
    for _, text in docstrings(Path(sysconfig.get_paths()["stdlib"]), 80, 1200, skip=_SKIP):
        texts.append(text)
        if len(texts) == n:
            break
    return texts
