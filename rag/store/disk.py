"""The disk store: one SQLite file and one compressed FAISS index, so memory stays bounded at 1M chunks.

    <index_dir>/store.sqlite      documents, chunks (text + float32 vector), FTS5 lexical index, versions
    <index_dir>/dense-<v>.faiss   the vectors of version v: IVF with 8-bit codes (flat while small)

The snapshot-folder store (rag/store/embedded.py) reads every chunk, vector and the BM25 matrix into
memory and rewrites all of them on every ingest. Here a search reads only its hits' rows, the lexical
index is SQLite FTS5 over the same folded, stemmed tokens (rag.text.tokenize) updated row by row, and
only the dense index (about 0.4 GB at 1M chunks) lives in memory.

Snapshots are versions: every document and chunk row carries `added_in` and `removed_in`, and a
version v sees the rows with added_in <= v < removed_in. The FTS5 table and the FAISS file always
hold exactly the live version's chunks, so searches need no version test; a rollback applies the
difference between two versions to both. An ingest is one SQLite transaction whose commit also
names the new live version, and the new FAISS file is on disk before it: a kill at any moment leaves
the previous version live (SQLite's journal undoes the half-written one). Versions past the newest
`keep` are garbage-collected with the rows only they could see.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexError_, IndexMismatchError
from ..index import IdIndex
from ..records import Candidate, Chunk, Filters
from ..text import query_tokens, tokenize
from . import base
from .base import Ruled, fuse, not_hidden
from .embedded import REBUILD, SnapshotInfo

FILE = "store.sqlite"
SCHEMA_VERSION = 1
# Dense candidates are re-scored with their exact vectors: ask the 8-bit index for this many times n.
RERANK_FACTOR = 2
# FTS5 scores every row a query term matches (about 1 us a row here), so the lexical query keeps its
# rarest terms while their rows add up to LEXICAL_MAX_MATCHES (the rarest one always), and never a
# term in more than LEXICAL_MAX_DF_SHARE of the chunks once that is over LEXICAL_DROP_MIN_DF rows.
# The terms dropped are the archive's most common ones, which weigh least in BM25; small archives
# keep every term, as bm25s does.
LEXICAL_MAX_DF_SHARE = 0.1
LEXICAL_DROP_MIN_DF = 5_000
LEXICAL_MAX_MATCHES = 12_000
# IVF lists probed per query: at 123k real chunks 32 probes gave recall@10 0.93, 64 gave 0.995, for
# under a millisecond more (eval/SCALE.md).
DEFAULT_NPROBE = 64
DF_CACHE_TERMS = 200_000  # document frequencies remembered per live version (about 20 MB at most)
# Up to this many matching rows, BM25 is summed per term with bm25s' IDF, log(1 + (N - df + 0.5) /
# (df + 0.5)), so small archives rank exactly as the folder store does; FTS5's own bm25() uses
# log((N - df + 0.5) / (df + 0.5)), floored at 1e-6, which zeroes terms in over half the chunks.
# Past it one FTS5 query ranks the union (the terms left then are rare, where the two IDFs agree).
EXACT_BM25_MAX_MATCHES = 2_000
# Retrain the IVF lists once the index holds this many times the vectors it was trained on.
RETRAIN_GROWTH = 4.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS versions (
    v INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, created TEXT NOT NULL, documents INTEGER NOT NULL,
    chunks INTEGER NOT NULL, settings TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs (
    rid INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, hash TEXT NOT NULL, source TEXT NOT NULL, title TEXT NOT NULL,
    metadata TEXT NOT NULL, doc_key TEXT NOT NULL, meta_folded TEXT NOT NULL, published TEXT NOT NULL,
    added_in INTEGER NOT NULL, removed_in INTEGER);
CREATE INDEX IF NOT EXISTS docs_by_id ON docs (doc_id, added_in);
CREATE INDEX IF NOT EXISTS docs_removed ON docs (removed_in);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, ord INTEGER NOT NULL, chunk_id TEXT NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, text TEXT NOT NULL, text_key INTEGER NOT NULL,
    vector BLOB NOT NULL, added_in INTEGER NOT NULL, removed_in INTEGER);
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks (doc_id, ord);
CREATE INDEX IF NOT EXISTS chunks_by_text ON chunks (text_key);
CREATE INDEX IF NOT EXISTS chunks_added ON chunks (added_in);
CREATE INDEX IF NOT EXISTS chunks_removed ON chunks (removed_in);
-- Our own tokens, joined by spaces: split on spaces only, so "48.96" and "o'brien" stay one token.
CREATE VIRTUAL TABLE IF NOT EXISTS lex USING fts5(tokens, tokenize="ascii tokenchars '.,'''");
CREATE VIRTUAL TABLE IF NOT EXISTS lex_vocab USING fts5vocab(lex, row);
"""


def visible(alias: str, v: str = ":v") -> str:
    """SQL: the row `alias` belongs to version v."""
    return f"({alias}.added_in <= {v} AND ({alias}.removed_in IS NULL OR {alias}.removed_in > {v}))"


def path_of(index_dir: Path) -> Path:
    return Path(index_dir) / FILE


def is_disk_store(index_dir: Path) -> bool:
    return path_of(index_dir).exists()


def dense_path(index_dir: Path, v: int) -> Path:
    return Path(index_dir) / f"dense-{v}.faiss"


def _corrupt(file: Path, detail: str) -> IndexError_:
    return IndexError_(f"the index file {file} is corrupt or unreadable ({detail}); {REBUILD}")


def connect(index_dir: Path, *, create: bool = False) -> sqlite3.Connection:
    """The store's database; a damaged file is named in the error, with how to recover."""
    file = path_of(index_dir)
    if not create and not file.exists():
        raise IndexError_(f"no index at {index_dir}; build one with `rag ingest`")
    Path(index_dir).mkdir(parents=True, exist_ok=True)
    try:
        db = sqlite3.connect(file, isolation_level=None, check_same_thread=False, timeout=60)
        db.execute("PRAGMA journal_mode=WAL")  # readers never wait for an ingest, nor it for them
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA journal_size_limit=67108864")
        if create:
            db.executescript(SCHEMA)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        schema = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise _corrupt(file, str(exc)) from exc
    if schema is None or int(schema[0]) != SCHEMA_VERSION:
        raise IndexMismatchError(f"the index at {file} has schema {schema and schema[0]}, this version reads "
                                 f"{SCHEMA_VERSION}; rebuild it with `rag ingest --rebuild`")
    return db


def live_version(db: sqlite3.Connection) -> int | None:
    row = db.execute("SELECT value FROM meta WHERE key = 'live'").fetchone()
    return None if row is None else int(row[0])


def version_row(db: sqlite3.Connection, v: int) -> dict[str, Any]:
    row = db.execute("SELECT v, name, created, documents, chunks, settings FROM versions WHERE v = ?", (v,)).fetchone()
    if row is None:
        raise IndexError_(f"the store names version {v} live but has no record of it; {REBUILD}")
    return {"v": row[0], "name": row[1], "created": row[2], "documents": row[3], "chunks": row[4],
            "settings": json.loads(row[5])}


def check_compatible(settings: dict[str, Any], *, embedder_id: str, chunking: dict, where: Path) -> None:
    """A version's settings against the configured ones (rag/store/base.py says how)."""
    base.check_compatible(settings, embedder_id=embedder_id, chunking=chunking, where=f"the index at {where}")


def load_dense(index_dir: Path, v: int, nprobe: int) -> IdIndex:
    file = dense_path(index_dir, v)
    if not file.exists():
        raise _corrupt(file, "missing")
    try:
        return IdIndex.load(file, nprobe)
    except IndexError_ as exc:
        raise _corrupt(file, str(exc)) from exc


def save_dense(index_dir: Path, v: int, dense: IdIndex) -> Path:
    """Write the FAISS file of version v (fsynced, renamed into place) before v is committed."""
    final = dense_path(index_dir, v)
    tmp = final.with_name(f".{final.name}.tmp")
    dense.save(tmp)
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return final


def drop_other_dense(index_dir: Path, live: int) -> None:
    for f in Path(index_dir).glob("dense-*.faiss"):
        if f != dense_path(index_dir, live):
            f.unlink(missing_ok=True)
    for f in Path(index_dir).glob(".dense-*.faiss.tmp"):
        f.unlink(missing_ok=True)


# -- rows -----------------------------------------------------------------------------------------------
def lexical_tokens(title: str, text: str) -> str:
    # As the folder store: the title names who and what the article is about.
    return " ".join(tokenize(f"{title}\n{text}" if title else text))


def as_vectors(blobs: list[bytes], dim: int) -> np.ndarray:
    return (np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), dim) if blobs
            else np.zeros((0, dim), np.float32))


def iter_vectors(db: sqlite3.Connection, where: str, args: dict, dim: int, block: int = 50_000
                 ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids, vectors) of the chunks matching `where` (over alias c), a block at a time."""
    last = -1
    while True:
        rows = db.execute(f"SELECT c.id, c.vector FROM chunks c WHERE {where} AND c.id > :last "
                          "ORDER BY c.id LIMIT :lim",
                          {**args, "last": last, "lim": block}).fetchall()
        if not rows:
            return
        yield np.array([r[0] for r in rows], dtype=np.int64), as_vectors([r[1] for r in rows], dim)
        last = rows[-1][0]


def build_dense(db: sqlite3.Connection, v: int, n: int, dim: int, *, ann_threshold: int, nprobe: int,
                seed: int = 0) -> tuple[IdIndex, int]:
    """A dense index of version v's chunks from their stored vectors; returns it and how many trained it."""
    if n <= ann_threshold:
        dense = IdIndex.flat(dim, nprobe)
        trained = 0
    else:
        from ..index import IVF_TRAIN_POINTS_PER_LIST, default_nlist

        want = default_nlist(n) * IVF_TRAIN_POINTS_PER_LIST
        ids = np.array([r[0] for r in db.execute(f"SELECT c.id FROM chunks c WHERE {visible('c')}", {"v": v})],
                       dtype=np.int64)
        pick = np.sort(np.random.default_rng(seed).choice(ids, min(want, len(ids)), replace=False))
        sample = np.concatenate([as_vectors([r[0] for r in db.execute(
            f"SELECT vector FROM chunks WHERE id IN ({','.join(map(str, part))}) ORDER BY id")], dim)
            for part in np.array_split(pick, max(1, len(pick) // 900))])
        del ids
        dense = IdIndex.train_ivf(sample, n, nprobe)
        trained = n
    for ids, vecs in iter_vectors(db, visible("c"), {"v": v}, dim):
        dense.add(ids, vecs)
    return dense, trained


def sync_lexical(db: sqlite3.Connection, *, remove: list[int], add: list[tuple[int, str]]) -> None:
    """Apply a change of version to the FTS5 table (it holds the live version's chunks only)."""
    db.executemany("DELETE FROM lex WHERE rowid = ?", ((i,) for i in remove))
    db.executemany("INSERT INTO lex (rowid, tokens) VALUES (?, ?)", add)


def gc(db: sqlite3.Connection, keep: int) -> None:
    """Forget versions past the newest `keep` (never the live one) and the rows only they saw."""
    live = live_version(db)
    versions = [r[0] for r in db.execute("SELECT v FROM versions ORDER BY v")]
    kept = set(versions[-max(1, keep):]) | ({live} if live is not None else set())
    if not kept:
        return
    oldest = min(kept)
    db.execute("BEGIN IMMEDIATE")
    try:
        gone = [v for v in versions if v not in kept]
        db.executemany("DELETE FROM versions WHERE v = ?", ((v,) for v in gone))
        # Invisible to every kept version: removed at or before the oldest, or only in dropped ones.
        for table in ("chunks", "docs"):
            db.execute(f"DELETE FROM {table} WHERE removed_in IS NOT NULL AND removed_in <= ?", (oldest,))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


# -- snapshots: list and roll back ---------------------------------------------------------------------
def list_snapshots(index_dir: Path) -> list[SnapshotInfo]:
    db = connect(index_dir)
    try:
        live = live_version(db)
        return [SnapshotInfo(name, created, docs, chunks, v == live)
                for v, name, created, docs, chunks in db.execute(
                    "SELECT v, name, created, documents, chunks FROM versions ORDER BY v")]
    finally:
        db.close()


def rollback(index_dir: Path, name: str | None = None, *, nprobe: int = DEFAULT_NPROBE) -> str:
    """Make another version live: the FTS5 rows and the FAISS index get the difference between them."""
    db = connect(index_dir)
    try:
        live = live_version(db)
        rows = db.execute("SELECT v, name FROM versions ORDER BY v").fetchall()
        if name is None:
            older = [r for r in rows if live is None or r[0] < live]
            if not older:
                raise IndexError_(f"no earlier snapshot to roll back to in {index_dir} (see `rag index list`)")
            target, name = older[-1]
        else:
            match = [r for r in rows if r[1] == name]
            if not match:
                raise IndexError_(f"no usable snapshot {name!r} in {index_dir}; `rag index list` shows them")
            target = match[0][0]
        if target == live:
            return name
        switch_version(db, index_dir, live, target, nprobe=nprobe)
        drop_other_dense(index_dir, target)
        return name
    finally:
        db.close()


def switch_version(db: sqlite3.Connection, index_dir: Path, live: int | None, target: int, *, nprobe: int) -> None:
    info = version_row(db, target)
    dim = int(info["settings"]["dimension"])
    args = {"a": live if live is not None else -1, "b": target}
    gone = [r[0] for r in db.execute(
        f"SELECT c.id FROM chunks c WHERE {visible('c', ':a')} AND NOT {visible('c', ':b')}", args)]
    back = db.execute(
        f"""SELECT c.id, d.title, c.text FROM chunks c JOIN docs d ON d.doc_id = c.doc_id AND {visible('d', ':b')}
            WHERE {visible('c', ':b')} AND NOT {visible('c', ':a')}""", args).fetchall()
    old = None
    if live is not None:
        try:
            old = load_dense(index_dir, live, nprobe)
        except IndexError_:
            old = None  # rebuilt below from the stored vectors
    if live is not None and old is not None:
        # The delta goes into the live index only if it is the kind the target was built with and
        # was trained on the same data (a 14k-chunk version must not keep lists trained for 1M).
        was = version_row(db, live)["settings"]
        if (old.dimension != dim or was.get("dense") != info["settings"].get("dense")
                or was.get("trained_on") != info["settings"].get("trained_on")):
            old = None
    if old is not None:
        old.remove(np.array(gone, dtype=np.int64))
        for ids, vecs in iter_vectors(db, f"{visible('c', ':b')} AND NOT {visible('c', ':a')}", args, dim):
            old.add(ids, vecs)
        dense = old
    else:
        dense, _ = build_dense(db, target, int(info["chunks"]), dim,
                               ann_threshold=int(info["settings"]["ann_threshold"]), nprobe=nprobe)
    save_dense(index_dir, target, dense)
    db.execute("BEGIN IMMEDIATE")
    try:
        sync_lexical(db, remove=gone, add=[(i, lexical_tokens(title, text)) for i, title, text in back])
        db.execute("INSERT OR REPLACE INTO meta VALUES ('live', ?)", (str(target),))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


# -- the read side --------------------------------------------------------------------------------------
def filter_sql(filters: Filters | None) -> tuple[str, list[Any]]:
    """Filters as a predicate over the document row `d`, in SQLite's dialect."""
    # json_each of a path to a scalar yields that scalar, of a list its items, of nothing no row.
    return base.filter_sql(filters, alias="d", param="?", true="1", member=(
        "EXISTS (SELECT 1 FROM json_each({alias}.meta_folded, '$.' || json_quote({key})) AS m "
        "WHERE m.type = 'text' AND m.value IN ({values}))"))


def fts_query(terms: list[str]) -> str:
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


@dataclass
class _Live:
    v: int
    info: dict[str, Any]
    dense: IdIndex
    df: dict[str, int] = field(default_factory=dict)  # term -> chunks holding it, in this version
    rules: Ruled | None = None  # the documents with rules, read on first use (DiskStore.ruled)


class DiskStore:
    """The Store role over store.sqlite + the live FAISS file; follows ingests by other processes."""

    def __init__(self, index_dir: Path, *, nprobe: int = DEFAULT_NPROBE, embedder_id: str | None = None,
                 chunking: dict | None = None, lexical_max_df_share: float = LEXICAL_MAX_DF_SHARE) -> None:
        self.index_dir = Path(index_dir)
        self.nprobe = nprobe
        self.max_df_share = lexical_max_df_share
        self._expect = (embedder_id, chunking)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._data_version = -1
        self._live = self._open_live(self._db())

    # One connection per thread: sqlite3 connections must not be shared by concurrent requests.
    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = connect(self.index_dir)
        return db

    def _open_live(self, db: sqlite3.Connection) -> _Live:
        v = live_version(db)
        if v is None:
            raise IndexError_(f"no index at {self.index_dir}; build one with `rag ingest`")
        info = version_row(db, v)
        embedder_id, chunking = self._expect
        if embedder_id is not None:
            check_compatible(info["settings"], embedder_id=embedder_id,
                             chunking=chunking or info["settings"]["chunking"], where=self.index_dir)
        self._data_version = db.execute("PRAGMA data_version").fetchone()[0]
        return _Live(v, info, load_dense(self.index_dir, v, self.nprobe))

    def _current(self) -> tuple[sqlite3.Connection, _Live]:
        """The live version; when another process committed one since, its FAISS file replaces ours."""
        db = self._db()
        try:
            changed = db.execute("PRAGMA data_version").fetchone()[0] != self._data_version
            if changed and live_version(db) != self._live.v:
                with self._lock:
                    if live_version(db) != self._live.v:
                        self._live = self._open_live(db)
        except sqlite3.DatabaseError as exc:
            raise _corrupt(path_of(self.index_dir), str(exc)) from exc
        return db, self._live

    @property
    def dense(self) -> IdIndex:
        return self._live.dense

    def search(self, query: str, qvec: np.ndarray | None, n: int, *, mode: str, fusion: str, alpha: float,
               filters: Filters | None = None) -> list[Candidate]:
        db, live = self._current()
        try:
            return self._search(db, live, query, qvec, n, mode=mode, fusion=fusion, alpha=alpha, filters=filters)
        except sqlite3.DatabaseError as exc:
            raise _corrupt(path_of(self.index_dir), str(exc)) from exc

    def _search(self, db, live: _Live, query, qvec, n, *, mode, fusion, alpha, filters) -> list[Candidate]:
        if live.info["chunks"] == 0:
            return []
        where, fargs = filter_sql(filters)
        hidden = self._ruled(db, live).hidden_positions(filters.access if filters is not None else None)
        allowed = None
        if where != "1":
            allowed = np.array([r[0] for r in db.execute(
                f"""SELECT c.id FROM docs d JOIN chunks c ON c.doc_id = d.doc_id AND {visible('c', '?')}
                    WHERE {visible('d', '?')} AND {where}""", [live.v] * 4 + fargs)], dtype=np.int64)
            allowed = allowed[not_hidden(allowed, hidden)]
            if len(allowed) == 0:
                return []
        dense_ids: np.ndarray = np.zeros(0, dtype=np.int64)
        if mode != "lexical":
            _, dense_ids = live.dense.search(qvec, n * RERANK_FACTOR if live.dense.kind == "ivf" else n, allowed,
                                             excluded=hidden if allowed is None else None)
        lexical = self._lexical(db, live, query, n, where, fargs, hidden) if mode != "dense" else {}
        rows = self._rows(db, live, set(dense_ids.tolist()) | set(lexical))
        dense: dict[int, float] = {}
        if len(dense_ids):
            # Exact scores from the stored float32 vectors: the 8-bit codes only chose the candidates.
            exact = {int(i): float(rows[int(i)][1] @ qvec) for i in dense_ids if int(i) in rows}
            dense = dict(sorted(exact.items(), key=lambda kv: -kv[1])[:n])
        ranked = fuse(dense, lexical, mode=mode, fusion=fusion, alpha=alpha)
        return [Candidate(rows[i][0], s, rows[i][1]) for i, s in ranked if i in rows]

    def _lexical(self, db, live: _Live, query: str, n: int, where: str, fargs: list,
                 hidden: np.ndarray | None = None) -> dict[int, float]:
        counts = Counter(query_tokens(query))  # a bare "D" also meets the index's "dj" (rag/text.py)
        if not counts:
            return {}
        df = self._document_frequencies(db, live, list(counts))
        terms = [t for t in counts if df.get(t)]
        if not terms:
            return {}
        total = max(1, int(live.info["chunks"]))
        limit = max(self.max_df_share * total, LEXICAL_DROP_MIN_DF)
        kept, rows = [], 0
        for t in sorted(terms, key=df.get):
            if kept and (df[t] > limit or rows + df[t] > LEXICAL_MAX_MATCHES):
                break
            kept.append(t)
            rows += df[t]
        if sum(df[t] for t in kept) <= EXACT_BM25_MAX_MATCHES:
            return self._bm25_per_term(db, live, kept, counts, df, total, n, where, fargs, hidden)
        if where == "1":
            sql = "SELECT rowid, bm25(lex) AS s FROM lex WHERE lex MATCH ? ORDER BY s LIMIT ?"
            args: list[Any] = [fts_query(kept), n]
        else:
            sql = f"""SELECT l.rowid, bm25(lex) AS s FROM lex l JOIN chunks c ON c.id = l.rowid
                      JOIN docs d ON d.doc_id = c.doc_id AND {visible('d', '?')}
                      WHERE lex MATCH ? AND {where} ORDER BY s LIMIT ?"""
            args = [live.v, live.v, fts_query(kept), *fargs, n]
        # FTS5's bm25() is negative, lower is better. What an Access hides is left out after the
        # ranking: ask at once for enough that n are very likely left at the hidden share h (each
        # FTS5 query scores every match, so a second one doubles the cost), and more if not.
        limit = n
        if hidden is not None:
            share = min(0.9, len(hidden) / total)
            limit = n + math.ceil(3 * n * share / (1 - share)) + 16
        while True:
            rows = db.execute(sql, [*args[:-1], limit]).fetchall()
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            keep = not_hidden(ids, hidden)
            if keep.sum() >= n or len(rows) < limit:
                return {int(rows[i][0]): -float(rows[i][1]) for i in np.flatnonzero(keep)[:n]}
            limit *= 4

    def _document_frequencies(self, db, live: _Live, terms: list[str]) -> dict[str, int]:
        """Chunks holding each term. fts5vocab counts them by reading the term's whole row list (18 ms
        a query at 1M chunks, for the common words every query has), so the counts of the live
        version are remembered: bounded, and dropped with the version."""
        cache = live.df
        missing = [t for t in terms if t not in cache]
        if missing:
            found = dict(db.execute(f"SELECT term, doc FROM lex_vocab WHERE term IN ({','.join('?' * len(missing))})",
                                    missing).fetchall())
            if len(cache) > DF_CACHE_TERMS:
                cache.clear()
            for t in missing:
                cache[t] = int(found.get(t, 0))
        return {t: cache[t] for t in terms}

    def _bm25_per_term(self, db, live: _Live, terms: list[str], qtf: Counter, df: dict[str, int], total: int,
                       n: int, where: str, fargs: list, hidden: np.ndarray | None = None) -> dict[int, float]:
        """BM25 with bm25s' IDF: each term's FTS5 score divided by FTS5's IDF is its length-normalised tf part."""
        scores: dict[int, float] = {}
        for t in terms:
            ratio = (total - df[t] + 0.5) / (df[t] + 0.5)
            fts_idf = math.log(ratio) if ratio > 1 else 1e-6
            weight = qtf[t] * math.log(1 + ratio) / fts_idf
            for i, s in db.execute("SELECT rowid, bm25(lex) FROM lex WHERE lex MATCH ?", (fts_query([t]),)):
                scores[i] = scores.get(i, 0.0) - s * weight
        if where != "1" and scores:
            ids = list(scores)
            allowed: set[int] = set()
            for start in range(0, len(ids), 900):
                part = ids[start:start + 900]
                allowed.update(r[0] for r in db.execute(
                    f"""SELECT c.id FROM chunks c JOIN docs d ON d.doc_id = c.doc_id AND {visible('d', '?')}
                        WHERE c.id IN ({','.join('?' * len(part))}) AND {where}""", [live.v, live.v, *part, *fargs]))
            scores = {i: s for i, s in scores.items() if i in allowed}
        if hidden is not None and scores:
            ids = list(scores)
            scores = {i: scores[i] for i, ok in zip(ids, not_hidden(ids, hidden)) if ok}
        top = sorted(scores.items(), key=lambda kv: -kv[1])[:n]
        return {i: s for i, s in top if s > 0}

    def _rows(self, db, live: _Live, ids: set[int]) -> dict[int, tuple[Chunk, np.ndarray]]:
        """Chunks and vectors by id: one read of the chunk rows, one of their documents' rows."""
        if not ids:
            return {}
        dim = int(live.info["settings"]["dimension"])
        rows = []
        id_list = sorted(ids)
        for start in range(0, len(id_list), 900):
            part = id_list[start:start + 900]
            rows += db.execute(f"""SELECT id, doc_id, chunk_id, start, "end", text, vector FROM chunks
                                   WHERE id IN ({','.join('?' * len(part))})""", part).fetchall()
        doc_ids = list({r[1] for r in rows})
        docs: dict[str, tuple[str, dict]] = {}
        for start in range(0, len(doc_ids), 900):
            part = doc_ids[start:start + 900]
            for doc_id, title, meta in db.execute(
                    f"""SELECT d.doc_id, d.title, d.metadata FROM docs d
                        WHERE d.doc_id IN ({','.join('?' * len(part))}) AND {visible('d', '?')}""",
                    [*part, live.v, live.v]):
                docs[doc_id] = (title, json.loads(meta))
        out: dict[int, tuple[Chunk, np.ndarray]] = {}
        for cid, doc_id, chunk_id, start_, end, text, vec in rows:
            if doc_id in docs:
                title, meta = docs[doc_id]
                out[cid] = (Chunk(doc_id, chunk_id, start_, end, text, title, meta),
                            np.frombuffer(vec, dtype=np.float32, count=dim))
        return out

    def ruled(self) -> Ruled:
        db, live = self._current()
        return self._ruled(db, live)

    def _ruled(self, db, live: _Live) -> Ruled:
        """The live version's documents with rules: one scan of the documents' metadata per version."""
        if live.rules is None:
            with self._lock:
                if live.rules is None:
                    live.rules = Ruled(self._read_ruled(db, live.v))
        return live.rules

    @staticmethod
    def _read_ruled(db, v: int) -> Iterator[tuple[str, dict, np.ndarray]]:
        # A cheap text match first; Ruled keeps those whose metadata really holds a rule.
        docs = {doc_id: json.loads(meta) for doc_id, meta in db.execute(
            f"""SELECT d.doc_id, d.metadata FROM docs d WHERE {visible('d', '?')} AND (d.metadata LIKE '%"status"%'
                OR d.metadata LIKE '%"embargo_until"%' OR d.metadata LIKE '%"desks"%')""", [v, v])}
        ids = list(docs)
        for start in range(0, len(ids), 900):
            part = ids[start:start + 900]
            by_doc: dict[str, list[int]] = {}
            for cid, doc_id in db.execute(
                    f"""SELECT c.id, c.doc_id FROM chunks c WHERE c.doc_id IN ({','.join('?' * len(part))})
                        AND {visible('c', '?')}""", [*part, v, v]):
                by_doc.setdefault(doc_id, []).append(cid)
            for doc_id in part:
                yield doc_id, docs[doc_id], np.array(sorted(by_doc.get(doc_id, [])), dtype=np.int64)

    def document_ids(self) -> list[str]:
        db, live = self._current()
        return [r[0] for r in db.execute(f"SELECT d.doc_id FROM docs d WHERE {visible('d')} ORDER BY d.rid",
                                         {"v": live.v})]

    def document_chunks(self, doc_id: str) -> list[Chunk]:
        db, live = self._current()
        rows = db.execute(
            f"""SELECT c.doc_id, c.chunk_id, c.start, c."end", c.text, d.title, d.metadata FROM chunks c
                JOIN docs d ON d.doc_id = c.doc_id AND {visible('d')}
                WHERE c.doc_id = :doc AND {visible('c')} ORDER BY c.ord""", {"v": live.v, "doc": doc_id})
        return [Chunk(a, b, s, e, t, title, json.loads(m)) for a, b, s, e, t, title, m in rows]

    def counts(self) -> dict[str, int]:
        info = self._current()[1].info
        return {"documents": int(info["documents"]), "chunks": int(info["chunks"])}

    @property
    def version(self) -> str:
        return str(self.index_dir / self._current()[1].info["name"])

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


def new_version_name() -> tuple[str, str]:
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now % 1 * 1e6):06d}"
    return f"v-{stamp}", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
