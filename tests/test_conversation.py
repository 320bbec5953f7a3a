"""Follow-up rewrites from the parse (spaCy): pronouns become the names the previous turn used."""

from rag.conversation import Rewrite, rewrites, standalone_question
from rag.records import Turn


def test_no_history_leaves_the_question_alone():
    assert rewrites("Who won?", []) == [Rewrite("Who won?")]
    assert rewrites(" Who won? ", [])[0].text == "Who won?"


def test_he_gives_one_rewrite_per_person_of_the_previous_turn_answer_first():
    turn = Turn("Who was Milošević's chief rival?", "Vojislav Koštunica [1].")
    out = rewrites("And when did he admit defeat?", [turn])
    questions = [o.question for o in out]
    assert questions[0] == "When did Vojislav Koštunica admit defeat?"
    assert "When did Milošević admit defeat?" in questions  # the engine keeps the one the evidence answers


def test_possessive_pronoun_becomes_a_possessive_name():
    turn = Turn("Who founded the Wellcome Trust?", "Henry Wellcome founded it [1].")
    out = standalone_question("Where was his laboratory?", [turn])
    assert out.question == "Where was Henry Wellcome’s laboratory?"


def test_it_after_a_named_thing_becomes_that_thing():
    turn = Turn("What is the popular name for the uprising?", "The Bulldozer Revolution")
    out = standalone_question("Why is it called that?", [turn])
    assert out.question == "Why is the Bulldozer Revolution called that?"


def test_a_question_that_still_leans_on_context_carries_the_previous_turn():
    turn = Turn("When did Putin call Clinton?", "On October 6 [1].")
    out = standalone_question("Where did that conversation take place?", [turn])
    assert out.question == "Where did that conversation take place?"
    assert out.follows == "When did Putin call Clinton? On October 6."
    # Searched and shown with the turn it leans on, in the words users and the API have always seen.
    assert out.text == ("Where did that conversation take place? "
                        "(following up on: When did Putin call Clinton? On October 6.)")


def test_a_rewrite_that_stands_alone_is_searched_as_it_is():
    turn = Turn("Who was Milošević's chief rival?", "Vojislav Koštunica [1].")
    out = standalone_question("What share of the first-round vote did he get?", [turn])
    assert out.follows == "" and out.text == out.question == \
        "What share of the first-round vote did Vojislav Koštunica get?"


def test_a_question_that_quotes_the_bracket_is_not_cut_there():
    # The rewrite is a record, not a string parsed back: what the user typed stays the question.
    typed = "Who wrote (following up on: the article)?"
    assert rewrites(typed, [])[0].question == typed


def test_empty_and_odd_turns_do_not_break_the_rewrite():
    odd = [Turn("", ""), Turn("\u00d51", "\n"), Turn("Who?", "")]
    assert rewrites("And where did he go?", odd)[0].question in ("And where did he go?", "Where did he go?")
