"""The checked answer: the model's sentence only when it agrees with the chosen evidence."""

import pytest

from rag.citations import REFUSAL_PREFIX, refusal, verify
from rag.nlp import Parser
from rag.question import analyse
from rag.reader import Evidence
from rag.records import Chunk, Hit

SENTENCE = ("On September 28, 2000, the commission announced the first-round results, where Milošević won "
            "38.62 percent and Koštunica got 48.96 percent.")
Q = "What share did Koštunica get in the first round?"


@pytest.fixture(scope="module")
def parser():
    return Parser()


@pytest.fixture(scope="module")
def best():
    chunk = Chunk("doc", "doc#0", 100, 100 + len(SENTENCE), SENTENCE, "Election")
    return Evidence(1, Hit(chunk, 1.0, 1), SENTENCE, 100, 100 + len(SENTENCE), SENTENCE, 0.9, span="48.96 percent")


def test_agreeing_draft_is_kept_with_its_exact_citation(parser, best):
    v = verify(analyse(Q, parser), "Koštunica got 48.96 percent in the first round [1].", best, parser)
    assert v.drafted and not v.refused
    assert v.text == "Koštunica got 48.96 percent in the first round [1]."
    [c] = v.citations
    assert (c.doc_id, c.quote, c.start, c.end) == ("doc", SENTENCE, 100, 100 + len(SENTENCE))


@pytest.mark.parametrize("draft", [
    "Koštunica got 50.24 percent in the first round [1].",  # a number the sentence does not hold
    "Milošević won 38.62 percent [1].",  # true, but not the asked span
    "Putin got 48.96 percent [1].",  # a name the sentence does not hold
    "What share did Koštunica get?",  # a question back
    "",
])
def test_disagreeing_draft_gives_the_span_and_the_quoted_sentence(parser, best, draft):
    v = verify(analyse(Q, parser), draft, best, parser)
    assert not v.drafted and not v.refused
    assert v.text == f"48.96 percent: “{SENTENCE}” [1]"


def test_swapped_roles_are_not_kept(parser):
    sentence = "Clinton told Putin on June 4 that the talks would go on."
    chunk = Chunk("doc", "doc#1", 0, len(sentence), sentence, "Talks")
    ev = Evidence(1, Hit(chunk, 1.0, 1), sentence, 0, len(sentence), sentence, 0.9, span="June 4")
    q = analyse("When did Clinton tell Putin that the talks would go on?", parser)
    assert verify(q, "Clinton told Putin on June 4 that the talks would go on [1].", ev, parser).drafted
    assert not verify(q, "Putin told Clinton on June 4 that the talks would go on [1].", ev, parser).drafted


def test_refusal_lists_the_closest_passages(best):
    v = refusal("Who won in 2004?", [best.hit])
    assert v.refused and v.text.startswith(REFUSAL_PREFIX) and not v.citations
    assert "Election" in v.text
