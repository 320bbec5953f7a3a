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


def test_tokenize_spells_dj_as_journalists_type_it():
    # One form for documents and queries: both spellings of a query give the same tokens.
    assert tokenize("Đukanović") == tokenize("Djukanovic") == tokenize("DJUKANOVIC")


def test_tokenize_drops_stopwords_and_stems():
    assert tokenize("What did the president say") == tokenize("president says")
    assert tokenize("elected") == tokenize("election") and tokenize("ousted") == tokenize("oust")
