"""The checked answer: the located phrase with the sentence that holds it, or a sentence in the
model's own words only when it agrees with the sentence it read; and the two ways of not answering."""

import pytest

from rag.citations import NOT_FOUND_PREFIX, REFUSAL_PREFIX, agrees, answer_located, not_found, refusal
from rag.nlp import Parser
from rag.question import analyse
from rag.reader import Evidence
from rag.reading import Located, Sentence, Window
from rag.records import NOT_FOUND, UNCERTAIN, Chunk, Hit

SENTENCE = ("On September 28, 2000, the commission announced the first-round results, where Milošević won "
            "38.62 percent and Koštunica got 48.96 percent.")
Q = "What share did Koštunica get in the first round?"


@pytest.fixture(scope="module")
def parser():
    return Parser()


@pytest.fixture(scope="module")
def best():
    chunk = Chunk("doc", "doc#0", 100, 100 + len(SENTENCE), SENTENCE, "Election", {"published": "2000-10-05"})
    return Evidence(1, Hit(chunk, 1.0, 1), SENTENCE, 100, 100 + len(SENTENCE), SENTENCE, 0.9, span="48.96 percent")


def _window(ev):
    return Window(1, ev, (Sentence(ev.start, ev.end, ev.text),), ev.hit.chunk.title, "2000-10-05")


def test_a_located_phrase_comes_first_then_the_quoted_sentence_its_marker_and_date(best):
    w = _window(best)
    v = answer_located(Located(w, "48.96 percent", w.sentences[0], "exact"))
    assert not v.refused and v.text == f"48.96 percent — “{SENTENCE}” [1] (2000-10-05)"
    [c] = v.citations
    assert (c.doc_id, c.quote, c.start, c.end, c.date) == ("doc", SENTENCE, 100, 100 + len(SENTENCE), "2000-10-05")


def test_a_whole_sentence_answer_is_quoted_once(best):
    w = _window(best)
    v = answer_located(Located(w, SENTENCE, w.sentences[0], "exact"))
    assert v.text == f"“{SENTENCE}” [1] (2000-10-05)"


def test_an_agreeing_sentence_of_the_models_own_is_kept(parser, best):
    assert agrees("Koštunica got 48.96 percent in the first round [1].", analyse(Q, parser), best, parser)


@pytest.mark.parametrize("draft", [
    "Koštunica got 50.24 percent in the first round [1].",  # a number the sentence does not hold
    "Milošević won 38.62 percent [1].",  # true, but not the asked span
    "Putin got 48.96 percent [1].",  # a name the sentence does not hold
    "What share did Koštunica get?",  # a question back
    "",
])
def test_a_disagreeing_sentence_is_not(parser, best, draft):
    assert not agrees(draft, analyse(Q, parser), best, parser)


def test_swapped_roles_do_not_agree(parser):
    sentence = "Clinton told Putin on June 4 that the talks would go on."
    chunk = Chunk("doc", "doc#1", 0, len(sentence), sentence, "Talks")
    ev = Evidence(1, Hit(chunk, 1.0, 1), sentence, 0, len(sentence), sentence, 0.9, span="June 4")
    q = analyse("When did Clinton tell Putin that the talks would go on?", parser)
    assert agrees("Clinton told Putin on June 4 that the talks would go on [1].", q, ev, parser)
    assert not agrees("Putin told Clinton on June 4 that the talks would go on [1].", q, ev, parser)


def test_no_confident_answer_lists_the_closest_passages_with_their_best_sentence(best):
    v = refusal("Who won in 2004?", [best.hit], evidence=[best])
    assert v.refused and v.status == UNCERTAIN and v.text.startswith(REFUSAL_PREFIX) and not v.citations
    assert "Election, 2000-10-05" in v.text and SENTENCE in v.text
    [c] = v.closest
    assert (c.quote, c.start, c.end) == (SENTENCE, 100, 100 + len(SENTENCE))
    assert "not in the archive" not in v.text.lower()


def test_not_in_the_archive_is_its_own_kind():
    v = not_found("Who won the 1950 World Cup?")
    assert v.refused and v.status == NOT_FOUND and v.text.startswith(NOT_FOUND_PREFIX) and not v.closest
