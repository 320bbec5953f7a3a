from rag.text import fold, fold_loose, tokenize


def test_fold_removes_diacritics_case_and_curly_quotes():
    assert fold("MILOŠEVIĆ’s") == fold("milosevic's") == "milosevic's"
    assert fold("Koštunica") == "kostunica"
    assert fold("Đukanović") == "dukanovic"
    assert fold("donʼt  \n stop") == "don't stop"


def test_fold_loose_drops_punctuation():
    assert fold_loose("“Bulldozer Revolution”!") == "bulldozer revolution"


def test_tokenize_keeps_numbers_whole_and_unifies_spellings():
    assert "48.96" in tokenize("Koštunica got 48.96 percent")
    assert "600,000" in tokenize("he got rid of 600,000 votes")
    assert tokenize("Milošević’s") == tokenize("Milosevic's") == tokenize("MILOSEVIC") == ["milosevic"]


def test_tokenize_indexes_both_spellings_of_dj():
    tokens = tokenize("Đukanović")
    assert "dukanovic" in tokens and "djukanovic" in tokens
    assert tokenize("Djukanovic") == ["djukanovic"]


def test_tokenize_drops_stopwords():
    assert tokenize("What did the president say") == ["president", "say"]
