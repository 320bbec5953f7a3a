"""The PostgreSQL store's writer: incremental by content hash, one transaction per batch of documents.

A document's old chunks are deleted and its new ones inserted in the same transaction that records
its new hash, so readers (on this server or its replicas) see the old version or the new one,
never a mix, and an ingest killed at any point leaves every document at its last committed
version; a rerun picks up where it stopped (the embedding cache keeps what was embedded).
Writers take one advisory lock per transaction: two ingests interleave batch by batch, never inside
one. Chunk texts already stored for a document keep their vectors, so an edited article embeds only
its changed chunks. A rebuild writes everything in ONE transaction (the embedder may change).
"""

from __future__ import annotations

import time
from collections.abc import Container, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from .. import ingest
from ..embedcache import EmbedCache
from ..errors import IndexError_, IndexMismatchError
from ..ingest import Action, Indexed, Job, Written
from ..lexical import TOKENIZER_VERSION
from ..records import Chunk, Document
from ..text import fold, tokenize
from . import base
from .postgres import (
    INGEST_LOCK,
    as_array,
    check_meta,
    connect,
    lexical_text,
    metadata_json,
    migrate,
    published_of,
    read_meta,
    safe_url,
    schema_version,
    term_frequencies,
    tsvector_literal,
)

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
            folded, published, key = Jsonb(base.folded_metadata(meta)), published_of(meta), fold(d.doc.doc_id)
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
        conn.execute("INSERT INTO rag_meta (key, value) VALUES (%s, %s) "
                     "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                     (key, Jsonb(value)))


class PostgresWriter(AbstractContextManager):
    def __init__(self, url: str, *, cache_dir: Path | None = None, hnsw_m: int = 16, hnsw_ef_construction: int = 64,
                 batch_docs: int = BATCH_DOCS) -> None:
        self.url = url
        self.cache_dir = cache_dir
        self.hnsw_m, self.hnsw_ef_construction = hnsw_m, hnsw_ef_construction
        self.batch_docs = batch_docs
        self.conn = None
        self.work: list[tuple[Document, str]] = []

    def begin(self, job: Job) -> tuple[Mapping[str, Indexed], Container[str]]:
        self.job = job
        embedder = job.embedder
        self.conn = conn = connect(self.url)
        where = safe_url(conn.info.dsn)
        if conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
            conn.rollback()
            raise IndexError_(f"the store {where} is a read-only replica; ingest into its primary")
        fresh = not schema_version(conn)
        conn.commit()  # what follows runs in transactions of its own, not inside this implicit one
        meta: dict = {}
        old: dict[str, Indexed] = {}
        # A new database gets its schema only when there is something to write (in `finish`).
        if not fresh:
            self._migrate()
            with conn.transaction():
                meta = read_meta(conn)
                old = {r[0]: Indexed(r[1], str(r[2]), r[3], ingest.metadata_json(r[4] or {})) for r in conn.execute(
                    "SELECT doc_id, hash, source, title, metadata FROM documents")}
        if meta.get("dimension") not in (None, embedder.dimension):
            raise IndexMismatchError(f"the store {where} holds {meta['dimension']}-dimensional vectors, the embedder "
                                     f"makes {embedder.dimension}; use a new database for this embedder")
        if not job.rebuild:
            check_meta(meta, embedder_id=embedder.id, chunking=job.chunking.to_json(), where=where)
        return old, old

    def _migrate(self) -> None:
        migrate(self.conn, dim=self.job.embedder.dimension, hnsw_m=self.hnsw_m,
                hnsw_ef_construction=self.hnsw_ef_construction)

    def put(self, doc: Document, digest: str, action: Action) -> None:
        if action is not Action.KEEP:
            self.work.append((doc, digest))

    def finish(self, kept: Sequence[str], dropped: Sequence[str]) -> Written:
        conn, job = self.conn, self.job
        self._migrate()
        cache = EmbedCache(self.cache_dir, job.embedder.id, job.embedder.dimension) if self.cache_dir else None
        # A rebuild may change the embedder: all of it commits at once, so no search mixes two models.
        whole = conn.transaction() if job.rebuild else nullcontext()
        try:
            with whole:
                _write_all(conn, self.work, list(dropped), job, cache, self.batch_docs)
                with conn.transaction():
                    counts = conn.execute("SELECT count(*), coalesce(sum(n_chunks), 0) FROM documents").fetchone()
        finally:
            if cache is not None:
                cache.close()
        return Written(int(counts[0]), int(counts[1]), safe_url(self.url))

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # Each batch commits on its own (a rerun resumes); an open transaction is rolled back on close.
        if self.conn is not None:
            self.conn.close()


def _write_all(conn, work, dropped: list[str], job: Job, cache: EmbedCache | None, batch_docs: int) -> None:
    embedder, chunking = job.embedder, job.chunking
    for start in range(0, len(work), batch_docs):
        rows = _prepare(conn, work[start:start + batch_docs], job, cache, reuse=not job.rebuild)
        t = time.perf_counter()
        with conn.transaction():
            write_documents(conn, rows)
            if start == 0:
                set_meta(conn, embedder_id=embedder.id, dimension=embedder.dimension, chunking=chunking.to_json())
        job.timed("write", t)
    with conn.transaction():
        write_documents(conn, [], remove=dropped)
        set_meta(conn, embedder_id=embedder.id, dimension=embedder.dimension, chunking=chunking.to_json())


def _prepare(conn, batch, job: Job, cache: EmbedCache | None, *, reuse: bool = True) -> list[DocRows]:
    """Chunk a batch and find each chunk's vector: the document's stored row of the same text, the
    embedding cache, else the embedder."""
    ids = [doc.doc_id for doc, _ in batch]
    stored: dict[tuple[str, str], np.ndarray] = {}
    if reuse:
        with conn.transaction():
            for doc_id, text, vec in conn.execute("SELECT doc_id, text, embedding FROM chunks WHERE doc_id = ANY(%s)",
                                                  (ids,)):
                stored[(doc_id, text)] = as_array(vec)
    chunked = [(doc, digest, job.chunk(doc)) for doc, digest in batch]
    missing = [c for _, _, chunks in chunked for c in chunks if (c.doc_id, c.text) not in stored]
    fresh: dict[tuple[str, str], np.ndarray] = {}
    if missing:
        vectors = job.embed([c.text for c in missing], cache)
        fresh = {(c.doc_id, c.text): v for c, v in zip(missing, vectors)}
    out = []
    for doc, digest, chunks in chunked:
        vecs = [stored[(c.doc_id, c.text)] if (c.doc_id, c.text) in stored else fresh[(c.doc_id, c.text)]
                for c in chunks]
        matrix = np.stack(vecs) if vecs else np.zeros((0, job.embedder.dimension), dtype=np.float32)
        out.append(DocRows(doc, digest, chunks, matrix))
    return out
