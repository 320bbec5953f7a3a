import re

from conftest import CORPUS

from rag.cleaning import DEFAULT_RULES, LineRule, clean_text

CHROME = ["Skip to main content", "Share to or", "Leave a Comment", "7 months ago"]
CAPTION = "A protester rips up one of Slobodan Milošević’s campaign posters in Belgrade. October 6, 2000."


def _raw(name: str) -> str:
    return (CORPUS / name).read_text(encoding="utf-8")


def test_corpus_chrome_is_removed_and_every_body_paragraph_kept():
    for path in sorted(CORPUS.glob("*.txt")):
        raw = path.read_text(encoding="utf-8")
        cleaned = clean_text(raw)
        lines = {ln.strip() for ln in cleaned.split("\n") if ln.strip()}
        for chrome in CHROME:
            assert not any(re.sub(r"^[•\s]+", "", ln) == chrome for ln in lines), (path.name, chrome)
        # Every non-chrome line of the raw article survives verbatim (bullets normalised), as a line of its own:
        # a short line ("NTV, 2019", "Putin’s proposal") would also be found inside a longer one.
        bare_lines = {re.sub(r"^[•\s]+", "", ln) for ln in lines}
        for line in raw.split("\n"):
            bare = re.sub(r"^[\s•]+", "", line).strip()
            if bare and bare not in CHROME:
                assert bare in bare_lines, (path.name, bare[:80])


def test_repeated_caption_is_kept_once():
    cleaned = clean_text(_raw("000_c072f841d33a32ed.txt"))
    assert _raw("000_c072f841d33a32ed.txt").count(CAPTION) == 3
    assert cleaned.count(CAPTION) == 1


def test_relative_timestamps_and_share_bars_go_but_similar_body_lines_stay():
    text = "3 hours ago\nShare on Facebook\nShare to the opposition rose to 48 percent, officials said.\nBody."
    cleaned = clean_text(text)
    assert "3 hours ago" not in cleaned and "Share on Facebook" not in cleaned
    assert "Share to the opposition rose to 48 percent, officials said." in cleaned
    assert "Body." in cleaned


def test_rules_are_extensible():
    rules = DEFAULT_RULES + [LineRule("newsletter", re.compile(r"sign up for our newsletter.*", re.I))]
    cleaned = clean_text("Sign up for our newsletter today\nThe body.", rules)
    assert cleaned == "The body."


def test_cleaning_never_returns_empty_for_a_real_text():
    assert clean_text("Share") == "Share"  # all chrome: keep the text rather than lose it
