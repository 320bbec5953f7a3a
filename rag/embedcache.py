"""Embeddings on disk by chunk content, so an interrupted or repeated ingest re-embeds only what is new.

One SQLite file beside the snapshots (<index_dir>/embed-cache.sqlite): key = sha256(embedder id, chunk
text), value = the float32 vector. Each batch is committed as soon as it is embedded, so a run
killed after an hour keeps that hour's work; SQLite's journal keeps the file whole through kill -9.
After a snapshot is switched in, vectors no chunk of it uses are dropped, so the file stays about
the size of the index. A damaged file is discarded (it is only a cache).
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
FILE = "embed-cache.sqlite"


def remove(index_dir: Path) -> None:
    """Delete the cache (and SQLite's write-ahead files beside it)."""
    for suffix in ("", "-wal", "-shm"):
        (index_dir / (FILE + suffix)).unlink(missing_ok=True)


def key(embedder_id: str, text: str) -> bytes:
    return hashlib.sha256(embedder_id.encode() + b"\0" + text.encode("utf-8", "surrogatepass")).digest()


class EmbedCache:
    def __init__(self, index_dir: Path, embedder_id: str, dimension: int) -> None:
        self.path = index_dir / FILE
        self.embedder_id = embedder_id
        self.dimension = dimension
        index_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            log.warning("embedding cache %s is unreadable (%s); starting a new one", self.path, exc)
            remove(index_dir)
            self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS vec (k BLOB PRIMARY KEY, v BLOB NOT NULL)")
        db.execute("SELECT count(*) FROM vec LIMIT 1").fetchone()
        return db

    def get_many(self, texts: Sequence[str]) -> list[np.ndarray | None]:
        keys = [key(self.embedder_id, t) for t in texts]
        found: dict[bytes, np.ndarray] = {}
        for i in range(0, len(keys), 500):  # SQLite's limit on bound parameters
            part = keys[i:i + 500]
            rows = self._db.execute(f"SELECT k, v FROM vec WHERE k IN ({','.join('?' * len(part))})", part)
            for k, v in rows:
                vec = np.frombuffer(v, dtype=np.float32)
                if vec.shape == (self.dimension,):
                    found[k] = vec
        return [found.get(k) for k in keys]

    def put_many(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        rows = [(key(self.embedder_id, t), np.ascontiguousarray(v, dtype=np.float32).tobytes())
                for t, v in zip(texts, vectors)]
        with self._db:  # one transaction: the batch is on disk when this returns
            self._db.executemany("INSERT OR REPLACE INTO vec (k, v) VALUES (?, ?)", rows)

    def keep_only(self, texts: Iterable[str]) -> int:
        """Drop vectors of texts not in `texts` (the live snapshot's chunks); returns how many went."""
        keep = {key(self.embedder_id, t) for t in texts}
        stale = [(k,) for (k,) in self._db.execute("SELECT k FROM vec") if k not in keep]
        with self._db:
            self._db.executemany("DELETE FROM vec WHERE k = ?", stale)
        return len(stale)

    def close(self) -> None:
        self._db.close()
