"""Ingest into the PostgreSQL store: incremental by content hash, one transaction per batch of documents.

A document's old chunks are deleted and its new ones inserted in the same transaction that records
its new hash, so readers (on this server or its replicas) see the old version or the new one,
never a mix, and an ingest killed at any point leaves every document at its last committed
version; a rerun picks up where it stopped (the embedding cache keeps what was embedded).
Writers take one advisory lock per transaction: two ingests interleave batch by batch, never inside
one. Chunk texts already stored for a document keep their vectors, so an edited article embeds only
its changed chunks. A rebuild writes everything in ONE transaction (the embedder may change).
"""

from __future__ import annotations

import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from ..chunking import ChunkingSettings, chunk_document
from ..embedcache import EmbedCache
from ..embedding import Embedder
from ..errors import IndexError_, IndexMismatchError
from ..ingest import (DEFAULT_MAX_PRUNE_SHARE, IngestReport, NothingToIngest, _check_removal, _embed, count_change,
                      _source_file, content_hash)
from ..lexical import TOKENIZER_VERSION
from ..loaders import load_paths
from ..records import Chunk, Document
from ..text import fold, tokenize
from .postgres import (INGEST_LOCK, as_array, check_meta, connect, folded_metadata, lexical_text, metadata_json, migrate,
                       published_of, read_meta, safe_url, term_frequencies, tsvector_literal)

BATCH_DOCS = 64  # documents per transaction: small enough to lose little to a crash


@dataclass(frozen=True)
class DocRows:
    """A document ready to write: its record, chunks and their vectors (one row each)."""

    doc: Document
    digest: str
    chunks: Sequence[Chunk]
    vectors: np.ndarray


STAGE = """CREATE TEMP TABLE IF NOT EXISTS rag_stage (
    doc_id text, ord int, chunk_id text, start_at int, end_at int, text text, title text, metadata jsonb,
    doc_key text, meta_folded jsonb, published text, ntok int, tsv text, tf jsonb, embedding vector)
    ON COMMIT DELETE ROWS"""
STAGE_TYPES = ["text", "int4", "text", "int4", "int4", "text", "text", "jsonb", "text", "jsonb", "text", "int4",
               "text", "jsonb", "vector"]


def write_documents(conn, docs: Sequence[DocRows], *, remove: Sequence[str] = ()) -> int:
    """Replace `docs` (and delete `remove`) in the current transaction; returns chunk rows written.

    Rows go through a temporary table by binary COPY (vectors as pgvector's binary format), then
    one INSERT ... SELECT casts the token lists to tsvector."""
    from psycopg.types.json import Jsonb

    conn.execute("SELECT pg_advisory_xact_lock(%s)", (INGEST_LOCK,))
    conn.execute(STAGE)
    ids = [d.doc.doc_id for d in docs] + list(remove)
    old_chunks, old_tokens = conn.execute(
        "SELECT coalesce(sum(n_chunks), 0), coalesce(sum(n_tokens), 0) FROM documents WHERE doc_id = ANY(%s)",
        (ids,)).fetchone()
    if ids:
        conn.execute("DELETE FROM chunks WHERE doc_id = ANY(%s)", (ids,))
    rows = 0
    with conn.cursor().copy("COPY rag_stage FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(STAGE_TYPES)
        for d in docs:
            meta = metadata_json(d.doc.metadata)
            folded, published, key = Jsonb(folded_metadata(meta)), published_of(meta), fold(d.doc.doc_id)
            for ord_, (chunk, vec) in enumerate(zip(d.chunks, d.vectors)):
                tokens = tokenize(lexical_text(chunk))
                copy.write_row((chunk.doc_id, ord_, chunk.chunk_id, chunk.start, chunk.end, chunk.text, chunk.title,
                                Jsonb(meta), key, folded, published, max(1, len(tokens)),
                                tsvector_literal(tokens), Jsonb(term_frequencies(tokens)),
                                np.asarray(vec, dtype=np.float32)))
                rows += 1
    conn.execute("""INSERT INTO chunks (doc_id, ord, chunk_id, start_at, end_at, text, title, metadata, doc_key,
                                        meta_folded, published, ntok, tsv, tf, embedding)
                    SELECT doc_id, ord, chunk_id, start_at, end_at, text, title, metadata, doc_key, meta_folded,
                           published, ntok, tsv::tsvector, tf, embedding FROM rag_stage""")
    conn.execute("""UPDATE rag_stats SET n_chunks = n_chunks - %s + s.n, n_tokens = n_tokens - %s + s.t
                    FROM (SELECT count(*) AS n, coalesce(sum(ntok), 0) AS t FROM rag_stage) s""",
                 (old_chunks, old_tokens))
    if remove:
        conn.execute("DELETE FROM documents WHERE doc_id = ANY(%s)", (list(remove),))
    if docs:
        conn.execute(
            """INSERT INTO documents (doc_id, hash, source, title, metadata, n_chunks, n_tokens)
               SELECT d.doc_id, d.hash, d.source, d.title, d.metadata, coalesce(s.n, 0), coalesce(s.t, 0)
               FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::jsonb[])
                    AS d(doc_id, hash, source, title, metadata)
               LEFT JOIN (SELECT doc_id, count(*) AS n, sum(ntok) AS t FROM rag_stage GROUP BY doc_id) s USING (doc_id)
               ON CONFLICT (doc_id) DO UPDATE SET hash = excluded.hash, source = excluded.source,
                   title = excluded.title, metadata = excluded.metadata, n_chunks = excluded.n_chunks,
                   n_tokens = excluded.n_tokens, updated = clock_timestamp()""",
            ([d.doc.doc_id for d in docs], [d.digest for d in docs], [d.doc.source for d in docs],
             [d.doc.title for d in docs], [Jsonb(metadata_json(d.doc.metadata)) for d in docs]))
    return rows


def set_meta(conn, *, embedder_id: str, dimension: int, chunking: dict) -> None:
    from psycopg.types.json import Jsonb

    for key, value in (("embedder", embedder_id), ("dimension", dimension), ("chunking", chunking),
                       ("tokenizer", TOKENIZER_VERSION)):
        conn.execute("INSERT INTO rag_meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                     (key, Jsonb(value)))


def ingest_postgres(
    paths: Iterable[str | Path],
    *,
    url: str,
    embedder: Embedder,
    chunking: ChunkingSettings = ChunkingSettings(),
    cache_dir: Path | None = None,
    rebuild: bool = False,
    progress: bool = False,
    prune: bool = False,
    force: bool = False,
    max_prune_share: float = DEFAULT_MAX_PRUNE_SHARE,
    notify: Callable[[str], None] | None = None,
    hnsw_m: int = 16,
    hnsw_ef_construction: int = 64,
    batch_docs: int = BATCH_DOCS,
) -> IngestReport:
    """`rag ingest` with RAG_STORE_URL set: the same rules as the embedded ingest (rag/ingest.py)."""
    t0 = time.perf_counter()
    report = IngestReport(index_path=safe_url(url))
    paths = list(paths)
    if progress:
        print(f"reading {', '.join(map(str, paths))} ...", file=sys.stderr, flush=True)
    loaded = load_paths(paths)
    report.problems, report.unsupported = loaded.problems, dict(loaded.unsupported)
    report.stage_seconds["load+clean"] = time.perf_counter() - t0
    if not loaded.documents:
        raise NothingToIngest("nothing to ingest in the given paths (no loadable article); the store was not changed",
                              report)
    conn = connect(url)
    try:
        return _ingest(conn, loaded, report, t0, embedder=embedder, chunking=chunking, cache_dir=cache_dir,
                       rebuild=rebuild, progress=progress, prune=prune, force=force, max_prune_share=max_prune_share,
                       notify=notify, hnsw_m=hnsw_m, hnsw_ef_construction=hnsw_ef_construction, batch_docs=batch_docs)
    finally:
        conn.close()


def _ingest(conn, loaded, report: IngestReport, t0: float, *, embedder, chunking, cache_dir, rebuild, progress,
            prune, force, max_prune_share, notify, hnsw_m, hnsw_ef_construction, batch_docs) -> IngestReport:
    where = safe_url(conn.info.dsn)
    if conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
        conn.rollback()
        raise IndexError_(f"the store {where} is a read-only replica; ingest into its primary")
    conn.commit()
    migrate(conn, dim=embedder.dimension, hnsw_m=hnsw_m, hnsw_ef_construction=hnsw_ef_construction)
    with conn.transaction():
        meta = read_meta(conn)
        old = {r[0]: (r[1], r[2], r[3], r[4]) for r in conn.execute(
            "SELECT doc_id, hash, source, title, metadata FROM documents")}
    if meta.get("dimension") not in (None, embedder.dimension):
        raise IndexMismatchError(f"the store {where} holds {meta['dimension']}-dimensional vectors, the embedder "
                                 f"makes {embedder.dimension}; use a new database for this embedder")
    if not rebuild:
        check_meta(meta, embedder_id=embedder.id, chunking=chunking.to_json(), where=where)

    given = {d.doc_id for d in loaded.documents}
    failed_sources = {p.source for p in loaded.problems}
    dropped = [doc_id for doc_id, (_, source, _, _) in old.items()
               if doc_id not in given and (prune or rebuild) and _source_file(str(source)) not in failed_sources]
    report.kept_after_error = sum(1 for doc_id, (_, source, _, _) in old.items()
                                  if doc_id not in given and _source_file(str(source)) in failed_sources)
    report.kept_not_given = sum(1 for doc_id in old if doc_id not in given) - len(dropped) - report.kept_after_error
    _check_removal(dropped, old, report, prune=prune, force=force, rebuild=rebuild, max_share=max_prune_share)
    if dropped and notify:
        notify(f"removing {len(dropped)} of {len(old)} documents that are not in the given paths")

    work: list[tuple[Document, str]] = []
    for doc in loaded.documents:
        digest = content_hash(doc)
        prev = old.get(doc.doc_id)
        if not count_change(report, prev, digest, doc, metadata_json(doc.metadata), rebuild=rebuild,
                            known=prev is not None):  # fmt: skip
            continue
        work.append((doc, digest))

    cache = EmbedCache(cache_dir, embedder.id, embedder.dimension) if cache_dir is not None else None
    bar = None
    if progress and work:
        from tqdm import tqdm

        bar = tqdm(total=len(work), desc="ingesting", unit="doc", mininterval=0.5)
    stage = {"chunk": 0.0, "embed": 0.0, "write": 0.0}
    # A rebuild may change the embedder: all of it commits at once, so no search mixes two models.
    whole = conn.transaction() if rebuild else nullcontext()
    try:
        with whole:
            _write_all(conn, work, dropped, embedder, chunking, cache, report, stage, rebuild, batch_docs, bar)
            with conn.transaction():
                counts = conn.execute("SELECT count(*), coalesce(sum(n_chunks), 0) FROM documents").fetchone()
    finally:
        if bar is not None:
            bar.close()
        if cache is not None:
            cache.close()
    report.removed = len(dropped)
    report.documents, report.chunks = int(counts[0]), int(counts[1])
    report.stage_seconds.update(stage)
    report.seconds = time.perf_counter() - t0
    return report


def _write_all(conn, work, dropped, embedder, chunking, cache, report, stage, rebuild, batch_docs, bar) -> None:
    for start in range(0, len(work), batch_docs):
        batch = work[start:start + batch_docs]
        rows = _prepare(conn, batch, embedder, chunking, cache, report, stage, reuse=not rebuild)
        t = time.perf_counter()
        with conn.transaction():
            write_documents(conn, rows)
            if start == 0:
                set_meta(conn, embedder_id=embedder.id, dimension=embedder.dimension, chunking=chunking.to_json())
        stage["write"] += time.perf_counter() - t
        if bar is not None:
            bar.update(len(batch))
    with conn.transaction():
        write_documents(conn, [], remove=dropped)
        set_meta(conn, embedder_id=embedder.id, dimension=embedder.dimension, chunking=chunking.to_json())


def _prepare(conn, batch, embedder: Embedder, chunking: ChunkingSettings, cache, report: IngestReport,
             stage: dict[str, float], *, reuse: bool = True) -> list[DocRows]:
    """Chunk a batch and find each chunk's vector: the document's stored row of the same text, the
    embedding cache, else the embedder."""
    t = time.perf_counter()
    ids = [doc.doc_id for doc, _ in batch]
    stored: dict[tuple[str, str], np.ndarray] = {}
    if reuse:
        with conn.transaction():
            for doc_id, text, vec in conn.execute("SELECT doc_id, text, embedding FROM chunks WHERE doc_id = ANY(%s)",
                                                  (ids,)):
                stored[(doc_id, text)] = as_array(vec)
    chunked = [(doc, digest, chunk_document(doc, embedder.count_tokens, embedder.token_offsets, chunking))
               for doc, digest in batch]
    stage["chunk"] += time.perf_counter() - t
    t = time.perf_counter()
    missing = [c for _, _, chunks in chunked for c in chunks if (c.doc_id, c.text) not in stored]
    fresh: dict[tuple[str, str], np.ndarray] = {}
    if missing:
        part = IngestReport()
        vectors = _embed(missing, embedder, cache, part, progress=False)
        report.embedded_chunks += part.embedded_chunks
        report.cached_chunks += part.cached_chunks
        fresh = {(c.doc_id, c.text): v for c, v in zip(missing, vectors)}
    stage["embed"] += time.perf_counter() - t
    out = []
    for doc, digest, chunks in chunked:
        vecs = [stored.get((c.doc_id, c.text)) if (c.doc_id, c.text) in stored else fresh[(c.doc_id, c.text)]
                for c in chunks]
        matrix = np.stack(vecs) if vecs else np.zeros((0, embedder.dimension), dtype=np.float32)
        out.append(DocRows(doc, digest, chunks, matrix))
    return out
