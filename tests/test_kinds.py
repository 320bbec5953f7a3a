"""Answer kinds: what a question asks for and whether a sentence holds it (no model needed)."""

from rag.kinds import answer_type, asked_action, asked_event, fits, has_type, is_strict


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
    assert asked_action("Who ordered the arrest?") == "order" and asked_action("Who was his rival?") is None
    assert asked_action("Which candidate finished third?") == "finish"
    assert asked_action("Which Russian official is called a Cassandra?") is None  # passive: any title will do
    assert not has_type("Protesters famously used a bulldozer to storm the building.", "person", "Who drove the bulldozer?")
    assert has_type("Translation by Kevin Rothrock", "person", "And who translated it?")
    assert not has_type("Milan Panić asked Putin to take him in order to prevent a war.", "person", "Who ordered it?")


def test_a_website_question_needs_a_website():
    q = "On which website was the transcript published?"
    assert answer_type(q) == "website" and is_strict(q)
    assert has_type("the transcript, published on the Clinton digital library website", "website", q)
    assert not has_type("While he would be here in Moscow, he could state it", "website", q)


def test_a_popular_name_is_a_capitalised_name_in_quotes_or_after_so_called():
    q = "What is the popular name for the uprising that ousted Milošević?"
    assert answer_type(q) == "name"
    assert has_type("Instead, everything ended with the so-called “Bulldozer Revolution”", "name", q)
    assert has_type("In the West, the “Bulldozer Revolution” is still considered a success.", "name", q)
    # A description in quotes is not a name; neither is a sentence with no name at all.
    assert not has_type("The events are considered “the first color revolution” in Russia.", "name", q)
    assert not has_type("As a result of popular unrest, Milošević was forced to step down.", "name", q)


def test_why_a_thing_is_called_so_needs_the_naming_word_used_as_a_word():
    q = "Why is the Bulldozer Revolution called that?"
    assert answer_type(q) == "origin"
    assert has_type("Protesters famously used a bulldozer to storm one of these buildings.", "origin", q)
    assert not has_type("Instead, everything ended with the so-called “Bulldozer Revolution”.", "origin", q)
    assert not has_type("Key in any “color revolution” is overheating.", "origin", q)  # the head noun is not why


def test_a_condition_needs_a_conditional():
    q = "What condition should Kostunica set for agreeing to a runoff?"
    assert answer_type(q) == "condition"
    assert has_type("declare that he agrees to a runoff, so long as Milošević lets observers monitor voting", "condition", q)
    assert not has_type("Putin argued that the opposition made a mistake by refusing the runoff.", "condition", q)


def test_a_response_needs_the_one_asked_about_answering():
    q = "How did Clinton respond?"
    assert answer_type(q) == "response"
    assert has_type("Clinton, in turn, promised to think about it.", "response", q)
    assert not has_type("Clinton and Putin discussed what ought to be done.", "response", q)
    assert not has_type("Putin, in turn, promised to think about it.", "response", q)


def test_a_measured_figure_must_be_reported_as_that_figure():
    q = "What was the voter turnout in the first round?"
    assert answer_type(q) == "number" and is_strict(q)
    assert has_type("Turnout was 71.3 percent.", "number", q) and has_type("a 64 percent turnout", "number", q)
    assert not has_type("Milošević won 38.62 percent and Koštunica got 48.96 percent.", "number", q)


def test_the_event_of_a_date_question_is_its_subject_and_verb():
    assert asked_event("On what date did Sergey Ivanov actually meet Đukanović?").subject == "ivanov"
    assert asked_event("On what date did Sergey Ivanov actually meet Đukanović?").verb == "meet"
    assert asked_event("What did Kostunica's advisers later claim?").subject == "kostunica"
    assert asked_event("What did Kostunica's advisers later claim?").speech
    assert asked_event("On what date did Milan Panic make that request?").verb is None  # a light verb says nothing
    assert asked_event("On what date did the opposition launch a strike?") is None  # no named actor
    assert asked_event("Who ordered the arrest?") is None


def test_a_date_must_be_the_date_of_the_asked_event():
    q = "On what date did Sergey Ivanov actually meet Đukanović?"
    assert is_strict(q)
    # A date, and a meeting, but someone else's.
    assert not fits("On September 6, 2000, Clinton asked Putin to meet directly with Đukanović.", "date", q)
    assert fits("On September 12, 2000, Sergey Ivanov met Đukanović in Moscow.", "date", q)
    # A pronoun counts when the sentence before names the subject; irregular and prefixed verbs count.
    assert fits("A few months later, on April 1, 2001, police arrested him.", "date", "When was Milosevic arrested?",
                before="Milošević stayed in Serbia after the election, but that didn’t last. ")
    assert not fits("A few months later, on April 1, 2001, police arrested him.", "date", "When was Milosevic arrested?")
    assert fits("In 1999, NATO forces began bombing the country.", "date", "In what year did NATO begin bombing Yugoslavia?")
    assert fits("On September 30, 2000, President Clinton telephoned Putin.", "date", "On what date did Clinton phone Putin?")


def test_what_someone_said_needs_them_speaking():
    q = "What did Schroeder tell Putin about Milošević?"
    assert is_strict(q)
    assert not fits("I have already had a conversation with Schroeder.", "other", q)
    assert fits("Schroeder told Putin that the vote was lost.", "other", q)
    assert fits("Milošević’s only hope, said Putin, was election fraud.", "other", "What did Putin say was his only hope?")
    # Inside a transcript, the speaker's label names who says every sentence of the turn.
    assert fits("The vote was lost.", "other", q, before="Intro.\nChancellor Schroeder: We talked. ")
    assert not is_strict("What did Clinton fear Milosevic might do?")  # not speech, not a date: no event check


def test_a_byline_says_who_wrote_it():
    q = "Who wrote the Meduza article?"
    assert has_type("Text by Denis Dmitriev", "person", q) and has_type("Denis Dmitriev wrote it.", "person", q)
    assert not has_type("Translation by Kevin Rothrock", "person", q)  # translating is not writing


def test_who_did_it_needs_the_deed_not_a_noun_of_the_same_root():
    q = "Who arrested Milosevic?"
    assert has_type("A few months later, on April 1, 2001, SWAT police arrested him.", "person", q)
    assert not has_type("The International Criminal Tribunal issued an arrest warrant for Milošević.", "person", q)
    # Credit lines name who did the job they name.
    assert has_type("Translation by Kevin Rothrock", "person", "And who translated it?")
    assert has_type("By Denis Dmitriev", "person", "Who wrote it?")
    assert has_type("Photo by Anna Berg", "person", "Who photographed the protest?")


def test_a_name_used_as_a_place_elsewhere_is_a_place():
    from rag.kinds import known_places

    places = known_places(["Rallies were held in Belgrade.", "He was the President of Montenegro.",
                           "Pressure on Milošević grew."])
    assert places == {"belgrade"}  # "on Milošević" names no place
    q = "In which city did opposition rallies draw crowds?"
    assert has_type("Meanwhile, Belgrade witnessed massive opposition rallies.", "place", q, places)
    assert not has_type("Meanwhile, Belgrade witnessed massive opposition rallies.", "place", q)
    # A title's jurisdiction is not where something happened.
    montenegro = frozenset({"montenegro"})
    assert not has_type("Djukanovic, who was then President of Montenegro, met him.", "place", q, montenegro)
    assert not has_type("Montenegro’s president met him.", "place", q, montenegro)


def test_how_long_needs_a_duration_of_the_thing_asked_about():
    q = "How long was the sentence Milošević received?"
    assert answer_type(q) == "number" and is_strict(q)
    assert has_type("He was sentenced to 40 years in prison.", "number", q)
    assert not has_type("A few months later, on April 1, 2001, police arrested him.", "number", q)
    assert has_type("The war lasted two years.", "number", "How long did the war last?")
    assert not has_type("The war ended in 1999.", "number", "How long did the war last?")


def test_who_held_a_title_needs_the_title_and_is_strict():
    q = "Who was the U.S. ambassador to Yugoslavia in 2000?"
    assert is_strict(q)
    assert not has_type("Milo Đukanović — Montenegro’s president today and in 2000", "person", q)
    assert has_type("U.S. Ambassador William Montgomery said so.", "person", q)
    assert has_type("The next and last president of Yugoslavia was Vojislav Kostunica.", "person",
                    "Who was the last president of Yugoslavia?")  # fmt: skip
    assert not is_strict("Who was Milošević's chief rival?")  # "rival" is no title: any new name may answer
