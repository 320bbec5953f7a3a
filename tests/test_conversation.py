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
    ],
)
def test_names_skip_question_words_and_keep_particles_inside_names(text, expected):
    assert names(text) == expected
