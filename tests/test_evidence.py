"""Evidence ranking helpers (no model needed)."""

from rag.evidence import _term_weights, _weighted_overlap, answer_type, has_type
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


def test_a_place_is_a_name_after_a_preposition_of_place():
    q = "Where were the agreements reached?"
    assert has_type("the agreements that were reached in Okinawa", "place", q)
    assert has_type("On September 6, 2000, in New York, Clinton asked Putin", "place", q)
    # Any capitalised name is not a place, nor is a month after "in".
    assert not has_type("Putin told Clinton that Koštunica needed to take the following steps", "place", q)
    assert not has_type("it happened in July 2000, in a vote", "place", q)
    assert not has_type("the talks in Okinawa", "place", "Where in Okinawa were the talks held?")


def test_how_many_needs_a_count_of_the_asked_noun():
    q = "How many votes did Milošević receive in the runoff?"
    assert has_type("he got rid of 600,000 votes", "number", q)
    assert has_type("Milošević won a million votes", "number", q)
    assert not has_type("Milošević won 38.62 percent and Koštunica got 48.96 percent", "number", q)
    assert has_type("add five to eight percentage points", "number", "How many percentage points would it add?")
    assert has_type("38.62 percent", "number", "What share of the vote did he win?")  # no counted noun


def test_a_titled_person_needs_the_title_next_to_the_name():
    q = "Which foreign minister was Kostunica supposed to meet in Moscow?"
    assert has_type("Meet with Foreign Minister Igor Ivanov while in Moscow;", "person", q)
    assert not has_type("On October 2, Putin proposed hosting Milošević and Koštunica in Moscow", "person", q)
    # A generic "official" takes any title.
    assert has_type("even National Security Council Secretary Nikolai Patrushev", "person",
                    "Which Russian official is called a Cassandra?")  # fmt: skip
    # A longer form of a name already asked about is not an answer.
    assert not has_type("It was about Slobodan Milošević.", "person", "Who wrote about Milošević?")


def test_a_post_is_a_title_next_to_the_person_asked_about():
    q = "What post did Sergey Ivanov hold at the time?"
    assert answer_type(q) == "role"
    assert has_type("Putin said Sergey Ivanov, Russia’s Security Council secretary, would meet him.", "role", q)
    assert not has_type("President Putin: [Looks doubtful, thinks for a moment] Letʼs have Sergey Ivanov meet him.", "role", q)


def test_what_month_needs_a_month():
    q = "In what month and year did Milosevic orchestrate the reforms?"
    assert has_type("In July 2000, Milošević orchestrated constitutional reforms", "date", q)
    assert not has_type("In 2000 he orchestrated reforms", "date", q)


def test_who_did_it_needs_the_action_asked_about():
    from rag.evidence import asked_action

    assert asked_action("Who ordered the arrest?") == "order" and asked_action("Who was his rival?") is None
    assert asked_action("Which candidate finished third?") == "finish"
    assert asked_action("Which Russian official is called a Cassandra?") is None  # passive: any title will do
    assert not has_type("Protesters famously used a bulldozer to storm the building.", "person", "Who drove the bulldozer?")
    assert has_type("Translation by Kevin Rothrock", "person", "And who translated it?")
    assert not has_type("Milan Panić asked Putin to take him in order to prevent a war.", "person", "Who ordered it?")
