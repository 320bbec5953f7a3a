"""eval/qa.py: every shipped set loads, and a missing or bad split is refused naming file, line and value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.qa import QAItem, load_qa
from rag.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SETS = [ROOT / "eval" / "qa.jsonl", *sorted((ROOT / "eval").glob("qa_holdout_*.jsonl")),
        ROOT / "eval" / "archive" / "qa.jsonl"]

ITEM = {"id": "t001", "question": "Who?", "answers": ["Ivanov"], "evidence": ["Ivanov met him"], "history": [],
        "answerable": True, "tags": ["standalone"], "split": "heldout"}


@pytest.mark.parametrize("path", SETS, ids=lambda p: p.parent.name + "/" + p.name)
def test_shipped_sets_load_with_both_parts(path):
    items = load_qa(path)
    assert {i.split for i in items} == {"tune", "heldout"}


def _write(tmp_path: Path, *objs: dict) -> Path:
    path = tmp_path / "set.jsonl"
    path.write_text("".join(json.dumps(o) + "\n" for o in objs), encoding="utf-8")
    return path


def test_split_is_read(tmp_path):
    (item,) = load_qa(_write(tmp_path, ITEM))
    assert item.split == "heldout"


def test_a_bad_split_names_file_line_and_value(tmp_path):
    path = _write(tmp_path, ITEM, {**ITEM, "id": "t002", "split": "test"})
    with pytest.raises(ConfigError, match=rf"{path}:2: item 't002': split must be one of tune, heldout, got 'test'"):
        load_qa(path)


def test_a_missing_split_is_refused(tmp_path):
    path = _write(tmp_path, {k: v for k, v in ITEM.items() if k != "split"})
    with pytest.raises(ConfigError, match=rf"{path}:1: evaluation item lacks the field 'split'"):
        load_qa(path)


def test_records_built_in_code_are_checked_too():
    with pytest.raises(ConfigError, match="got 'Tune'"):
        QAItem("x", "q", ("a",), ("a",), split="Tune")
