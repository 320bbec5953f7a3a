"""The disk store's writer (rag/store/disk.py): only what changed is written, in one transaction.

Documents stream through in batches; a chunk whose text is already stored (by this embedder) reuses
that vector, the embedding cache covers a crash between embedding and commit, and the embedder the
rest. The FTS5 rows and the FAISS lists are updated by the change alone: nothing is rebuilt from
every chunk (except the IVF lists, retrained when the index outgrows what it was trained on).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Container, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType

import numpy as np

from ..embedcache import EmbedCache
from ..errors import IndexError_, IndexMismatchError
from ..index import IndexParams
from ..ingest import Action, Indexed, Job, Written, metadata_json
from ..lexical import TOKENIZER_VERSION
from ..records import Document
from ..text import fold
from . import base, disk
from .disk import visible
from .folder_writer import previous_documents

BATCH_DOCS = 64


def text_key(embedder_id: str, text: str) -> int:
    """A signed 64-bit key of (embedder, text): the stored vector of an identical text is reused."""
    digest = hashlib.sha256(embedder_id.encode() + b"\0" + text.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "little", signed=True)


class DiskWriter(AbstractContextManager):
    def __init__(self, index_dir: Path, *, params: IndexParams = IndexParams(), keep: int = 5,
                 use_cache: bool = True, batch_docs: int = BATCH_DOCS) -> None:
        self.index_dir = Path(index_dir)
        self.params = params
        self.keep = keep
        self.use_cache = use_cache
        self.batch_docs = batch_docs
        self.db = None
        self.cache: EmbedCache | None = None
        self.committed = False
        self.batch: list[tuple[Document, str]] = []
        self.removed_ids: list[int] = []
        self.added_chunks = 0
        self.given: set[str] = set()

    def begin(self, job: Job) -> tuple[Mapping[str, Indexed], Container[str]]:
        self.job = job
        index_dir, embedder = self.index_dir, job.embedder
        folder_docs: dict[str, dict] = {}
        if not disk.is_disk_store(index_dir) and (index_dir / "CURRENT").exists():
            if not job.rebuild:
                raise IndexMismatchError(
                    f"the index at {index_dir} is a snapshot-folder index (RAG_EMBEDDED_BACKEND=folder); rebuild it "
                    f"for the disk store with `rag ingest --rebuild`")
            folder_docs = previous_documents(index_dir)
        try:
            self.db = disk.connect(index_dir, create=True)
        except IndexError_:
            if not job.rebuild:
                raise
            # A rebuild is how a broken store is repaired: start a new file.
            for suffix in ("", "-wal", "-shm"):
                (index_dir / (disk.FILE + suffix)).unlink(missing_ok=True)
            self.db = disk.connect(index_dir, create=True)
        if self.use_cache:
            self.cache = EmbedCache(index_dir, embedder.id, embedder.dimension)
        db = self.db
        db.execute("BEGIN IMMEDIATE")  # one writer; readers keep seeing the live version until COMMIT
        self.live = live = disk.live_version(db)
        self.info = info = disk.version_row(db, live) if live is not None else None
        if info is not None and not job.rebuild:
            disk.check_compatible(info["settings"], embedder_id=embedder.id, chunking=job.chunking.to_json(),
                                  where=index_dir)
        if live is not None:  # after a rollback, the versions beyond the live one are abandoned
            for table in ("chunks", "docs"):
                db.execute(f"DELETE FROM {table} WHERE added_in > ?", (live,))
                db.execute(f"UPDATE {table} SET removed_in = NULL WHERE removed_in > ?", (live,))
            db.execute("DELETE FROM versions WHERE v > ?", (live,))
        self.v = (live or 0) + 1
        old: dict[str, Indexed] = {}
        if live is not None:
            old = {r[0]: Indexed(*r[1:]) for r in db.execute(
                f"SELECT d.doc_id, d.hash, d.source, d.title, d.metadata FROM docs d WHERE {visible('d')}",
                {"v": live})}
        previous = old or {k: Indexed(v["hash"], str(v.get("source", "")), v.get("title", ""))
                           for k, v in folder_docs.items()}
        return previous, old

    def put(self, doc: Document, digest: str, action: Action) -> None:
        self.given.add(doc.doc_id)
        if action is Action.KEEP:
            return
        self.batch.append((doc, digest))
        if len(self.batch) >= self.batch_docs:
            self._flush()

    def _flush(self) -> None:
        if self.batch:
            self.added_chunks += _write_batch(self.db, self.batch, self.v, self.live, self.job, self.cache,
                                              self.removed_ids)
            self.batch = []

    def finish(self, kept: Sequence[str], dropped: Sequence[str]) -> Written:
        self._flush()
        db, v, info, params, dim = self.db, self.v, self.info, self.params, self.job.embedder.dimension
        for start in range(0, len(dropped), 500):
            self.removed_ids += _retire(db, list(dropped[start:start + 500]), v, self.live)
        t = time.perf_counter()
        n_docs = len(self.given) + len(kept)
        n_chunks = (info["chunks"] if info else 0) + self.added_chunks - len(self.removed_ids)
        if self.job.rebuild or self.live is None or int(info["settings"]["dimension"]) != dim:
            dense, trained = None, 0
        else:
            trained = int(info["settings"].get("trained_on", 0))
            dense = disk.load_dense(self.index_dir, self.live, params.ivf_nprobe)
        if dense is not None:
            dense.remove(np.array(self.removed_ids, dtype=np.int64))
            # Retrain when the archive outgrew the lists (or shrank far below what trained them).
            growth = disk.RETRAIN_GROWTH
            outgrown = (dense.kind == "flat" and n_chunks > params.ann_threshold) or (dense.kind == "ivf" and (
                n_chunks <= params.ann_threshold or not trained / growth <= n_chunks <= growth * trained))
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
        disk.save_dense(self.index_dir, v, dense)
        self.job.timed("index", t)
        name, created = disk.new_version_name()
        settings = {"embedder": self.job.embedder.id, "dimension": dim, "chunking": self.job.chunking.to_json(),
                    "tokenizer": TOKENIZER_VERSION, "ann_threshold": params.ann_threshold, "dense": dense.kind,
                    "trained_on": trained}
        db.execute("INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?)",
                   (v, name, created, n_docs, n_chunks, json.dumps(settings)))
        db.execute("INSERT OR REPLACE INTO meta VALUES ('live', ?)", (str(v),))
        db.execute("COMMIT")
        self.committed = True
        disk.drop_other_dense(self.index_dir, v)
        disk.gc(db, self.keep)
        if self.cache is not None:  # every vector it held is in the store now, found again by its text
            self.cache.keep_only(())
        return Written(n_docs, n_chunks, str(self.index_dir / name))

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if self.db is not None and not self.committed and self.db.in_transaction:
                self.db.execute("ROLLBACK")
        finally:
            if self.cache is not None:
                self.cache.close()
            if self.db is not None:
                self.db.close()


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


def _write_batch(db, batch: list[tuple[Document, str]], v: int, live: int | None, job: Job,
                 cache: EmbedCache | None, removed_ids: list[int]) -> int:
    chunked = [(doc, digest, job.chunk(doc)) for doc, digest in batch]
    embedder_id = job.embedder.id
    keys = {c.text: text_key(embedder_id, c.text) for _, _, chunks in chunked for c in chunks}
    stored: dict[int, bytes] = {}
    key_list = list(set(keys.values()))
    for start in range(0, len(key_list), 900):
        part = key_list[start:start + 900]
        stored.update(db.execute(f"SELECT text_key, vector FROM chunks "
                                 f"WHERE text_key IN ({','.join('?' * len(part))}) GROUP BY text_key",
                                 part).fetchall())
    missing = [text for text, k in keys.items() if k not in stored]
    if missing:
        for text, vec in zip(missing, job.embed(missing, cache)):
            stored[keys[text]] = np.ascontiguousarray(vec, dtype=np.float32).tobytes()
    t = time.perf_counter()
    removed_ids += _retire(db, [doc.doc_id for doc, _ in batch], v, live)
    n = 0
    for doc, digest, chunks in chunked:
        meta = metadata_json(doc.metadata)
        folded = json.dumps(base.folded_metadata(doc.metadata), ensure_ascii=False)
        db.execute("""INSERT INTO docs (doc_id, hash, source, title, metadata, doc_key, meta_folded, """
                   """published, added_in)
                      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                   (doc.doc_id, digest, doc.source, doc.title, meta, fold(doc.doc_id), folded,
                    str(doc.metadata.get("published") or "")[:10], v))
        for ord_, c in enumerate(chunks):
            cur = db.execute("""INSERT INTO chunks (doc_id, ord, chunk_id, start, "end", text, text_key, vector, """
                             """added_in)
                                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                             (c.doc_id, ord_, c.chunk_id, c.start, c.end, c.text, keys[c.text],
                              stored[keys[c.text]], v))
            db.execute("INSERT INTO lex (rowid, tokens) VALUES (?, ?)",
                       (cur.lastrowid, disk.lexical_tokens(doc.title, c.text)))
            n += 1
    job.timed("write", t)
    return n
