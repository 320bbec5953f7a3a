"""Follow-up rewrites from the parse (spaCy): pronouns become the names the previous turn used."""

from rag.conversation import FOLLOW_UP, focus, rewrites, standalone_question
from rag.records import Turn


def test_no_history_leaves_the_question_alone():
    assert rewrites("Who won?", []) == ["Who won?"]


def test_he_gives_one_rewrite_per_person_of_the_previous_turn_answer_first():
    turn = Turn("Who was Milošević's chief rival?", "Vojislav Koštunica [1].")
    out = rewrites("And when did he admit defeat?", [turn])
    heads = [focus(o)[0] for o in out]
    assert heads[0] == "When did Vojislav Koštunica admit defeat?"
    assert "When did Milošević admit defeat?" in heads  # the engine keeps the one the evidence answers


def test_possessive_pronoun_becomes_a_possessive_name():
    turn = Turn("Who founded the Wellcome Trust?", "Henry Wellcome founded it [1].")
    assert focus(standalone_question("Where was his laboratory?", [turn]))[0] == "Where was Henry Wellcome’s laboratory?"


def test_it_after_a_named_thing_becomes_that_thing():
    turn = Turn("What is the popular name for the uprising?", "The Bulldozer Revolution")
    assert focus(standalone_question("Why is it called that?", [turn]))[0] == "Why is the Bulldozer Revolution called that?"


def test_a_question_that_still_leans_on_context_carries_the_previous_turn():
    turn = Turn("When did Putin call Clinton?", "On October 6 [1].")
    out = standalone_question("Where did that conversation take place?", [turn])
    head, context = focus(out)
    assert FOLLOW_UP in out and head == "Where did that conversation take place?"
    assert "When did Putin call Clinton?" in context


def test_empty_and_odd_turns_do_not_break_the_rewrite():
    odd = [Turn("", ""), Turn("\u00d51", "\n"), Turn("Who?", "")]
    assert rewrites("And where did he go?", odd)[0].startswith("And where did he go?") or rewrites(
        "And where did he go?", odd)[0].startswith("Where did he go?")
