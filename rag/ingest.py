"""Ingest: load, clean, chunk, embed only what changed, and switch the index atomically."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from . import store
from .chunking import ChunkingSettings, chunk_document
from .embedding import Embedder
from .errors import IndexError_
from .index import FaissIndex, IndexParams
from .lexical import LexicalIndex
from .loaders import Problem, load_paths
from .records import Chunk, Document


@dataclass
class IngestReport:
    documents: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    kept_after_error: int = 0
    chunks: int = 0
    embedded_chunks: int = 0
    problems: list[Problem] = field(default_factory=list)
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    index_path: str = ""

    def summary(self) -> str:
        return (
            f"{self.documents} documents ({self.added} added, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.removed} removed), {self.chunks} chunks "
            f"({self.embedded_chunks} embedded), {len(self.problems)} skipped, {self.seconds:.1f}s"
        )


def content_hash(doc: Document) -> str:
    return hashlib.sha256(doc.text.encode("utf-8")).hexdigest()


def ingest(
    paths: Iterable[str | Path],
    *,
    index_dir: Path,
    embedder: Embedder,
    chunking: ChunkingSettings = ChunkingSettings(),
    params: IndexParams = IndexParams(),
    rebuild: bool = False,
    progress: bool = False,
) -> IngestReport:
    """Make the index at `index_dir` hold exactly the documents found in `paths`.

    Documents whose text is unchanged keep their vectors; a document whose file now fails to load
    keeps its previous version, so bad input never loses what the index had.
    """
    t0 = time.perf_counter()
    report = IngestReport()
    loaded = load_paths(paths)
    report.problems = loaded.problems
    report.stage_seconds["load+clean"] = time.perf_counter() - t0

    old = None
    if not rebuild and store.current_path(index_dir) is not None:
        old = store.load(index_dir)
        store.check_compatible(old.manifest, embedder_id=embedder.id, chunking=chunking.to_json(), where=index_dir)

    chunks: list[Chunk] = []
    vectors: list[np.ndarray] = []
    documents: dict[str, dict] = {}
    to_embed: list[Chunk] = []

    t = time.perf_counter()
    for doc in loaded.documents:
        digest = content_hash(doc)
        prev = old.documents.get(doc.doc_id) if old else None
        if prev and prev["hash"] == digest:
            positions = old.by_doc.get(doc.doc_id, [])
            # Text unchanged: reuse vectors, but take title and metadata from the new load.
            chunks.extend(_refresh(old.chunks[p], doc) for p in positions)
            vectors.append(old.vectors[positions])
            report.unchanged += 1
        else:
            new = chunk_document(doc, embedder.count_tokens, embedder.token_offsets, chunking)
            chunks.extend(new)
            to_embed.extend(new)
            vectors.append(len(new))  # type: ignore[arg-type] # a count: filled after embedding
            report.updated += bool(prev)
            report.added += not prev
        documents[doc.doc_id] = {"hash": digest, "source": doc.source, "title": doc.title}
    report.stage_seconds["chunk"] = time.perf_counter() - t

    if old:
        failed_sources = {p.source for p in loaded.problems}
        for doc_id, info in old.documents.items():
            if doc_id in documents:
                continue
            if _source_file(info["source"]) in failed_sources:
                positions = old.by_doc.get(doc_id, [])
                chunks.extend(old.chunks[p] for p in positions)
                vectors.append(old.vectors[positions])
                documents[doc_id] = info
                report.kept_after_error += 1
            else:
                report.removed += 1

    t = time.perf_counter()
    fresh = embedder.embed([c.text for c in to_embed], progress=progress) if to_embed else None
    report.stage_seconds["embed"] = time.perf_counter() - t
    report.embedded_chunks = len(to_embed)

    dim = embedder.dimension
    matrix = _assemble(vectors, fresh, len(chunks), dim)
    t = time.perf_counter()
    dense = FaissIndex.build(matrix, params, dimension=dim)
    lexical = LexicalIndex.build([_lexical_text(c) for c in chunks])
    manifest = store.build_manifest(embedder_id=embedder.id, dimension=dim, chunking=chunking.to_json(),
                                    index=dense, documents=documents)
    manifest["counts"] = {"documents": len(documents), "chunks": len(chunks)}
    path = store.save(index_dir, store.Snapshot(manifest, chunks, matrix, dense, lexical))
    report.stage_seconds["index"] = time.perf_counter() - t

    report.documents = len(documents)
    report.chunks = len(chunks)
    report.index_path = str(path)
    report.seconds = time.perf_counter() - t0
    return report


def _lexical_text(chunk: Chunk) -> str:
    # The title names who and what the article is about; passages often say only "he".
    return f"{chunk.title}\n{chunk.text}" if chunk.title else chunk.text


def _refresh(chunk: Chunk, doc: Document) -> Chunk:
    return Chunk(chunk.doc_id, chunk.chunk_id, chunk.start, chunk.end, chunk.text, doc.title, doc.metadata)


def _source_file(source: str) -> str:
    # .jsonl documents record "file:line"; problems name the file.
    head, _, tail = source.rpartition(":")
    return head if head and tail.isdigit() else source


def _assemble(parts: list, fresh: np.ndarray | None, n_chunks: int, dim: int) -> np.ndarray:
    """Stack reused vector blocks and freshly embedded ones (ints mark how many) in chunk order."""
    out: list[np.ndarray] = []
    cursor = 0
    for part in parts:
        if isinstance(part, int):
            out.append(fresh[cursor:cursor + part])
            cursor += part
        else:
            out.append(part)
    matrix = np.concatenate(out) if out else np.zeros((0, dim), dtype=np.float32)
    if len(matrix) != n_chunks:
        raise IndexError_(f"internal error: {len(matrix)} vectors for {n_chunks} chunks")
    return np.ascontiguousarray(matrix, dtype=np.float32)
