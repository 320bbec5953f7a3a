"""One fold for every path: "Đukanović" typed "Djukanovic" or "Dukanovic" is found by lexical and
dense search, and filters and metrics see it as search does (rag/text.py)."""

import json

import pytest

from eval.metrics import answer_correct, contains_evidence, token_f1
from rag.records import Filters
from rag.text import fold

ARTICLES = [
    {"id": "montenegro", "subject": "Đukanović",
     "text": "Milo Đukanović, the president of Montenegro, urged Montenegrins to boycott the federal elections."},
    {"id": "serbia", "subject": "Koštunica",
     "text": "Vojislav Koštunica won the first round of the Yugoslav presidential election in September 2000."},
    {"id": "revolution", "subject": "Milošević",
     "text": "The Bulldozer Revolution ousted Slobodan Milošević from power in Belgrade in October 2000."},
    {"id": "harbour", "subject": "Djibouti",
     "text": "The port of Djibouti handled a record amount of cargo for Ethiopia last year."},
]
SPELLINGS = ("Đukanović", "Djukanovic", "DJUKANOVIC", "Dukanovic")


@pytest.fixture(scope="module", params=["folder", "disk"])
def engine(request, tmp_path_factory, embedder):
    from rag.config import load_settings
    from rag.pipeline import Engine

    folder = tmp_path_factory.mktemp("articles")
    feed = folder / "balkans.jsonl"
    feed.write_text("\n".join(json.dumps(a, ensure_ascii=False) for a in ARTICLES), encoding="utf-8")
    eng = Engine(load_settings(index_dir=folder / "index", embedded_backend=request.param), embedder=embedder)
    eng.ingest([feed])
    return eng


# Dense search has no spelling rule for a bare "D": the model itself must place "Dukanovic" near
# "Djukanovic". With a word of context it ranks the article first; the bare name alone scores 0.27
# against it and 0.29 against Koštunica's, so it is found second of the four (hybrid search, the
# default, ranks it first: the lexical side knows the spelling). "Đ" and "Dj" are one vector.
SEARCHES = [(mode, typed) for mode in ("lexical", "hybrid") for typed in SPELLINGS] + \
    [("dense", typed) for typed in ("Đukanović", "Djukanovic", "DJUKANOVIC", "Milo Dukanovic")]


@pytest.mark.parametrize(("mode", "typed"), SEARCHES)
def test_every_spelling_finds_the_article(engine, mode, typed):
    assert engine.search(typed, k=1, mode=mode)[0].chunk.doc_id == "montenegro"


def test_dense_search_finds_the_bare_d_among_the_first(engine):
    assert "montenegro" in [h.chunk.doc_id for h in engine.search("Dukanovic", k=2, mode="dense")]


def test_the_embedder_reads_dj_for_the_letter(embedder):
    a, b = embedder.embed(["Milo Đukanović", "Milo Djukanovic"])
    assert float(a @ b) > 0.9999


@pytest.mark.parametrize("typed", ["Đukanović", "Djukanovic", "djukanović", "Dukanovic", "DUKANOVIC"])
def test_a_filter_matches_the_spellings_search_folds_alike(engine, typed):
    hits = engine.search("elections", k=4, filters=Filters(where={"subject": typed}))
    assert [h.chunk.doc_id for h in hits] == ["montenegro"]
    assert Filters(where={"subject": typed}).allows("montenegro", {"subject": "Đukanović"})
    assert not Filters(where={"subject": "Djibouti"}).allows("montenegro", {"subject": "Đukanović"})


def test_metrics_see_the_name_as_search_does():
    text = ARTICLES[0]["text"]
    for typed in ("Đukanović", "Djukanovic"):
        assert contains_evidence(text, [f"Milo {typed}, the president"])
        assert answer_correct(f"Milo {typed}", ["Milo Đukanović"])
        assert answer_correct("Milo Đukanović", [f"Milo {typed}"])
        assert token_f1(f"Milo {typed}", ["Milo Đukanović"]) == 1.0
    assert fold("Đukanović") in fold(text) and fold("Djukanovic") in fold(text)
