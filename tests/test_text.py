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
    assert tokenize("Milošević’s") == tokenize("Milosevic's") == tokenize("MILOSEVIC") == tokenize("milosevic")
    assert len(tokenize("Milošević’s")) == 1


def test_tokenize_indexes_both_spellings_of_dj():
    tokens = tokenize("Đukanović")
    assert tokenize("Dukanovic")[0] in tokens and tokenize("Djukanovic")[0] in tokens


def test_tokenize_drops_stopwords_and_stems():
    assert tokenize("What did the president say") == tokenize("president says")
    assert tokenize("elected") == tokenize("election") and tokenize("ousted") == tokenize("oust")
