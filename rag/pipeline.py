"""The engine's one entry point: CLI, UI, API and evaluation all go through Engine."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterable, Sequence

from . import store
from .chunking import ChunkingSettings
from .config import Settings, load_settings
from .embedding import Embedder, SentenceTransformerEmbedder
from .index import IndexParams
from .ingest import IngestReport, ingest
from .conversation import standalone_question
from .records import Hit, Turn
from .retrieval import Filters, Mode, Retriever


class Engine:
    """Holds the models and the index for a process; heavy loading happens on first use."""

    def __init__(self, settings: Settings | None = None, *, embedder: Embedder | None = None) -> None:
        self.settings = settings or load_settings()
        self._embedder = embedder
        self._retriever: Retriever | None = None
        self._lock = threading.RLock()

    # -- configuration -------------------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    self._embedder = SentenceTransformerEmbedder(
                        self.settings.embedder, batch_size=self.settings.embed_batch_size
                    )
        return self._embedder

    @property
    def chunking(self) -> ChunkingSettings:
        return ChunkingSettings(self.settings.chunk_tokens, self.settings.chunk_overlap)

    @property
    def index_params(self) -> IndexParams:
        s = self.settings
        return IndexParams(kind="auto", ann_threshold=s.ann_threshold, ann_kind=s.ann_kind, hnsw_m=s.hnsw_m,
                           hnsw_ef_construction=s.hnsw_ef_construction, hnsw_ef_search=s.hnsw_ef_search,
                           ivf_nprobe=s.ivf_nprobe)

    @property
    def index_dir(self) -> Path:
        return Path(self.settings.index_dir)

    # -- ingest --------------------------------------------------------------------------------
    def ingest(self, paths: Iterable[str | Path] | None = None, *, rebuild: bool = False,
               progress: bool = False) -> IngestReport:
        paths = list(paths) if paths else [self.settings.corpus_dir]
        with self._lock:
            report = ingest(paths, index_dir=self.index_dir, embedder=self.embedder, chunking=self.chunking,
                            params=self.index_params, rebuild=rebuild, progress=progress)
            self._retriever = None  # the next query sees the new snapshot
        return report

    # -- retrieval -----------------------------------------------------------------------------
    @property
    def retriever(self) -> Retriever:
        if self._retriever is None:
            with self._lock:
                if self._retriever is None:
                    snap = store.load(self.index_dir, self.index_params)
                    store.check_compatible(snap.manifest, embedder_id=self.embedder.id,
                                           chunking=self.chunking.to_json(), where=self.index_dir)
                    s = self.settings
                    self._retriever = Retriever(snap, self.embedder, mode=s.retrieval_mode, fusion=s.fusion,
                                                mmr_lambda=s.mmr_lambda, alpha=s.hybrid_alpha)
        return self._retriever

    def search(self, query: str, k: int | None = None, *, mode: Mode | None = None,
               filters: Filters | None = None) -> list[Hit]:
        return self.retriever.search(query, self.settings.top_k if k is None else k, mode=mode, filters=filters)

    def standalone_question(self, question: str, history: Sequence[Turn] = ()) -> str:
        return standalone_question(question, history)
