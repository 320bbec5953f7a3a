"""Reading: windows around the ranked sentences, the prompt, and finding the model's reply in them."""

import pytest

from rag.reader import Evidence
from rag.reading import INSTRUCTIONS, Located, clean_reply, is_none, locate, prompt_messages, windows
from rag.records import Chunk, Hit

TEXT = ("Voters went to the polls on Sunday. Milošević won 38.62 percent and Koštunica got 48.96 percent. "
        "A runoff was set for October 8. Crowds gathered in Belgrade.")


def _evidence(sentence: str, score: float, base: int = 1000, chunk_id: str = "d#0") -> Evidence:
    chunk = Chunk("d", chunk_id, base, base + len(TEXT), TEXT, "Serbian vote", {"published": "2000-09-28T10:00"})
    i = TEXT.index(sentence)
    return Evidence(1, Hit(chunk, 0.8, 1), sentence, base + i, base + i + len(sentence), sentence, score)


@pytest.fixture
def wins():
    evs = [_evidence("Milošević won 38.62 percent and Koštunica got 48.96 percent.", 0.9),
           _evidence("A runoff was set for October 8.", 0.7),  # inside the first window: no window of its own
           _evidence("Crowds gathered in Belgrade.", 0.5)]
    return windows(evs, 2)


def test_windows_hold_a_sentence_with_its_neighbours_title_and_date(wins):
    assert [w.n for w in wins] == [1, 2]
    first = wins[0]
    assert first.text == ("Voters went to the polls on Sunday. Milošević won 38.62 percent and Koštunica got "
                          "48.96 percent. A runoff was set for October 8.")
    assert first.title == "Serbian vote" and first.date == "2000-09-28"
    for s in first.sentences:  # offsets point into the article
        assert TEXT[s.start - 1000:s.end - 1000] == s.text
    assert wins[1].evidence.text == "Crowds gathered in Belgrade."


def test_the_fixed_instructions_come_first_so_their_cache_is_reused(wins):
    a = prompt_messages("What share did Kostunica get?", wins)
    b = prompt_messages("When was the runoff?", wins[:1])
    assert a[:-1] == b[:-1] and a[0] == {"role": "system", "content": INSTRUCTIONS}
    assert ("[1] Serbian vote (2000-09-28)" in a[-1]["content"]
            and a[-1]["content"].endswith("Question: What share did Kostunica get?"))
    # Everything before the question is the prefix of a prompt that reads one window more.
    one, two = prompt_messages("Q?", wins[:1])[-1]["content"], prompt_messages("Q?", wins)[-1]["content"]
    assert two.startswith(one.split("\n\nQuestion:")[0])


@pytest.mark.parametrize("reply, phrase", [
    ("48.96 percent", "48.96 percent"),
    ("Answer: “48.96 percent.” [1]", "48.96 percent"),
    ("48.96 PERCENT", "48.96 percent"),  # folded: case
    ("Kostunica got 48.96 percent", "Koštunica got 48.96 percent"),  # folded: accents, as journalists type
    ("October 8", "October 8"),
])
def test_a_reply_is_found_as_the_article_writes_it(wins, reply, phrase):
    found = locate(reply, wins)
    assert isinstance(found, Located) and found.phrase == phrase
    assert found.exact == (clean_reply(reply) == phrase)
    assert (phrase in found.sentence.text
            and TEXT[found.sentence.start - 1000:found.sentence.end - 1000] == found.sentence.text)


def test_a_reply_over_a_sentence_boundary_cites_the_sentence_it_starts_in(wins):
    found = locate("48.96 percent. A runoff", wins)
    assert found is not None and found.sentence.text.startswith("Milošević won")


@pytest.mark.parametrize("reply", ["50.1 percent", "Tell me a joke", ""])
def test_a_reply_not_in_the_passages_is_not_found(wins, reply):
    assert locate(reply, wins) is None


def test_none_is_recognised():
    assert is_none("NONE") and is_none("None.") and not is_none("Nonesuch Records")


def test_the_same_words_in_a_short_run_are_found_as_the_article_writes_them():
    text = "Carvey, a 39-year-old amateur, led the council from 1819 to 1831 in Rome."
    chunk = Chunk("d", "d#0", 0, len(text), text, "T")
    wins = windows([Evidence(1, Hit(chunk, 1.0, 1), text, 0, len(text), text, 0.9)], 1)
    assert locate("39 years", wins).phrase == "39-year"
    found = locate("1819-1831", wins)
    assert found.phrase == "1819 to 1831" and found.how == "words"
    assert locate("years", wins) is None  # one common word is no answer
    assert locate("1819 and 1900", wins) is None
