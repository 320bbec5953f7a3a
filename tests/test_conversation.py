"""Name spotting, which the follow-up rewrite and the citation checks both rely on (no model needed)."""

import pytest

from rag.conversation import names


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Should Putin send Milosevic a private message, according to Clinton?", ["Putin", "Milosevic", "Clinton"]),
        ("Which other leader had Putin already spoken to before telling Clinton?", ["Putin", "Clinton"]),
        ("How are the events that ousted Milosevic described in Russia?", ["Milosevic", "Russia"]),
        ("Under Putin's plan, which minister was Kostunica to meet?", ["Putin", "Kostunica"]),
        ("Abu al Hasan met Ludwig van Beethoven.", ["Abu al Hasan", "Ludwig van Beethoven"]),
        ("President Vojislav Koštunica won.", ["Vojislav Koštunica"]),
        ("In what year did Ukraine's Orange Revolution take place?", ["Ukraine", "Orange Revolution"]),
    ],
)
def test_names_skip_question_words_and_keep_particles_inside_names(text, expected):
    assert names(text) == expected


def test_it_after_a_named_thing_becomes_that_thing():
    from rag.conversation import standalone_question
    from rag.records import Turn

    turn = Turn("What is the popular name for the uprising?", "The Bulldozer Revolution")
    # "called that" points at the name, so the rewrite stands alone without the earlier turn.
    assert standalone_question("Why is it called that?", [turn]) == "Why is the Bulldozer Revolution called that?"
    # A person answered is not an "it": "Who translated it?" keeps its context instead.
    person = Turn("Who wrote the article?", "Denis Dmitriev")
    rewritten = standalone_question("Who translated it?", [person])
    assert rewritten.startswith("Who translated it?") and "Who wrote the article?" in rewritten
