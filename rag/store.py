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

from .errors import IndexError_, IndexMismatchError
from .index import FaissIndex, IndexParams
from .lexical import TOKENIZER_VERSION, LexicalIndex
from .records import Chunk

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
    """Refuse to mix vectors or chunks made with other settings: say how to rebuild."""
    built = manifest.get("embedder", {}).get("id")
    if built != embedder_id:
        raise IndexMismatchError(
            f"the index at {where} was built with embedder {built!r}, but the configured embedder is "
            f"{embedder_id!r}; rebuild it with `rag ingest --rebuild`"
        )
    if manifest.get("chunking") != chunking:
        raise IndexMismatchError(
            f"the index at {where} was built with chunking {manifest.get('chunking')}, but the "
            f"configured chunking is {chunking}; rebuild it with `rag ingest --rebuild`"
        )
    if manifest.get("lexical", {}).get("tokenizer") != TOKENIZER_VERSION:
        raise IndexMismatchError(f"the index at {where} uses an old lexical tokenizer; rebuild it with `rag ingest --rebuild`")


def current_path(index_dir: Path) -> Path | None:
    pointer = index_dir / CURRENT
    if not pointer.exists():
        return None
    name = pointer.read_text().strip()
    path = index_dir / name
    if not name or not path.is_dir():
        raise IndexError_(f"{pointer} names {name!r}, which is not a snapshot folder; rebuild with `rag ingest --rebuild`")
    return path


def load(index_dir: Path, params: IndexParams | None = None) -> Snapshot:
    path = current_path(index_dir)
    if path is None:
        raise IndexError_(f"no index at {index_dir}; build one with `rag ingest`")
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexMismatchError(
                f"the index at {index_dir} has format {manifest.get('format_version')}, this version "
                f"reads {FORMAT_VERSION}; rebuild it with `rag ingest --rebuild`"
            )
        chunks = [_chunk(json.loads(line)) for line in (path / "chunks.jsonl").open(encoding="utf-8")]
        vectors = np.load(path / "vectors.npy")
        stored = IndexParams(**manifest["index"]["params"])
        if params is not None:  # search-time knobs may change without a rebuild
            stored = IndexParams(**{**stored.to_json(), "hnsw_ef_search": params.hnsw_ef_search,
                                    "ivf_nprobe": params.ivf_nprobe})
        dense = FaissIndex.load(path / "dense.faiss", manifest["index"]["kind"], stored)
        lexical = LexicalIndex.load(path / "lexical")
    except (OSError, ValueError, KeyError) as exc:
        raise IndexError_(f"the index at {path} is unreadable ({exc}); rebuild it with `rag ingest --rebuild`") from exc
    if not (len(chunks) == len(vectors) == dense.ntotal == lexical.size):
        raise IndexError_(f"the index at {path} is inconsistent; rebuild it with `rag ingest --rebuild`")
    return Snapshot(manifest, chunks, vectors, dense, lexical, path)


def save(index_dir: Path, snap: Snapshot) -> Path:
    """Write `snap` as a new snapshot and make it live; returns its folder."""
    index_dir.mkdir(parents=True, exist_ok=True)
    pointer = index_dir / CURRENT
    previous = pointer.read_text().strip() if pointer.exists() else ""
    name = f"v-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"
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
    pointer_tmp = index_dir / f".{CURRENT}.{uuid.uuid4().hex[:6]}"
    pointer_tmp.write_text(name)
    os.replace(pointer_tmp, index_dir / CURRENT)
    _prune(index_dir, keep={name, previous})
    snap.path = final
    return final


def _prune(index_dir: Path, keep: set[str]) -> None:
    """Drop unfinished and superseded snapshots, keeping the live one and the one before it."""
    for child in index_dir.iterdir():
        if child.name in keep or child.name == CURRENT:
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
