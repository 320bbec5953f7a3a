"""Ingest: load, clean, chunk, embed only what changed, and switch the index atomically."""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from . import store
from .embedcache import EmbedCache
from .chunking import ChunkingSettings, chunk_document
from .embedding import Embedder
from .errors import IndexError_, IngestError
from .index import FaissIndex, IndexParams
from .lexical import LexicalIndex
from .loaders import LoadResult, Problem, iter_documents
from .records import Chunk, Document

# Share of the index a --prune may remove without --force (settings: prune_max_share).
DEFAULT_MAX_PRUNE_SHARE = 0.25


@dataclass
class IngestReport:
    documents: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    kept_after_error: int = 0
    kept_not_given: int = 0  # in the index, not in the given paths, kept (no --prune)
    chunks: int = 0
    embedded_chunks: int = 0
    cached_chunks: int = 0  # new chunks whose vectors came from the on-disk cache
    problems: list[Problem] = field(default_factory=list)
    unsupported: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    index_path: str = ""

    def summary(self) -> str:
        kept = f", {self.kept_not_given} kept" if self.kept_not_given else ""
        text = (
            f"{self.documents} documents ({self.added} added, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.removed} removed{kept}), {self.chunks} chunks "
            f"({self.embedded_chunks} embedded{f', {self.cached_chunks} from cache' if self.cached_chunks else ''}), "
            f"{len(self.problems)} skipped, {self.seconds:.1f}s"
        )
        if self.unsupported:
            kinds = ", ".join(f"{n} {ext}" for ext, n in sorted(self.unsupported.items()))
            text += f"; {sum(self.unsupported.values())} unsupported files ignored ({kinds})"
        return text


class NothingToIngest(IngestError):
    """The given paths hold no loadable article: the index is left as it was."""

    def __init__(self, message: str, report: IngestReport) -> None:
        super().__init__(message)
        self.report = report


class PruneRefused(IngestError):
    """A prune or rebuild would remove documents it was not allowed to."""

    def __init__(self, message: str, report: IngestReport) -> None:
        super().__init__(message)
        self.report = report


def content_hash(doc: Document) -> str:
    return hashlib.sha256(doc.text.encode("utf-8")).hexdigest()


def count_change(report: IngestReport, prev: tuple | None, digest: str, doc: Document, meta_json: str, *,
                 rebuild: bool, known: bool) -> bool:
    """Count `doc` as unchanged, updated or added (the row stores' ingests); False when its rows stay
    as they are. `prev` is the indexed copy's (hash, _, title, metadata JSON), `known` whether the
    archive held the document before."""
    same_text = prev is not None and prev[0] == digest and not rebuild
    if same_text and prev[2] == doc.title and prev[3] == meta_json:
        report.unchanged += 1
        return False
    if same_text:
        report.unchanged += 1  # title or metadata changed: rows rewritten, vectors reused
    elif known:
        report.updated += 1
    else:
        report.added += 1
    return True


def ingest(
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
    keep_snapshots: int = store.DEFAULT_KEEP,
    notify: Callable[[str], None] | None = None,
    use_cache: bool = True,
    backend: str | None = "auto",
) -> IngestReport:
    """Add or update the documents found in `paths` in the index at `index_dir`.

    Documents already indexed but not in `paths` stay, unless `prune` is set: then they are removed,
    but never more than `max_prune_share` of the index without `force` (a mistyped path must not
    empty an archive). A rebuild re-embeds from the paths alone and so obeys the same rule. Texts
    unchanged keep their vectors; a document whose file now fails to load keeps its previous
    version. Paths with no loadable article raise NothingToIngest and change nothing.
    `notify` hears what will be removed before the new snapshot is switched in. New chunks are
    embedded in batches that go to the on-disk cache (rag/embedcache.py) at once, so a rerun after
    a crash embeds only what the crashed run had not.
    `backend` "disk" writes the disk store (rag/store/disk_ingest.py, same rules), "folder" snapshot
    folders (below); "auto" or None: a folder index found in index_dir stays one, else the disk store.
    """
    if store._disk(index_dir, backend):
        from .store.disk_ingest import ingest_disk

        return ingest_disk(paths, index_dir=index_dir, embedder=embedder, chunking=chunking, params=params,
                           rebuild=rebuild, progress=progress, prune=prune, force=force,
                           max_prune_share=max_prune_share, keep_snapshots=keep_snapshots, notify=notify,
                           use_cache=use_cache)
    t0 = time.perf_counter()
    report = IngestReport()
    paths = list(paths)
    if progress:  # the first line comes at once, before any file is read
        print(f"reading {', '.join(map(str, paths))} ...", file=sys.stderr, flush=True)
    loaded = LoadResult()
    old = None
    old_documents: dict[str, dict] = {}
    if not rebuild and store.current_path(index_dir) is not None:
        old = store.load(index_dir)
        store.check_compatible(old.manifest, embedder_id=embedder.id, chunking=chunking.to_json(), where=index_dir)
        old_documents = old.documents
    elif rebuild:
        old_documents = _previous_documents(index_dir)

    chunks: list[Chunk] = []
    vectors: list[np.ndarray] = []
    documents: dict[str, dict] = {}
    to_embed: list[Chunk] = []

    # Documents are read, chunked and dropped one file at a time: only their chunks stay in memory.
    docs: Iterable[Document] = iter_documents(paths, loaded)
    if progress:
        from tqdm import tqdm

        docs = tqdm(docs, desc="reading and chunking", unit="doc", mininterval=0.5)
    n_loaded = 0
    for doc in docs:
        n_loaded += 1
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
            was_there = bool(prev) or doc.doc_id in old_documents
            report.updated += was_there
            report.added += not was_there
        documents[doc.doc_id] = {"hash": digest, "source": doc.source, "title": doc.title}
    doc = docs = None  # the last document's text is not needed any more
    report.problems = loaded.problems
    report.unsupported = dict(loaded.unsupported)
    report.stage_seconds["load+chunk"] = time.perf_counter() - t0
    if not n_loaded:
        why = [f"{len(loaded.problems)} files skipped" if loaded.problems else "",
               f"{loaded.unsupported_count} of an unsupported type" if loaded.unsupported else ""]
        why_text = "; ".join(w for w in why if w) or "no article files found"
        raise NothingToIngest(f"nothing to ingest in the given paths ({why_text}); the index was not changed", report)

    failed_sources = {p.source for p in loaded.problems}
    dropped: list[str] = []
    for doc_id, info in old_documents.items():
        if doc_id in documents:
            continue
        failed = _source_file(str(info.get("source", ""))) in failed_sources
        if old is not None and (failed or not prune):
            positions = old.by_doc.get(doc_id, [])
            chunks.extend(old.chunks[p] for p in positions)
            vectors.append(old.vectors[positions])
            documents[doc_id] = info
            if failed:
                report.kept_after_error += 1
            else:
                report.kept_not_given += 1
        else:
            dropped.append(doc_id)
    _check_removal(dropped, old_documents, report, prune=prune, force=force, rebuild=rebuild,
                   max_share=max_prune_share)
    report.removed = len(dropped)
    if dropped and notify:
        notify(f"removing {len(dropped)} of {len(old_documents)} documents that are not in the given paths")

    t = time.perf_counter()
    cache = EmbedCache(index_dir, embedder.id, embedder.dimension) if use_cache else None
    fresh = _embed(to_embed, embedder, cache, report, progress) if to_embed else None
    report.stage_seconds["embed"] = time.perf_counter() - t

    dim = embedder.dimension
    matrix = _assemble(vectors, fresh, len(chunks), dim)
    del vectors, fresh, to_embed  # the matrix holds them now; a 50 MB file's vectors are 200 MB a copy
    t = time.perf_counter()
    lexical = LexicalIndex.build(_lexical_text(c) for c in chunks)
    dense = FaissIndex.build(matrix, params, dimension=dim)
    manifest = store.build_manifest(embedder_id=embedder.id, dimension=dim, chunking=chunking.to_json(),
                                    index=dense, documents=documents)
    manifest["counts"] = {"documents": len(documents), "chunks": len(chunks)}
    path = store.save(index_dir, store.Snapshot(manifest, chunks, matrix, dense, lexical), keep=keep_snapshots)
    report.stage_seconds["index"] = time.perf_counter() - t
    if cache is not None:  # the live snapshot holds these vectors now; the cache keeps only its own
        cache.keep_only(c.text for c in chunks)
        cache.close()

    report.documents = len(documents)
    report.chunks = len(chunks)
    report.index_path = str(path)
    report.seconds = time.perf_counter() - t0
    return report


EMBED_BATCH = 256  # chunks embedded and committed to the cache at a time


def _embed(chunks: list[Chunk], embedder: Embedder, cache: EmbedCache | None, report: IngestReport,
           progress: bool, bar=None) -> np.ndarray:  # noqa: ANN001 - bar: a caller's tqdm counter to advance
    texts = [c.text for c in chunks]
    out = np.empty((len(texts), embedder.dimension), dtype=np.float32)
    missing = list(range(len(texts)))
    if cache is not None:
        missing = []
        for i, vec in enumerate(cache.get_many(texts)):
            if vec is None:
                missing.append(i)
            else:
                out[i] = vec
    report.embedded_chunks = len(missing)
    report.cached_chunks = len(texts) - len(missing)
    own_bar = progress and missing and bar is None
    if own_bar:
        from tqdm import tqdm

        bar = tqdm(total=len(missing), desc="embedding", unit="chunk", initial=0)
    elif bar is not None and missing:  # a shared counter: its total grows by what this call embeds
        bar.total += len(missing)
        bar.delay = 0  # shown from the first chunk embedded on (the caller may have held it back)
        bar.refresh()
    for start in range(0, len(missing), EMBED_BATCH):
        rows = missing[start:start + EMBED_BATCH]
        batch = [texts[i] for i in rows]
        vectors = embedder.embed(batch)
        out[rows] = vectors
        if cache is not None:
            cache.put_many(batch, vectors)
        if bar is not None:
            bar.update(len(rows))
    if own_bar:
        bar.close()
    return out


def _previous_documents(index_dir: Path) -> dict[str, dict]:
    """The live index's document list for a rebuild's removal check. When CURRENT is unreadable, the
    newest snapshot that has a readable manifest stands in; none at all if nothing can be read (a
    rebuild is how a broken index is repaired, so it must not need the old one)."""
    try:
        path = store.current_path(index_dir)
        return store.read_manifest(path).get("documents", {}) if path else {}
    except IndexError_:
        pass
    for snap in reversed(store.list_snapshots(index_dir)):
        if snap.problem is None:
            try:
                return store.read_manifest(index_dir / snap.name).get("documents", {})
            except IndexError_:
                continue
    return {}


def _check_removal(dropped: list[str], old_documents: dict, report: IngestReport, *, prune: bool, force: bool,
                   rebuild: bool, max_share: float) -> None:
    if not dropped:
        return
    n, total = len(dropped), len(old_documents)
    if not prune:  # only a rebuild gets here: it cannot keep what it does not re-read
        raise PruneRefused(
            f"--rebuild would drop {n} of {total} indexed documents that are not in the given paths "
            f"(e.g. {dropped[0]!r}); give all the paths, or add --prune to drop them; the index was not changed",
            report)
    if n / total > max_share and not force:
        raise PruneRefused(
            f"--prune would remove {n} of {total} documents ({n / total:.0%}, more than the allowed "
            f"{max_share:.0%}, RAG_PRUNE_MAX_SHARE); check the paths, or add --force; the index was not changed",
            report)


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
    if fresh is not None and len(fresh) == n_chunks and all(isinstance(p, int) for p in parts):
        return fresh  # everything new (a first ingest, a rebuild): no copy of what may be the largest array
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
