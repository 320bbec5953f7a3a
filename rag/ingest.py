"""Ingest: load, clean, chunk and embed what changed, then let the store apply the change at once.

The rules live here, once, for every store; a store's writer (the StoreWriter role in
rag/store/base.py) only stores what the plan decides:
- a document whose text is unchanged keeps its vectors (title and metadata come from the new load);
- documents already indexed but not in the given paths stay, unless `prune` (or a rebuild, which
  re-reads from the paths alone) removes them, and never more than `max_prune_share` of the index
  without `force`: a mistyped path must not empty an archive;
- a document whose file now fails to load keeps its previous version;
- paths with no loadable article raise NothingToIngest and change nothing.
New chunks are embedded in batches that go to the on-disk cache (rag/embedcache.py) at once, so a
rerun after a crash embeds only what the crashed run had not.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from .chunking import ChunkingSettings, chunk_document
from .embedcache import EmbedCache
from .embedding import Embedder
from .errors import IngestError
from .loaders import LoadResult, Problem, iter_documents
from .records import Chunk, Document

# Share of the index a --prune may remove without --force (settings: prune_max_share).
DEFAULT_MAX_PRUNE_SHARE = 0.25
EMBED_BATCH = 256  # chunks embedded and committed to the cache at a time


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
    left_out: dict[str, int] = field(default_factory=dict)  # items a format skips on purpose ("wxr draft post": 2)
    embargoed: dict[str, int] = field(default_factory=dict)  # ingested under embargo ("wxr future post": 1)
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    index_path: str = ""

    def summary(self) -> str:
        kept = f", {self.kept_not_given} kept" if self.kept_not_given else ""
        cached = f", {self.cached_chunks} from cache" if self.cached_chunks else ""
        text = (
            f"{self.documents} documents ({self.added} added, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.removed} removed{kept}), {self.chunks} chunks "
            f"({self.embedded_chunks} embedded{cached}), {len(self.problems)} skipped, {self.seconds:.1f}s"
        )
        if self.unsupported:
            kinds = ", ".join(f"{n} {ext}" for ext, n in sorted(self.unsupported.items()))
            text += f"; {sum(self.unsupported.values())} unsupported files ignored ({kinds})"
        if self.left_out:
            kinds = ", ".join(f"{n} {why}" for why, n in sorted(self.left_out.items()))
            text += f"; {sum(self.left_out.values())} items left out ({kinds})"
        if self.embargoed:
            kinds = ", ".join(f"{n} {why}" for why, n in sorted(self.embargoed.items()))
            text += f"; {sum(self.embargoed.values())} held under embargo ({kinds})"
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


@dataclass(frozen=True)
class Indexed:
    """What a store holds of a document: enough to tell whether a new load changed it."""

    hash: str
    source: str
    title: str
    metadata_json: str | None = None  # None where the store does not keep it (snapshot folders)


class Action(Enum):
    """What the plan asks a writer to do with a loaded document."""

    KEEP = "keep"  # text, title and metadata as stored: its rows may stay as they are
    REFRESH = "refresh"  # same text, new title or metadata: rows rewritten, vectors reused
    WRITE = "write"  # new or changed text: chunked and embedded (unchanged chunk texts reuse vectors)


def content_hash(doc: Document) -> str:
    return hashlib.sha256(doc.text.encode("utf-8")).hexdigest()


def metadata_json(metadata: Mapping[str, Any]) -> str:
    """Metadata as stored by the row stores (and compared to tell a metadata-only change)."""
    import json

    return json.dumps(dict(metadata), ensure_ascii=False, default=str, sort_keys=True)


def source_file(source: str) -> str:
    # .jsonl documents record "file:line"; problems name the file.
    head, _, tail = source.rpartition(":")
    return head if head and tail.isdigit() else source


@dataclass
class Plan:
    """The ingest's decisions, the same for every store. `previous`: the documents the archive held
    (what additions and removals are counted against); `restorable`: those whose stored rows the
    writer can keep (none for a snapshot-folder rebuild, which re-reads everything)."""

    previous: Mapping[str, Indexed]
    restorable: Container[str]
    rebuild: bool = False
    prune: bool = False
    force: bool = False
    max_prune_share: float = DEFAULT_MAX_PRUNE_SHARE

    def classify(self, doc: Document, digest: str, report: IngestReport) -> Action:
        """Count `doc` as unchanged, updated or added; what its writer must do."""
        prev = self.previous.get(doc.doc_id) if doc.doc_id in self.restorable else None
        same_text = prev is not None and prev.hash == digest and not self.rebuild
        if same_text:
            report.unchanged += 1
            same_rest = prev.title == doc.title and prev.metadata_json == metadata_json(doc.metadata)
            return Action.KEEP if same_rest else Action.REFRESH
        if doc.doc_id in self.previous:
            report.updated += 1
        else:
            report.added += 1
        return Action.WRITE

    def removals(self, given: set[str], loaded: LoadResult, report: IngestReport) -> tuple[list[str], list[str]]:
        """(kept, dropped): the indexed documents not in the given paths that stay, and those that go.
        Raises PruneRefused when the drop is not allowed."""
        failed_sources = {p.source for p in loaded.problems}
        kept: list[str] = []
        dropped: list[str] = []
        for doc_id, info in self.previous.items():
            if doc_id in given:
                continue
            failed = source_file(str(info.source)) in failed_sources
            if doc_id in self.restorable and (failed or not (self.prune or self.rebuild)):
                kept.append(doc_id)
                report.kept_after_error += failed
                report.kept_not_given += not failed
            else:
                dropped.append(doc_id)
        self._check(dropped, report)
        report.removed = len(dropped)
        return kept, dropped

    def _check(self, dropped: list[str], report: IngestReport) -> None:
        if not dropped:
            return
        n, total = len(dropped), len(self.previous)
        if not self.prune:  # only a rebuild gets here: it cannot keep what it does not re-read
            raise PruneRefused(
                f"--rebuild would drop {n} of {total} indexed documents that are not in the given paths "
                f"(e.g. {dropped[0]!r}); give all the paths, or add --prune to drop them; the index was not "
                f"changed", report)
        if n / total > self.max_prune_share and not self.force:
            raise PruneRefused(
                f"--prune would remove {n} of {total} documents ({n / total:.0%}, more than the allowed "
                f"{self.max_prune_share:.0%}, RAG_PRUNE_MAX_SHARE); check the paths, or add --force; the index "
                f"was not changed", report)


@dataclass
class Job:
    """What a writer needs from the run: the models and settings, the report it fills, and the
    shared embedding step (cache first, then the embedder, advancing the progress counter)."""

    embedder: Embedder
    chunking: ChunkingSettings
    rebuild: bool
    report: IngestReport
    bar: Any = None  # a tqdm counter of chunks embedded, or None
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def chunk(self, doc: Document) -> list[Chunk]:
        t = time.perf_counter()
        chunks = chunk_document(doc, self.embedder.count_tokens, self.embedder.token_offsets, self.chunking)
        self.timed("chunk", t)
        return chunks

    def embed(self, texts: Sequence[str], cache: EmbedCache | None) -> np.ndarray:
        """Vectors for `texts`: from the cache where it has them, else embedded (and cached)."""
        t = time.perf_counter()
        out = np.empty((len(texts), self.embedder.dimension), dtype=np.float32)
        missing = list(range(len(texts)))
        if cache is not None:
            missing = []
            for i, vec in enumerate(cache.get_many(texts)):
                if vec is None:
                    missing.append(i)
                else:
                    out[i] = vec
        self.report.embedded_chunks += len(missing)
        self.report.cached_chunks += len(texts) - len(missing)
        if self.bar is not None and missing:  # the counter's total grows by what each call embeds
            self.bar.total += len(missing)
            self.bar.delay = 0  # shown from the first chunk embedded on
            self.bar.refresh()
        for start in range(0, len(missing), EMBED_BATCH):
            rows = missing[start:start + EMBED_BATCH]
            batch = [texts[i] for i in rows]
            vectors = self.embedder.embed(batch)
            out[rows] = vectors
            if cache is not None:
                cache.put_many(batch, vectors)
            if self.bar is not None:
                self.bar.update(len(rows))
        self.timed("embed", t)
        return out

    def timed(self, stage: str, since: float) -> None:
        self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + time.perf_counter() - since


@dataclass(frozen=True)
class Written:
    """What a writer reports after it committed: the archive's size and where it lives."""

    documents: int
    chunks: int
    where: str


def ingest(paths: Iterable[str | Path], writer: Any, *, embedder: Embedder,
           chunking: ChunkingSettings = ChunkingSettings(), rebuild: bool = False, progress: bool = False,
           prune: bool = False, force: bool = False, max_prune_share: float = DEFAULT_MAX_PRUNE_SHARE,
           notify: Callable[[str], None] | None = None) -> IngestReport:
    """Add or update the documents found in `paths` in the store `writer` writes (a StoreWriter,
    rag/store/base.py; `rag.store.open_writer` opens the configured one). `notify` hears what will be
    removed before the change is committed."""
    t0 = time.perf_counter()
    report = IngestReport()
    paths = list(paths)
    if progress:  # the first line comes at once, before any file is read
        print(f"reading {', '.join(map(str, paths))} ...", file=sys.stderr, flush=True)
    docs_bar = embed_bar = None
    if progress:
        from tqdm import tqdm

        docs_bar = tqdm(desc="reading and chunking", unit="doc", mininterval=0.5)
        # The chunks to embed are known one document at a time: the counter's total grows as they
        # come, and it appears when the first embedding starts.
        embed_bar = tqdm(total=0, desc="embedding", unit="chunk", position=1, mininterval=0.5, delay=1e9)
    job = Job(embedder, chunking, rebuild, report, embed_bar)
    try:
        with writer:
            plan = Plan(*writer.begin(job), rebuild=rebuild, prune=prune, force=force,
                        max_prune_share=max_prune_share)
            loaded = LoadResult()
            given: set[str] = set()
            for doc in iter_documents(paths, loaded):
                given.add(doc.doc_id)
                digest = content_hash(doc)
                writer.put(doc, digest, plan.classify(doc, digest, report))
                if docs_bar is not None:
                    docs_bar.update()
            doc = None  # the last document's text is not needed while the writer finishes (a 50 MB file)
            report.problems, report.unsupported = loaded.problems, dict(loaded.unsupported)
            report.left_out, report.embargoed = dict(loaded.skipped), dict(loaded.embargoed)
            if not given:
                why = [f"{len(loaded.problems)} files skipped" if loaded.problems else "",
                       f"{loaded.unsupported_count} of an unsupported type" if loaded.unsupported else ""]
                why_text = "; ".join(w for w in why if w) or "no article files found"
                raise NothingToIngest(f"nothing to ingest in the given paths ({why_text}); the index was not "
                                      f"changed", report)
            kept, dropped = plan.removals(given, loaded, report)
            if dropped and notify:
                notify(f"removing {len(dropped)} of {len(plan.previous)} documents that are not in the given paths")
            written = writer.finish(kept, dropped)
    finally:
        for bar in (docs_bar, embed_bar):
            if bar is not None:
                bar.close()
    report.stage_seconds.update(job.stage_seconds)
    report.documents, report.chunks, report.index_path = written.documents, written.chunks, written.where
    report.seconds = time.perf_counter() - t0
    return report
