"""Calibration text: real prose found offline, the same on every run."""

from __future__ import annotations

from pathlib import Path

from rag.calibration import calibration_texts, docstrings


def test_calibration_texts_are_stable_passages():
    texts = calibration_texts(64)
    assert texts == calibration_texts(64)  # the quantised embedder must not depend on the run
    assert len(texts) == 64 and len(set(texts)) == 64
    assert all(80 <= len(t) <= 1200 for t in texts)
    assert sum(t.count(" ") for t in texts) / sum(map(len, texts)) > 0.1  # prose, not code


def test_docstrings_skip_folders_and_repeats(tmp_path: Path):
    doc = '"""' + "A docstring long enough to count as a passage of text. " * 2 + '"""\n'
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg/a.py").write_text(doc + "def f():\n    " + doc.replace("A docstring", "Another docstring"))
    (tmp_path / "pkg/b.py").write_text(doc)  # a copy: kept once
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests/c.py").write_text(doc.replace("A docstring", "A test docstring"))
    (tmp_path / "broken.py").write_text("def (:\n")
    found = list(docstrings(tmp_path, 50, 500, skip={"tests"}))
    assert [name for name, _ in found] == ["pkg.a", "pkg.a.f"]
