"""Example questions on the chat page fit the served archive and are answered correctly."""

import json

from conftest import ROOT

from devtools.textmatch import says
from rag.text import fold
from ui.chat import choose_examples


def _qa():
    return {r["question"]: r
            for r in map(json.loads, (ROOT / "eval" / "qa.jsonl").read_text(encoding="utf-8").splitlines())}


def test_examples_come_from_the_eval_set_and_are_answered_correctly(engine):
    chosen = choose_examples(engine, engine.settings)
    qa = _qa()
    assert 1 <= len(chosen) <= 4
    for q in chosen:
        item = qa[q]
        assert item["answerable"] and not item["history"]
        answer = engine.ask(q)
        # An expected answer as whole words: "38.62" must not be found inside "138.62", "2000" inside "20000".
        said = fold(answer.text)
        assert not answer.refused and any(says(said, fold(a)) for a in item["answers"]), (q, answer.text)


def test_another_archive_gets_none_of_the_demo_questions(tmp_path, embedder):
    from conftest import ingest_index as ingest

    from rag.config import load_settings
    from rag.pipeline import Engine

    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "a.txt").write_text("The Quuxville harvest festival was founded in 1911 by Mara Zorblat.",
                                  encoding="utf-8")
    ingest([folder], index_dir=tmp_path / "index", embedder=embedder)
    other = Engine(load_settings(index_dir=tmp_path / "index", corpus_dir=folder), embedder=embedder)
    assert choose_examples(other, other.settings) == []


def test_a_configured_list_keeps_only_questions_the_engine_answers(engine):
    settings = engine.settings.model_copy(update={"example_questions": [
        "Who was Milošević's chief rival in the 2000 Yugoslav presidential race?",
        "What is the population of the capital of Mars?"]})
    assert choose_examples(engine, settings) == [
        "Who was Milošević's chief rival in the 2000 Yugoslav presidential race?"]
