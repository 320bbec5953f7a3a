"""Sanity checks for the evaluation question sets: eval/qa.jsonl and the held-out eval/qa_holdout_*.jsonl.

Standard library + pytest only: the data must stay valid even when the RAG package is broken.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QA_PATH = ROOT / "eval" / "qa.jsonl"
QA_PATHS = [QA_PATH, *sorted((ROOT / "eval").glob("qa_holdout_*.jsonl"))]
CORPUS_DIR = ROOT / "corpus"

ALLOWED_TAGS = {"standalone", "follow-up", "unanswerable", "no-diacritics", "injection", "doc000", "doc001"}
REQUIRED_FIELDS = {
    "id": str,
    "question": str,
    "answers": list,
    "evidence": list,
    "history": list,
    "answerable": bool,
    "tags": list,
}

MIN_ITEMS = 50
MIN_FOLLOW_UPS = 8
MIN_UNANSWERABLE = 8
MIN_INJECTION = 1
MIN_NO_DIACRITICS = 8


def _load_items(path: Path = QA_PATH) -> list[dict]:
    items = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:  # pragma: no cover - failure path
                pytest.fail(f"{path.name} line {lineno}: invalid JSON: {exc}")
            if not isinstance(obj, dict):
                pytest.fail(f"{path.name} line {lineno}: expected a JSON object, got {type(obj).__name__}")
            items.append(obj)
    return items


def _corpus_texts() -> dict[str, str]:
    return {
        p.name: p.read_text(encoding="utf-8")
        for p in sorted(CORPUS_DIR.iterdir())
        if p.is_file() and p.suffix == ".txt"
    }


@pytest.fixture(scope="module", params=QA_PATHS, ids=lambda p: p.name)
def items(request) -> list[dict]:
    assert request.param.is_file(), f"missing {request.param}"
    return _load_items(request.param)


@pytest.fixture(scope="module")
def corpus() -> dict[str, str]:
    texts = _corpus_texts()
    assert texts, f"no .txt files under {CORPUS_DIR}"
    return texts


def _iid(item: dict) -> str:
    return str(item.get("id", "<no id>"))


@pytest.mark.parametrize("path", QA_PATHS, ids=lambda p: p.name)
def test_file_is_utf8_and_every_line_parses(path):
    raw = path.read_bytes()
    raw.decode("utf-8")  # raises on invalid UTF-8
    for lineno, line in enumerate(raw.decode("utf-8").splitlines(), 1):
        if line.strip():
            try:
                json.loads(line)
            except json.JSONDecodeError as exc:
                pytest.fail(f"line {lineno} does not parse: {exc}")


def test_required_fields_and_types(items):
    problems = []
    for item in items:
        for field, typ in REQUIRED_FIELDS.items():
            if field not in item:
                problems.append(f"{_iid(item)}: missing field {field!r}")
            elif not isinstance(item[field], typ):
                problems.append(f"{_iid(item)}: field {field!r} should be {typ.__name__}, got {type(item[field]).__name__}")
        if problems:
            continue
        if not item["question"].strip():
            problems.append(f"{_iid(item)}: empty question")
        for key in ("answers", "evidence", "tags"):
            for value in item[key]:
                if not isinstance(value, str) or not value.strip():
                    problems.append(f"{_iid(item)}: {key} entries must be non-empty strings, got {value!r}")
        for turn in item["history"]:
            if not (
                isinstance(turn, dict)
                and isinstance(turn.get("question"), str)
                and isinstance(turn.get("answer"), str)
                and turn["question"].strip()
                and turn["answer"].strip()
            ):
                problems.append(f"{_iid(item)}: history turns need non-empty 'question' and 'answer' strings, got {turn!r}")
        unknown = set(item["tags"]) - ALLOWED_TAGS
        if unknown:
            problems.append(f"{_iid(item)}: unknown tags {sorted(unknown)}")
    assert not problems, "\n".join(problems)


def test_ids_unique_and_well_formed(items):
    ids = [_iid(item) for item in items]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    assert not dupes, f"duplicate ids: {dupes}"
    bad = [i for i in ids if not (len(i) == 4 and i[0] == "q" and i[1:].isdigit())]
    assert not bad, f"ids should look like q001: {bad}"


def test_evidence_is_verbatim_in_corpus(items, corpus):
    problems = []
    for item in items:
        if not item.get("answerable"):
            continue
        for quote in item.get("evidence", []):
            if not any(quote in text for text in corpus.values()):
                problems.append(f"{_iid(item)}: evidence not found verbatim in corpus/: {quote!r}")
    assert not problems, "\n".join(problems)


def test_doc_tags_match_evidence_location(items, corpus):
    problems = []
    for item in items:
        if not item.get("answerable"):
            continue
        for tag in ("doc000", "doc001"):
            if tag not in item["tags"]:
                continue
            texts = [text for name, text in corpus.items() if name.startswith(tag[3:] + "_")]
            if not any(quote in text for quote in item["evidence"] for text in texts):
                problems.append(f"{_iid(item)}: tagged {tag} but no evidence quote is in that article: {item['evidence']!r}")
    assert not problems, "\n".join(problems)


def test_answerable_items_have_answers_and_evidence(items):
    problems = []
    for item in items:
        if item.get("answerable"):
            if not item.get("answers"):
                problems.append(f"{_iid(item)}: answerable but has no answers")
            if not item.get("evidence"):
                problems.append(f"{_iid(item)}: answerable but has no evidence")
            if "unanswerable" in item.get("tags", []):
                problems.append(f"{_iid(item)}: answerable but tagged 'unanswerable'")
    assert not problems, "\n".join(problems)


def test_unanswerable_items_are_marked_and_empty(items):
    problems = []
    for item in items:
        tags = item.get("tags", [])
        if "unanswerable" in tags or "injection" in tags:
            if item.get("answerable") is not False:
                problems.append(f"{_iid(item)}: tagged unanswerable/injection but answerable is {item.get('answerable')!r}")
            if item.get("answers") or item.get("evidence"):
                problems.append(f"{_iid(item)}: unanswerable item should have empty answers and evidence")
        if item.get("answerable") is False and "unanswerable" not in tags:
            problems.append(f"{_iid(item)}: answerable is false but not tagged 'unanswerable'")
    assert not problems, "\n".join(problems)


def test_follow_up_tag_matches_history(items):
    problems = []
    for item in items:
        has_history = bool(item.get("history"))
        tagged = "follow-up" in item.get("tags", [])
        if has_history != tagged:
            problems.append(f"{_iid(item)}: follow-up tag ({tagged}) disagrees with non-empty history ({has_history})")
    assert not problems, "\n".join(problems)


def test_no_diacritics_questions_are_ascii(items):
    problems = []
    for item in items:
        if "no-diacritics" not in item.get("tags", []):
            continue
        question = item.get("question", "")
        bad = sorted({ch for ch in question if ord(ch) > 127})
        if bad:
            problems.append(f"{_iid(item)}: no-diacritics question has non-ASCII characters {bad}: {question!r}")
    assert not problems, "\n".join(problems)


def test_held_out_ids_do_not_clash_with_the_main_set():
    ids = [_iid(item) for path in QA_PATHS for item in _load_items(path)]
    assert len(ids) == len(set(ids)), "an id is used in two sets"


def test_minimum_counts():
    items = _load_items(QA_PATH)  # the held-out sets are small on purpose

    def count(pred) -> int:
        return sum(1 for item in items if pred(item))

    n_follow = count(lambda i: "follow-up" in i["tags"] and i["history"])
    n_unans = count(lambda i: i["answerable"] is False)
    n_inject = count(lambda i: "injection" in i["tags"])
    n_nodia = count(lambda i: "no-diacritics" in i["tags"])
    assert len(items) >= MIN_ITEMS, f"only {len(items)} items (need >= {MIN_ITEMS})"
    assert n_follow >= MIN_FOLLOW_UPS, f"only {n_follow} follow-ups with history (need >= {MIN_FOLLOW_UPS})"
    assert n_unans >= MIN_UNANSWERABLE, f"only {n_unans} unanswerable items (need >= {MIN_UNANSWERABLE})"
    assert n_inject >= MIN_INJECTION, f"only {n_inject} injection items (need >= {MIN_INJECTION})"
    assert n_nodia >= MIN_NO_DIACRITICS, f"only {n_nodia} no-diacritics items (need >= {MIN_NO_DIACRITICS})"
