import pytest

from rag.errors import ConfigError
from rag.retrieval import Filters


def test_diacritic_free_query_finds_the_vote_share(engine):
    hits = engine.search("What share did Kostunica get in the first round?", k=3)
    assert any("48.96" in h.chunk.text for h in hits)


@pytest.mark.parametrize(
    "plain, accented",
    [
        ("What share did Kostunica get in the first round?", "What share did Koštunica get in the first round?"),
        ("When did Milosevic die?", "When did Milošević die?"),
        ("Who did Djukanovic urge to boycott the elections?", "Who did Đukanović urge to boycott the elections?"),
        ("What did Milan Panic ask Putin?", "What did Milan Panić ask Putin?"),
    ],
)
@pytest.mark.parametrize("mode", ["hybrid", "lexical"])
def test_queries_without_diacritics_retrieve_the_same_top_passage(engine, plain, accented, mode):
    a = engine.search(plain, k=1, mode=mode)[0].chunk.chunk_id
    b = engine.search(accented, k=1, mode=mode)[0].chunk.chunk_id
    assert a == b


def test_modes_return_ranked_hits(engine):
    for mode in ("dense", "lexical", "hybrid"):
        hits = engine.search("Bulldozer Revolution", k=4, mode=mode)
        assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
        assert all(a.score >= b.score for a, b in zip(hits, hits[1:])) or mode == "hybrid"
        assert any("Bulldozer" in h.chunk.text for h in hits)


def test_hybrid_results_are_distinct_chunks(engine):
    hits = engine.search("Putin Clinton Milosevic", k=8)
    assert len({h.chunk.chunk_id for h in hits}) == len(hits) == 8


def test_filter_by_publisher_and_doc_id(engine):
    hits = engine.search("Milosevic", k=10, filters=Filters(where={"publisher": "meduza"}))
    assert hits and {h.chunk.doc_id for h in hits} == {"000_c072f841d33a32ed"}
    hits = engine.search("Milosevic", k=10, filters=Filters(where={"doc_id": "001_557b18325e1c198b"}))
    assert hits and {h.chunk.doc_id for h in hits} == {"001_557b18325e1c198b"}


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_filter_that_matches_nothing_is_an_empty_result(engine, mode):
    assert engine.search("Milosevic", k=5, mode=mode, filters=Filters(where={"publisher": "Nobody"})) == []
    # The demo articles carry no dates, so any date range excludes them all.
    assert engine.search("Milosevic", k=5, mode=mode, filters=Filters(since="2020-01-01")) == []


def test_date_range_filter(tmp_path, embedder):
    import json

    from rag.config import load_settings
    from rag.pipeline import Engine

    feed = tmp_path / "feed.jsonl"
    rows = [
        {"id": "old", "text": "The election in Belgrade was held.", "published": "2000-09-24"},
        {"id": "new", "text": "The election in Belgrade was held again.", "published": "2020-06-21"},
    ]
    feed.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    eng = Engine(load_settings(index_dir=tmp_path / "idx"), embedder=embedder)
    eng.ingest([feed])
    ids = lambda f: {h.chunk.doc_id for h in eng.search("election Belgrade", k=5, filters=f)}  # noqa: E731
    assert ids(Filters(since="2020-01-01")) == {"new"}
    assert ids(Filters(until="2000-12-31")) == {"old"}
    assert ids(Filters(since="2000-09-24", until="2000-09-24")) == {"old"}


def test_bad_mode_and_k_are_config_errors(engine):
    with pytest.raises(ConfigError, match="semantic"):
        engine.search("x", mode="semantic")
    with pytest.raises(ConfigError, match="k must be"):
        engine.search("x", k=0)


def test_blank_query_returns_nothing(engine):
    assert engine.search("   ") == []


PLAIN_AND_ACCENTED = [
    ("Kostunica", "Koštunica"), ("Milosevic", "Milošević"), ("Djukanovic", "Đukanović"), ("Milan Panic", "Milan Panić"),
    ("Antonin Dvorak", "Antonín Dvořák"),
]
# A short article beside the demo corpus, so a fifth name (and another language's letters) is tested too.
DVORAK = ("Composers\n\nAntonín Dvořák wrote his Ninth Symphony in New York in 1893. Dvořák had come to the "
          "United States to lead the National Conservatory of Music.")


@pytest.fixture(scope="module")
def engine_with_dvorak(tmp_path_factory, embedder):
    from conftest import CORPUS

    from rag.config import load_settings
    from rag.pipeline import Engine

    extra = tmp_path_factory.mktemp("extra")
    (extra / "dvorak.txt").write_text(DVORAK, encoding="utf-8")
    eng = Engine(load_settings(index_dir=tmp_path_factory.mktemp("idx")), embedder=embedder)
    eng.ingest([CORPUS, extra])
    return eng


@pytest.mark.parametrize("plain, accented", PLAIN_AND_ACCENTED)
@pytest.mark.parametrize("mode", ["hybrid", "dense"])
def test_names_with_and_without_diacritics_give_the_same_top_5(engine_with_dvorak, plain, accented, mode):
    ids = [[h.chunk.chunk_id for h in engine_with_dvorak.search(q, k=5, mode=mode)] for q in (plain, accented)]
    assert ids[0] == ids[1]


def test_several_names_typed_plainly_give_the_same_top_5(engine_with_dvorak):
    plain = engine_with_dvorak.search("Kostunica Milosevic Djukanovic", k=5)
    accented = engine_with_dvorak.search("Koštunica Milošević Đukanović", k=5)
    assert [h.chunk.chunk_id for h in plain] == [h.chunk.chunk_id for h in accented]
