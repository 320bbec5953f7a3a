"""The index folder on disk: versioned snapshots switched atomically.

    <index_dir>/CURRENT          name of the live snapshot (replaced with os.replace)
    <index_dir>/v-<stamp>/       manifest.json, chunks.jsonl, vectors.npy, dense.faiss, lexical/

A new snapshot is written beside the live one and only then named in CURRENT, so an ingest that
dies half-way leaves the previous snapshot live and loadable.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexError_, IndexMismatchError
from ..index import FaissIndex, IndexParams
from ..lexical import TOKENIZER_VERSION, LexicalIndex
from ..records import Candidate, Chunk
from . import base
from .base import Ruled, fuse

FORMAT_VERSION = 1
CURRENT = "CURRENT"


@dataclass
class Snapshot:
    """Everything retrieval needs, in memory. Positions in `chunks` are the vector ids."""

    manifest: dict[str, Any]
    chunks: list[Chunk]
    vectors: np.ndarray
    dense: FaissIndex
    lexical: LexicalIndex
    path: Path | None = None
    by_doc: dict[str, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.by_doc:
            for pos, chunk in enumerate(self.chunks):
                self.by_doc.setdefault(chunk.doc_id, []).append(pos)

    @property
    def documents(self) -> dict[str, dict[str, Any]]:
        return self.manifest.get("documents", {})


def build_manifest(*, embedder_id: str, dimension: int, chunking: dict, index: FaissIndex,
                   documents: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "embedder": {"id": embedder_id, "dimension": dimension},
        "chunking": chunking,
        "lexical": {"tokenizer": TOKENIZER_VERSION},
        "index": {"kind": index.kind, "params": index.params.to_json()},
        "documents": documents,
    }


def check_compatible(manifest: dict[str, Any], *, embedder_id: str, chunking: dict, where: Path) -> None:
    """A snapshot's manifest against the configured settings (rag/store/base.py says how)."""
    built = {"embedder": manifest.get("embedder", {}).get("id"), "chunking": manifest.get("chunking"),
             "tokenizer": manifest.get("lexical", {}).get("tokenizer")}
    base.check_compatible(built, embedder_id=embedder_id, chunking=chunking, where=f"the index at {where}")


REBUILD = "rebuild the index with `rag ingest --rebuild` (or go back with `rag index rollback`)"
DEFAULT_KEEP = 5


def _corrupt(file: Path, detail: str) -> IndexError_:
    return IndexError_(f"the index file {file} is corrupt or unreadable ({detail}); {REBUILD}")


def current_name(index_dir: Path) -> str | None:
    """The live snapshot's folder name from CURRENT, or None when there is no index yet."""
    pointer = index_dir / CURRENT
    try:
        raw = pointer.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _corrupt(pointer, exc.strerror or str(exc)) from exc
    try:
        name = raw.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise _corrupt(pointer, f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start}") from exc
    if not name.startswith("v-") or "/" in name or "\\" in name or not (index_dir / name).is_dir():
        raise _corrupt(pointer, f"it names {name[:80]!r}, which is not a snapshot folder here")
    return name


def current_path(index_dir: Path) -> Path | None:
    name = current_name(index_dir)
    return None if name is None else index_dir / name


def _safe_current(index_dir: Path) -> str | None:
    """current_name, or None when CURRENT is garbage (a rebuild or rollback replaces it)."""
    try:
        return current_name(index_dir)
    except IndexError_:
        return None


def read_manifest(folder: Path) -> dict[str, Any]:
    file = folder / "manifest.json"
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise _corrupt(file, "missing: the snapshot was never finished") from exc
    except OSError as exc:
        raise _corrupt(file, exc.strerror or str(exc)) from exc
    except UnicodeDecodeError as exc:
        raise _corrupt(file, f"not UTF-8 at offset {exc.start}") from exc
    except json.JSONDecodeError as exc:
        raise _corrupt(file, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
    if not isinstance(manifest, dict):
        raise _corrupt(file, f"expected a JSON object, got {type(manifest).__name__}")
    return manifest


def _read_chunks(file: Path) -> list[Chunk]:
    chunks: list[Chunk] = []
    try:
        with file.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                try:
                    chunks.append(_chunk(json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise _corrupt(file, f"line {lineno} is not valid JSON ({exc.msg}); "
                                         "the file may be truncated") from exc
                except (TypeError, ValueError) as exc:
                    raise _corrupt(file, f"line {lineno} is not a chunk record") from exc
    except FileNotFoundError as exc:
        raise _corrupt(file, "missing") from exc
    except UnicodeDecodeError as exc:
        raise _corrupt(file, f"not UTF-8 at offset {exc.start}") from exc
    except OSError as exc:
        raise _corrupt(file, exc.strerror or str(exc)) from exc
    return chunks


def load(index_dir: Path, params: IndexParams | None = None) -> Snapshot:
    path = current_path(index_dir)
    if path is None:
        raise IndexError_(f"no index at {index_dir}; build one with `rag ingest`")
    return load_snapshot(path, params)


def load_snapshot(path: Path, params: IndexParams | None = None) -> Snapshot:
    """One snapshot folder; every failure names the file that failed and how to recover."""
    manifest = read_manifest(path)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatchError(
            f"the index at {path} has format {manifest.get('format_version')}, this version "
            f"reads {FORMAT_VERSION}; rebuild it with `rag ingest --rebuild`"
        )
    try:
        stored = IndexParams(**manifest["index"]["params"])
        kind = manifest["index"]["kind"]
    except (KeyError, TypeError) as exc:
        raise _corrupt(path / "manifest.json", f"no valid 'index' entry ({exc})") from exc
    if params is not None:  # search-time knobs may change without a rebuild
        stored = IndexParams(**{**stored.to_json(), "hnsw_ef_search": params.hnsw_ef_search,
                                "ivf_nprobe": params.ivf_nprobe})
    chunks = _read_chunks(path / "chunks.jsonl")
    try:
        vectors = np.load(path / "vectors.npy")
    except (OSError, ValueError, EOFError) as exc:
        raise _corrupt(path / "vectors.npy", str(exc) or type(exc).__name__) from exc
    dense = FaissIndex.load(path / "dense.faiss", kind, stored)
    try:
        lexical = LexicalIndex.load(path / "lexical")
    except Exception as exc:  # bm25s raises whatever its json/numpy readers raise on a broken file
        raise _corrupt(path / "lexical", f"{type(exc).__name__}: {exc}") from exc
    counts = {"chunks.jsonl": len(chunks), "vectors.npy": len(vectors), "dense.faiss": dense.ntotal,
              "lexical": lexical.size}
    if len(set(counts.values())) != 1:
        raise IndexError_(f"the index at {path} is inconsistent (entries per file: {counts}); {REBUILD}")
    return Snapshot(manifest, chunks, vectors, dense, lexical, path)


def save(index_dir: Path, snap: Snapshot, *, keep: int = DEFAULT_KEEP) -> Path:
    """Write `snap` as a new snapshot and make it live; returns its folder.

    The newest `keep` snapshots stay on disk (the live one among them) for `rag index rollback`.
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    # Microseconds in the name: snapshots sort by age even when written in the same second.
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now % 1 * 1e6):06d}"
    name = f"v-{stamp}-{uuid.uuid4().hex[:6]}"
    tmp = index_dir / f".tmp-{name}"
    tmp.mkdir()
    with (tmp / "chunks.jsonl").open("w", encoding="utf-8") as fh:
        for chunk in snap.chunks:
            fh.write(json.dumps(_chunk_json(chunk), ensure_ascii=False) + "\n")
    np.save(tmp / "vectors.npy", snap.vectors)
    snap.dense.save(tmp / "dense.faiss")
    snap.lexical.save(tmp / "lexical")
    # The manifest goes last: a snapshot without one was never finished.
    (tmp / "manifest.json").write_text(json.dumps(snap.manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    _fsync_tree(tmp)
    final = index_dir / name
    os.rename(tmp, final)
    switch(index_dir, name)
    _prune(index_dir, keep=max(1, keep))
    snap.path = final
    return final


def switch(index_dir: Path, name: str) -> None:
    """Make snapshot `name` live: CURRENT is replaced in one rename, never half-written."""
    pointer_tmp = index_dir / f".{CURRENT}.{uuid.uuid4().hex[:6]}"
    pointer_tmp.write_text(name, encoding="utf-8")
    with pointer_tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(pointer_tmp, index_dir / CURRENT)


@dataclass(frozen=True)
class SnapshotInfo:
    name: str
    created: str
    documents: int | None
    chunks: int | None
    live: bool
    problem: str | None = None  # why it cannot be loaded, when its manifest says so


def list_snapshots(index_dir: Path) -> list[SnapshotInfo]:
    """Finished snapshots, oldest first."""
    if not index_dir.is_dir():
        return []
    live = _safe_current(index_dir)
    out = []
    for folder in sorted(p for p in index_dir.iterdir() if p.is_dir() and p.name.startswith("v-")):
        try:
            m = read_manifest(folder)
            counts = m.get("counts") or {}
            out.append(SnapshotInfo(folder.name, str(m.get("created", "")),
                                    counts.get("documents", len(m.get("documents", {}))),
                                    counts.get("chunks"), folder.name == live))
        except IndexError_ as exc:
            out.append(SnapshotInfo(folder.name, "", None, None, folder.name == live, str(exc)))
    return out


def rollback(index_dir: Path, name: str | None = None) -> str:
    """Make an earlier snapshot live (default: the newest one older than the live one).

    The target is loaded in full first, so a rollback never switches to a broken snapshot."""
    snaps = [s for s in list_snapshots(index_dir) if s.problem is None]
    names = [s.name for s in snaps]
    live = _safe_current(index_dir)
    if name is None:
        older = [n for n in names if live is None or n < live]
        if not older:
            raise IndexError_(f"no earlier snapshot to roll back to in {index_dir} (see `rag index list`)")
        name = older[-1]
    elif name not in names:
        raise IndexError_(f"no usable snapshot {name!r} in {index_dir}; `rag index list` shows them")
    load_snapshot(index_dir / name)
    switch(index_dir, name)
    return name


def _prune(index_dir: Path, keep: int) -> None:
    """Drop unfinished snapshots and all but the newest `keep` finished ones (never the live one)."""
    live = _safe_current(index_dir)
    finished = sorted(p.name for p in index_dir.iterdir()
                      if p.is_dir() and p.name.startswith("v-") and (p / "manifest.json").exists())
    kept = set(finished[-keep:]) | ({live} if live else set())
    for child in index_dir.iterdir():
        if child.name in kept or child.name == CURRENT:
            continue
        if child.name.startswith(("v-", ".tmp-v-", f".{CURRENT}.")):
            shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as fh:
                os.fsync(fh.fileno())


def _chunk_json(c: Chunk) -> dict[str, Any]:
    return {"doc_id": c.doc_id, "chunk_id": c.chunk_id, "start": c.start, "end": c.end,
            "text": c.text, "title": c.title, "metadata": dict(c.metadata)}


def _chunk(d: dict[str, Any]) -> Chunk:
    return Chunk(**d)


class EmbeddedStore:
    """The Store role over one in-memory Snapshot: FAISS for dense, bm25s for lexical, fused here."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self._ruled: Ruled | None = None

    def ruled(self) -> Ruled:
        if self._ruled is None:
            snap = self.snapshot
            self._ruled = Ruled((d, snap.chunks[pos[0]].metadata, np.asarray(pos, dtype=np.int64))
                                for d, pos in snap.by_doc.items() if pos)
        return self._ruled

    def search(self, query: str, qvec: np.ndarray | None, n: int, *, mode: str, fusion: str, alpha: float,
               filters: Any = None) -> list[Candidate]:
        snap = self.snapshot
        if not snap.chunks:
            return []
        hidden = self.ruled().hidden_positions(filters.access if filters is not None else None)
        allowed = None
        if filters is not None and filters.active():
            allowed = np.array([i for i, c in enumerate(snap.chunks) if filters.allows(c.doc_id, c.metadata)],
                               dtype=np.int64)
            if len(allowed) == 0:
                return []
        dense = self._dense(qvec, n, allowed, hidden) if mode != "lexical" else {}
        lexical = self._lexical(query, n, allowed, hidden) if mode != "dense" else {}
        ranked = fuse(dense, lexical, mode=mode, fusion=fusion, alpha=alpha)
        return [Candidate(snap.chunks[pos], score, snap.vectors[pos]) for pos, score in ranked]

    def _dense(self, qvec: np.ndarray, n: int, allowed: np.ndarray | None, hidden: np.ndarray | None
               ) -> dict[int, float]:
        scores, ids = self.snapshot.dense.search(qvec[None, :], n, allowed, excluded=hidden)
        return {int(i): float(s) for s, i in zip(scores[0], ids[0]) if i >= 0}

    def _lexical(self, query: str, n: int, allowed: np.ndarray | None, hidden: np.ndarray | None
                 ) -> dict[int, float]:
        scores = self.snapshot.lexical.scores(query)
        if allowed is not None:
            masked = np.full_like(scores, -1.0)
            masked[allowed] = scores[allowed]
            scores = masked
        elif hidden is not None:
            scores = scores.copy()
            scores[hidden] = -1.0
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
        return {int(i): float(scores[i]) for i in top if scores[i] > 0}

    def document_ids(self) -> list[str]:
        return list(self.snapshot.by_doc)

    def document_chunks(self, doc_id: str) -> list[Chunk]:
        return [self.snapshot.chunks[p] for p in self.snapshot.by_doc.get(doc_id) or []]

    def counts(self) -> dict[str, int]:
        return {"documents": len(self.snapshot.documents), "chunks": len(self.snapshot.chunks)}

    @property
    def version(self) -> str:
        return str(self.snapshot.path)
