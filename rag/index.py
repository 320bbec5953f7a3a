"""Dense vector index on FAISS (the only module that imports faiss).

Exact inner-product search for small collections; past `ann_threshold` vectors an approximate index
(HNSW or IVF) is built, since exact search grows linearly with the archive.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import faiss
import numpy as np

from .errors import ConfigError, IndexError_

Kind = Literal["auto", "flat", "hnsw", "ivf"]


@dataclass(frozen=True)
class IndexParams:
    kind: Kind = "auto"
    ann_threshold: int = 50_000
    ann_kind: Literal["hnsw", "ivf"] = "hnsw"
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 64
    ivf_nlist: int | None = None  # default: about 4 * sqrt(n)
    ivf_nprobe: int = 16

    def resolve(self, n: int) -> str:
        if self.kind != "auto":
            return self.kind
        return self.ann_kind if n > self.ann_threshold else "flat"

    def to_json(self) -> dict:
        return asdict(self)


class FaissIndex:
    def __init__(self, index: "faiss.Index", kind: str, params: IndexParams) -> None:
        self._index = index
        self.kind = kind
        self.params = params
        self._apply_search_params()

    @classmethod
    def build(cls, vectors: np.ndarray, params: IndexParams = IndexParams(), dimension: int | None = None) -> "FaissIndex":
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise IndexError_(f"vectors must be 2-D, got shape {vectors.shape}")
        n, d = vectors.shape
        d = d or (dimension or 0)
        if d == 0:
            raise IndexError_("cannot build an index without a vector dimension")
        kind = params.resolve(n)
        if kind == "flat":
            index = faiss.IndexFlatIP(d)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = params.hnsw_ef_construction
        elif kind == "ivf":
            nlist = params.ivf_nlist or max(1, min(n // 39, int(4 * np.sqrt(max(n, 1)))))
            quantizer = faiss.IndexFlatIP(d)
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            sample = vectors if n <= nlist * 256 else vectors[np.random.default_rng(0).choice(n, nlist * 256, replace=False)]
            index.train(sample)
        else:
            raise ConfigError(f"unknown index kind {kind!r}; expected flat, hnsw or ivf")
        if n:
            index.add(vectors)
        return cls(index, kind, params)

    def _apply_search_params(self) -> None:
        if self.kind == "hnsw":
            faiss.downcast_index(self._index).hnsw.efSearch = self.params.hnsw_ef_search
        elif self.kind == "ivf":
            faiss.extract_index_ivf(self._index).nprobe = self.params.ivf_nprobe

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    def memory_bytes(self) -> int:
        return int(faiss.serialize_index(self._index).nbytes)

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, positions) per query; positions are -1 where fewer than k exist.

        `allowed` restricts the search to those positions (metadata filters).
        """
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = max(1, min(k, self.ntotal)) if self.ntotal else 0
        if k == 0 or (allowed is not None and len(allowed) == 0):
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        if allowed is None:
            return self._index.search(queries, k)
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        if self.kind == "hnsw":
            sp = faiss.SearchParametersHNSW(sel=selector, efSearch=self.params.hnsw_ef_search)
        elif self.kind == "ivf":
            sp = faiss.SearchParametersIVF(sel=selector, nprobe=self.params.ivf_nprobe)
        else:
            sp = faiss.SearchParameters(sel=selector)
        return self._index.search(queries, min(k, len(allowed)), params=sp)

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, kind: str, params: IndexParams) -> "FaissIndex":
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise IndexError_(f"cannot read vector index {path}: {exc}") from exc
        return cls(index, kind, params)
