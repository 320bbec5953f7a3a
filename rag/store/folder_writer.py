"""The snapshot folder's writer: each ingest writes a whole new snapshot and switches CURRENT to it.

Unchanged documents' chunks and vectors are copied from the live snapshot; only new text is
embedded. Documents are read, chunked and dropped one at a time: only their chunks stay in memory.
"""

from __future__ import annotations

import time
from collections.abc import Container, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType

import numpy as np

from ..embedcache import EmbedCache
from ..errors import IndexError_
from ..index import FaissIndex, IndexParams
from ..ingest import Action, Indexed, Job, Written
from ..lexical import LexicalIndex
from ..records import Chunk, Document
from . import embedded
from .embedded import DEFAULT_KEEP, Snapshot


class FolderWriter(AbstractContextManager):
    def __init__(self, index_dir: Path, *, params: IndexParams = IndexParams(), keep: int = DEFAULT_KEEP,
                 use_cache: bool = True) -> None:
        self.index_dir = Path(index_dir)
        self.params = params
        self.keep = keep
        self.use_cache = use_cache
        self.old: Snapshot | None = None
        self.cache: EmbedCache | None = None
        self.chunks: list[Chunk] = []
        # Per document in order: a block of reused vectors, or the count of new chunks to embed.
        self.blocks: list[np.ndarray | int] = []
        self.documents: dict[str, dict] = {}
        self.to_embed: list[Chunk] = []

    def begin(self, job: Job) -> tuple[Mapping[str, Indexed], Container[str]]:
        self.job, self.t0 = job, time.perf_counter()
        previous: dict[str, dict] = {}
        if not job.rebuild and embedded.current_path(self.index_dir) is not None:
            self.old = embedded.load(self.index_dir)
            embedded.check_compatible(self.old.manifest, embedder_id=job.embedder.id,
                                      chunking=job.chunking.to_json(), where=self.index_dir)
            previous = self.old.documents
        elif job.rebuild:
            previous = previous_documents(self.index_dir)
        indexed = {k: Indexed(v["hash"], str(v.get("source", "")), v.get("title", "")) for k, v in previous.items()}
        return indexed, (self.old.documents if self.old else {})

    def put(self, doc: Document, digest: str, action: Action) -> None:
        if action is Action.WRITE:
            new = self.job.chunk(doc)
            self.chunks.extend(new)
            self.to_embed.extend(new)
            self.blocks.append(len(new))
        else:  # the text is unchanged: its vectors stay, title and metadata come from the new load
            positions = self.old.by_doc.get(doc.doc_id, [])
            self.chunks.extend(_refresh(self.old.chunks[p], doc) for p in positions)
            self.blocks.append(self.old.vectors[positions])
        self.documents[doc.doc_id] = {"hash": digest, "source": doc.source, "title": doc.title}

    def finish(self, kept: Sequence[str], dropped: Sequence[str]) -> Written:
        self.job.timed("load+chunk", self.t0)
        for doc_id in kept:
            positions = self.old.by_doc.get(doc_id, [])
            self.chunks.extend(self.old.chunks[p] for p in positions)
            self.blocks.append(self.old.vectors[positions])
            self.documents[doc_id] = self.old.documents[doc_id]
        if self.use_cache:  # opened only now: an ingest that stops early leaves no folder behind
            self.cache = EmbedCache(self.index_dir, self.job.embedder.id, self.job.embedder.dimension)
        fresh = self.job.embed([c.text for c in self.to_embed], self.cache) if self.to_embed else None
        dim = self.job.embedder.dimension
        matrix = _assemble(self.blocks, fresh, len(self.chunks), dim)
        self.blocks, self.to_embed = [], []  # the matrix holds them now; a 50 MB file's vectors are 200 MB a copy
        t = time.perf_counter()
        lexical = LexicalIndex.build(_lexical_text(c) for c in self.chunks)
        dense = FaissIndex.build(matrix, self.params, dimension=dim)
        manifest = embedded.build_manifest(embedder_id=self.job.embedder.id, dimension=dim,
                                           chunking=self.job.chunking.to_json(), index=dense, documents=self.documents)
        manifest["counts"] = {"documents": len(self.documents), "chunks": len(self.chunks)}
        path = embedded.save(self.index_dir, Snapshot(manifest, self.chunks, matrix, dense, lexical), keep=self.keep)
        self.job.timed("index", t)
        if self.cache is not None:  # the live snapshot holds these vectors now; the cache keeps only its own
            self.cache.keep_only(c.text for c in self.chunks)
        return Written(len(self.documents), len(self.chunks), str(path))

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # Nothing is live before `finish` switches CURRENT: leaving early changes nothing.
        if self.cache is not None:
            self.cache.close()


def previous_documents(index_dir: Path) -> dict[str, dict]:
    """The live index's document list for a rebuild's removal check. When CURRENT is unreadable, the
    newest snapshot that has a readable manifest stands in; none at all if nothing can be read (a
    rebuild is how a broken index is repaired, so it must not need the old one)."""
    try:
        path = embedded.current_path(index_dir)
        return embedded.read_manifest(path).get("documents", {}) if path else {}
    except IndexError_:
        pass
    for snap in reversed(embedded.list_snapshots(index_dir)):
        if snap.problem is None:
            try:
                return embedded.read_manifest(index_dir / snap.name).get("documents", {})
            except IndexError_:
                continue
    return {}


def _lexical_text(chunk: Chunk) -> str:
    # The title names who and what the article is about; passages often say only "he".
    return f"{chunk.title}\n{chunk.text}" if chunk.title else chunk.text


def _refresh(chunk: Chunk, doc: Document) -> Chunk:
    return Chunk(chunk.doc_id, chunk.chunk_id, chunk.start, chunk.end, chunk.text, doc.title, doc.metadata)


def _assemble(blocks: list, fresh: np.ndarray | None, n_chunks: int, dim: int) -> np.ndarray:
    """Stack reused vector blocks and freshly embedded ones (ints mark how many) in chunk order."""
    if fresh is not None and len(fresh) == n_chunks and all(isinstance(b, int) for b in blocks):
        return fresh  # everything new (a first ingest, a rebuild): no copy of what may be the largest array
    out: list[np.ndarray] = []
    cursor = 0
    for block in blocks:
        if isinstance(block, int):
            out.append(fresh[cursor:cursor + block])
            cursor += block
        else:
            out.append(block)
    matrix = np.concatenate(out) if out else np.zeros((0, dim), dtype=np.float32)
    if len(matrix) != n_chunks:
        raise IndexError_(f"internal error: {len(matrix)} vectors for {n_chunks} chunks")
    return np.ascontiguousarray(matrix, dtype=np.float32)
