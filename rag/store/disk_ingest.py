"""Ingest into the disk store (rag/store/disk.py): only what changed is written, in one transaction.

The same rules as the folder ingest (rag/ingest.py): documents not in the given paths stay unless
--prune, a prune or rebuild may not remove more than its share without --force, a document whose
file fails to load keeps its previous version, nothing loadable changes nothing. Documents stream
through in batches; a chunk whose text is already stored (by this embedder) reuses that vector, the
embedding cache covers a crash between embedding and commit, and the embedder the rest. The FTS5
rows and the FAISS lists are updated by the change alone: nothing is rebuilt from every chunk
(except the IVF lists, retrained when the index outgrows what it was trained on).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..chunking import ChunkingSettings, chunk_document
from ..embedcache import EmbedCache
from ..embedding import Embedder
from ..errors import IndexError_, IndexMismatchError
from ..index import IndexParams
from ..ingest import (DEFAULT_MAX_PRUNE_SHARE, IngestReport, NothingToIngest, _check_removal, _embed, count_change,
                      _previous_documents, _source_file, content_hash)
from ..lexical import TOKENIZER_VERSION
from ..loaders import LoadResult, iter_documents
from ..records import Chunk, Document
from ..text import fold
from . import disk
from .disk import visible

BATCH_DOCS = 64


def text_key(embedder_id: str, text: str) -> int:
    """A signed 64-bit key of (embedder, text): the stored vector of an identical text is reused."""
    digest = hashlib.sha256(embedder_id.encode() + b"\0" + text.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "little", signed=True)


def _meta_json(metadata) -> str:  # noqa: ANN001
    return json.dumps(dict(metadata), ensure_ascii=False, default=str, sort_keys=True)


def ingest_disk(
    paths: Iterable[str | Path],
    *,
    index_dir: Path,
    embedder: Embedder,
    chunking: ChunkingSettings = ChunkingSettings(),
    params: IndexParams = IndexParams(),
    rebuild: bool = False,
    progress: bool = False,
    prune: bool = False,
    force: bool = False,
    max_prune_share: float = DEFAULT_MAX_PRUNE_SHARE,
    keep_snapshots: int = 5,
    notify: Callable[[str], None] | None = None,
    use_cache: bool = True,
    batch_docs: int = BATCH_DOCS,
) -> IngestReport:
    t0 = time.perf_counter()
    index_dir = Path(index_dir)
    report = IngestReport()
    paths = list(paths)
    if progress:
        print(f"reading {', '.join(map(str, paths))} ...", file=sys.stderr, flush=True)
    folder_docs: dict[str, dict] = {}
    if not disk.is_disk_store(index_dir) and (index_dir / "CURRENT").exists():
        if not rebuild:
            raise IndexMismatchError(
                f"the index at {index_dir} is a snapshot-folder index (RAG_EMBEDDED_BACKEND=folder); rebuild it "
                f"for the disk store with `rag ingest --rebuild`")
        folder_docs = _previous_documents(index_dir)
    try:
        db = disk.connect(index_dir, create=True)
    except IndexError_:
        if not rebuild:
            raise
        # A rebuild is how a broken store is repaired: start a new file.
        for suffix in ("", "-wal", "-shm"):
            (index_dir / (disk.FILE + suffix)).unlink(missing_ok=True)
        db = disk.connect(index_dir, create=True)
    cache = EmbedCache(index_dir, embedder.id, embedder.dimension) if use_cache else None
    try:
        return _ingest(db, paths, report, t0, index_dir=index_dir, embedder=embedder, chunking=chunking,
                       params=params, rebuild=rebuild, progress=progress, prune=prune, force=force,
                       max_prune_share=max_prune_share, keep=keep_snapshots, notify=notify, cache=cache,
                       batch_docs=batch_docs, folder_docs=folder_docs)
    finally:
        if cache is not None:
            cache.close()
        db.close()


def _ingest(db, paths, report: IngestReport, t0: float, *, index_dir: Path, embedder: Embedder, chunking,
            params: IndexParams, rebuild, progress, prune, force, max_prune_share, keep, notify, cache,
            batch_docs, folder_docs) -> IngestReport:
    dim = embedder.dimension
    db.execute("BEGIN IMMEDIATE")  # one writer; readers keep seeing the live version until COMMIT
    committed = False
    try:
        live = disk.live_version(db)
        info = disk.version_row(db, live) if live is not None else None
        if info is not None and not rebuild:
            disk.check_compatible(info["settings"], embedder_id=embedder.id, chunking=chunking.to_json(), where=index_dir)
        if live is not None:  # after a rollback, the versions beyond the live one are abandoned
            for table in ("chunks", "docs"):
                db.execute(f"DELETE FROM {table} WHERE added_in > ?", (live,))
                db.execute(f"UPDATE {table} SET removed_in = NULL WHERE removed_in > ?", (live,))
            db.execute("DELETE FROM versions WHERE v > ?", (live,))
        v = (live or 0) + 1
        old: dict[str, tuple] = {}
        if live is not None:
            old = {r[0]: r[1:] for r in db.execute(
                f"SELECT d.doc_id, d.hash, d.source, d.title, d.metadata FROM docs d WHERE {visible('d')}", {"v": live})}
        old_documents = {k: {"hash": h, "source": s, "title": t} for k, (h, s, t, _) in old.items()} or folder_docs

        loaded = LoadResult()
        docs: Iterable[Document] = iter_documents(paths, loaded)
        bar = embed_bar = None
        if progress:  # the folder ingest's two counters: documents read, then chunks embedded
            from tqdm import tqdm

            docs = bar = tqdm(docs, desc="reading and chunking", unit="doc", mininterval=0.5)
            # Documents stream through in batches, so the chunks to embed are known one batch at a
            # time: the bar's total grows with each batch. It appears when the first embedding starts.
            embed_bar = tqdm(total=0, desc="embedding", unit="chunk", position=1, mininterval=0.5, delay=1e9)
        given: set[str] = set()
        removed_ids: list[int] = []
        added_chunks = 0
        batch: list[tuple[Document, str]] = []
        stage = {"chunk": 0.0, "embed": 0.0, "write": 0.0}
        for doc in docs:
            given.add(doc.doc_id)
            digest = content_hash(doc)
            prev = old.get(doc.doc_id)
            if not count_change(report, prev, digest, doc, _meta_json(doc.metadata), rebuild=rebuild,
                                known=prev is not None or doc.doc_id in old_documents):  # fmt: skip
                continue
            batch.append((doc, digest))
            if len(batch) >= batch_docs:
                added_chunks += _write_batch(db, batch, v, live, embedder, chunking, cache, report, stage, removed_ids,
                                             embed_bar)
                batch = []
        if batch:
            added_chunks += _write_batch(db, batch, v, live, embedder, chunking, cache, report, stage, removed_ids,
                                             embed_bar)
        if bar is not None:
            bar.close()
            embed_bar.close()
        report.problems, report.unsupported = loaded.problems, dict(loaded.unsupported)
        if not given:
            why = [f"{len(loaded.problems)} files skipped" if loaded.problems else "",
                   f"{loaded.unsupported_count} of an unsupported type" if loaded.unsupported else ""]
            why_text = "; ".join(w for w in why if w) or "no article files found"
            raise NothingToIngest(f"nothing to ingest in the given paths ({why_text}); the index was not changed", report)

        failed_sources = {p.source for p in loaded.problems}
        dropped, kept_docs = [], 0
        for doc_id, meta in old_documents.items():
            if doc_id in given:
                continue
            failed = _source_file(str(meta.get("source", ""))) in failed_sources
            if doc_id in old and (failed or not (prune or rebuild)):
                kept_docs += 1
                report.kept_after_error += failed
                report.kept_not_given += not failed
            else:
                dropped.append(doc_id)
        _check_removal(dropped, old_documents, report, prune=prune, force=force, rebuild=rebuild, max_share=max_prune_share)
        report.removed = len(dropped)
        if dropped and notify:
            notify(f"removing {len(dropped)} of {len(old_documents)} documents that are not in the given paths")
        for start in range(0, len(dropped), 500):
            removed_ids += _retire(db, dropped[start:start + 500], v, live)

        t = time.perf_counter()
        n_docs = len(given) + kept_docs
        n_chunks = (info["chunks"] if info else 0) + added_chunks - len(removed_ids)
        if rebuild or live is None or int(info["settings"]["dimension"]) != dim:
            dense, trained = None, 0
        else:
            trained = int(info["settings"].get("trained_on", 0))
            dense = disk.load_dense(index_dir, live, params.ivf_nprobe)
        if dense is not None:
            dense.remove(np.array(removed_ids, dtype=np.int64))
            # Retrain when the archive outgrew the lists (or shrank far below what trained them).
            outgrown = (dense.kind == "flat" and n_chunks > params.ann_threshold) or (dense.kind == "ivf" and (
                n_chunks <= params.ann_threshold or not trained / disk.RETRAIN_GROWTH <= n_chunks <= disk.RETRAIN_GROWTH * trained))
            if outgrown:
                dense = None
            else:
                for ids, vecs in disk.iter_vectors(db, "c.added_in = :v", {"v": v}, dim):
                    dense.add(ids, vecs)
        if dense is None:
            dense, trained = disk.build_dense(db, v, n_chunks, dim, ann_threshold=params.ann_threshold,
                                              nprobe=params.ivf_nprobe)
        if dense.ntotal != n_chunks:
            raise IndexError_(f"internal error: the dense index holds {dense.ntotal} vectors for {n_chunks} chunks")
        disk.save_dense(index_dir, v, dense)
        stage["index"] = time.perf_counter() - t
        name, created = disk.new_version_name()
        settings = {"embedder": embedder.id, "dimension": dim, "chunking": chunking.to_json(),
                    "tokenizer": TOKENIZER_VERSION, "ann_threshold": params.ann_threshold, "dense": dense.kind,
                    "trained_on": trained}
        db.execute("INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?)",
                   (v, name, created, n_docs, n_chunks, json.dumps(settings)))
        db.execute("INSERT OR REPLACE INTO meta VALUES ('live', ?)", (str(v),))
        db.execute("COMMIT")
        committed = True
    finally:
        if not committed:
            db.execute("ROLLBACK")
    disk.drop_other_dense(index_dir, v)
    disk.gc(db, keep)
    if cache is not None:  # every vector it held is in the store now, found again by its text
        cache.keep_only(())
    report.stage_seconds.update(stage)
    report.documents, report.chunks = n_docs, n_chunks
    report.index_path = str(index_dir / name)
    report.seconds = time.perf_counter() - t0
    return report


def _retire(db, doc_ids: list[str], v: int, live: int | None) -> list[int]:
    """Mark documents' live rows removed in version v; their chunks leave the FTS5 table. Returns chunk ids."""
    if live is None or not doc_ids:
        return []
    marks = ",".join("?" * len(doc_ids))
    ids = [r[0] for r in db.execute(
        f"SELECT c.id FROM chunks c WHERE c.doc_id IN ({marks}) AND {visible('c', '?')}", [*doc_ids, live, live])]
    for table, alias in (("chunks", "c"), ("docs", "d")):
        db.execute(f"UPDATE {table} AS {alias} SET removed_in = ? WHERE {alias}.doc_id IN ({marks}) AND "
                   f"{visible(alias, '?')}", [v, *doc_ids, live, live])
    disk.sync_lexical(db, remove=ids, add=[])
    return ids


def _write_batch(db, batch: list[tuple[Document, str]], v: int, live: int | None, embedder: Embedder,
                 chunking: ChunkingSettings, cache, report: IngestReport, stage: dict, removed_ids: list[int],
                 embed_bar=None) -> int:  # noqa: ANN001
    t = time.perf_counter()
    chunked = [(doc, digest, chunk_document(doc, embedder.count_tokens, embedder.token_offsets, chunking))
               for doc, digest in batch]
    stage["chunk"] += time.perf_counter() - t
    t = time.perf_counter()
    keys = {c.text: text_key(embedder.id, c.text) for _, _, chunks in chunked for c in chunks}
    stored: dict[int, bytes] = {}
    key_list = list(set(keys.values()))
    for start in range(0, len(key_list), 900):
        part = key_list[start:start + 900]
        stored.update(db.execute(f"SELECT text_key, vector FROM chunks WHERE text_key IN ({','.join('?' * len(part))}) GROUP BY text_key",
                                 part).fetchall())
    missing = [Chunk("", "", 0, 0, text) for text, k in keys.items() if k not in stored]
    if missing:
        part_report = IngestReport()
        vectors = _embed(missing, embedder, cache, part_report, progress=False, bar=embed_bar)
        report.embedded_chunks += part_report.embedded_chunks
        report.cached_chunks += part_report.cached_chunks
        for c, vec in zip(missing, vectors):
            stored[keys[c.text]] = np.ascontiguousarray(vec, dtype=np.float32).tobytes()
    stage["embed"] += time.perf_counter() - t
    t = time.perf_counter()
    removed_ids += _retire(db, [doc.doc_id for doc, _ in batch], v, live)
    n = 0
    for doc, digest, chunks in chunked:
        meta = _meta_json(doc.metadata)
        folded = json.dumps({str(k): fold(str(val)) for k, val in doc.metadata.items() if val is not None},
                            ensure_ascii=False)
        db.execute("""INSERT INTO docs (doc_id, hash, source, title, metadata, doc_key, meta_folded, published, added_in)
                      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                   (doc.doc_id, digest, doc.source, doc.title, meta, fold(doc.doc_id), folded,
                    str(doc.metadata.get("published") or "")[:10], v))
        for ord_, c in enumerate(chunks):
            cur = db.execute("""INSERT INTO chunks (doc_id, ord, chunk_id, start, "end", text, text_key, vector, added_in)
                                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                             (c.doc_id, ord_, c.chunk_id, c.start, c.end, c.text, keys[c.text], stored[keys[c.text]], v))
            db.execute("INSERT INTO lex (rowid, tokens) VALUES (?, ?)",
                       (cur.lastrowid, disk.lexical_tokens(doc.title, c.text)))
            n += 1
    stage["write"] += time.perf_counter() - t
    return n
