"""Question forms map to the entity types that answer them; names and verbs come from the parse."""

import pytest

from rag.nlp import Parser
from rag.question import analyse


@pytest.fixture(scope="module")
def parser():
    return Parser()


@pytest.mark.parametrize("question, form, labels", [
    ("When did the harbour reopen?", "when", {"DATE", "TIME"}),
    ("How many votes did Ivan Allen Jr. get?", "how many", {"CARDINAL", "QUANTITY", "MONEY", "PERCENT"}),
    ("In which city was the treaty signed?", "which city", {"GPE"}),
    ("What percentage of the vote did she win?", "what percentage", {"PERCENT"}),
    ("Who composed the Ninth Symphony?", "who", {"PERSON", "ORG"}),
    ("What did the council decide about the school?", "what", set()),
    ("Which treaty ended the war?", "which treaty", set()),
])
def test_question_forms_map_to_entity_types(parser, question, form, labels):
    q = analyse(question, parser)
    assert (q.form, set(q.expected)) == (form, labels)


def test_names_verbs_and_subject_come_from_the_parse(parser):
    q = analyse("When did Vojislav Koštunica admit defeat in the 2000 election?", parser)
    assert q.names == ("Vojislav Koštunica",)
    assert q.verbs == ("admit",) and q.subject == "Vojislav Koštunica"
    assert "2000" in q.numbers
