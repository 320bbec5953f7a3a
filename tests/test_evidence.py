"""Evidence ranking helpers (no model needed)."""

from rag.evidence import _term_weights, _weighted_overlap
from rag.text import tokenize


def _set(text: str) -> set[str]:
    return set(tokenize(text))


def test_rare_question_terms_count_more_than_common_ones():
    q = _set("When was Milosevic arrested?")
    pool = [_set("Milosevic was elected in 1997."), _set("Police arrested him on April 1, 2001."),
            _set("Milosevic died in 2006."), _set("Milosevic lost the election.")]
    elected, arrested = pool[0], pool[1]
    # "milosevic" is in three of four sentences, "arrest" in one: the sentence about the arrest wins.
    w = _term_weights(q, pool)
    assert _weighted_overlap(w, arrested, arrested) > _weighted_overlap(w, elected, elected)


def test_a_term_found_only_next_door_counts_half():
    q = _set("When was Milosevic arrested?")
    sentence = _set("Police arrested him on April 1, 2001.")
    context = sentence | _set("Milosevic stayed in Serbia.")
    pool = [sentence, _set("Milosevic was elected."), _set("The weather was fine.")]
    w = _term_weights(q, pool)
    alone, with_context = _weighted_overlap(w, sentence, sentence), _weighted_overlap(w, sentence, context)
    assert alone < with_context < _weighted_overlap(w, context, context)
    assert _weighted_overlap({}, sentence, context) == 0.0
