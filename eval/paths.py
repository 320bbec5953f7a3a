"""Where the evaluation's files are: one definition for the runner, the fits and the benchmarks."""

from __future__ import annotations

from pathlib import Path

EVAL_DIR = Path(__file__).resolve().parent
ROOT = EVAL_DIR.parent
DEFAULT_QA = EVAL_DIR / "qa.jsonl"
CORPUS_DIR = ROOT / "corpus"
