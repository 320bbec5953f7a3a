"""Dense vector index on FAISS (the only module that imports faiss).

Exact inner-product search for small collections; past `ann_threshold` vectors an approximate index
(IVF by default, or HNSW) is built, since exact search grows linearly with the archive.

Defaults come from eval/bench/scale.py (figures in eval/SCALE.md): on the 2-core reference machine
an IVF-Flat index with about 2*sqrt(n) lists, probing 32 of them, answers one query in about 4 ms
at 1M chunks with recall@10 of 0.97 against exact search (exact: over 200 ms), and builds in one to
three minutes; HNSW searches as fast but its build, about a minute at 100k, would take well over ten
at 1M on 2 cores.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import faiss
import numpy as np

from .errors import ConfigError, IndexError_

Kind = Literal["auto", "flat", "hnsw", "ivf"]

# Flat and HNSW: a filter that keeps at most this many chunks is answered exactly, scoring just those
# vectors, so a narrow filter never starves the HNSW graph (nor scans all of a flat index). IVF
# instead probes more lists the narrower the filter (nprobe * total / allowed), which covers every
# list, and so is exact, once a filter keeps fewer than nprobe * total / nlist chunks.
EXACT_FILTER_MAX = 20_000
# IVF k-means: training points per list and iterations (build time grows with both).
IVF_TRAIN_POINTS_PER_LIST = 64
IVF_TRAIN_ITERATIONS = 10
_HNSW_FILTER_EF_MAX = 1024
# A user request searches one query: run it on this many OpenMP threads (None: faiss' default, one
# per core). On a small machine shared with the embedder and other requests, faiss' parallel loops
# wait on descheduled threads: exact search over 10k vectors took 16 ms with 2 threads and 0.8 ms
# with 1 on the 2-core reference machine under load. Batches of queries keep every thread.
SINGLE_QUERY_THREADS: int | None = 1
_FEW_QUERIES = 4


@dataclass(frozen=True)
class IndexParams:
    kind: Kind = "auto"
    ann_threshold: int = 50_000
    ann_kind: Literal["hnsw", "ivf"] = "ivf"
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 128
    ivf_nlist: int | None = None  # default: about 2 * sqrt(n) (see default_nlist)
    ivf_nprobe: int = 32

    def resolve(self, n: int) -> str:
        if self.kind != "auto":
            return self.kind
        return self.ann_kind if n > self.ann_threshold else "flat"

    def to_json(self) -> dict:
        return asdict(self)


def default_nlist(n: int) -> int:
    """IVF lists for n vectors: about 2*sqrt(n), and at least 39 vectors per list to train on."""
    return max(1, min(n // 39, int(round(2 * math.sqrt(max(n, 1))))))


class _Sized:
    """What both index wrappers tell of the FAISS index they hold in `_index`."""

    _index: faiss.Index

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self._index.d)


class FaissIndex(_Sized):
    def __init__(self, index: faiss.Index, kind: str, params: IndexParams) -> None:
        self._index = index
        self.kind = kind
        self.params = params
        self._apply_search_params()

    @classmethod
    def build(cls, vectors: np.ndarray, params: IndexParams = IndexParams(),
              dimension: int | None = None) -> FaissIndex:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim == 1 and vectors.size == 0 and dimension:
            vectors = vectors.reshape(0, dimension)
        if vectors.ndim != 2:
            raise IndexError_(f"vectors must be 2-D, got shape {vectors.shape}")
        vectors = np.ascontiguousarray(vectors)
        n, d = vectors.shape
        d = d or (dimension or 0)
        if d == 0:
            raise IndexError_("cannot build an index without a vector dimension")
        if dimension and d != dimension:
            raise IndexError_(f"vectors have dimension {d}, expected {dimension}")
        kind = params.resolve(n)
        if kind == "ivf" and n == 0:
            kind = "flat"  # k-means needs points; an empty index is exact either way
        if kind == "flat":
            index = faiss.IndexFlatIP(d)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = params.hnsw_ef_construction
        elif kind == "ivf":
            index = _train_ivf(vectors, params)
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

    def memory_bytes(self) -> int:
        """Bytes the index holds in memory (vectors, graph links or lists), without copying it."""
        index = faiss.downcast_index(self._index)
        n, d = self.ntotal, self.dimension
        if isinstance(index, faiss.IndexFlat):
            return n * d * 4
        if isinstance(index, faiss.IndexHNSW):
            hnsw = index.hnsw
            return (n * d * 4 + hnsw.neighbors.size() * 4 + hnsw.levels.size() * 4
                    + hnsw.offsets.size() * 8 + hnsw.assign_probas.size() * 8)
        if isinstance(index, faiss.IndexIVF):
            lists = index.invlists
            entries = sum(lists.list_size(i) for i in range(lists.nlist))
            direct_map = n * 8 if index.direct_map.type != faiss.DirectMap.NoMap else 0
            return entries * (index.code_size + 8) + index.nlist * d * 4 + direct_map
        return int(faiss.serialize_index(self._index).nbytes)  # unknown kind: measure the hard way

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None, *,
               excluded: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, positions) per query; positions are -1 where fewer than k exist.

        `allowed` restricts the search to those positions (metadata filters); an empty `allowed`
        gives an empty result. `excluded` (when `allowed` is None): positions never returned, the
        few an Access hides (cheaper than listing the many allowed). Narrow filters are searched
        exactly (see EXACT_FILTER_MAX); wider ones search the approximate index more widely, in
        proportion to how much the filter removes.
        One query (a user request) runs on SINGLE_QUERY_THREADS OpenMP threads.
        """
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if queries.shape[1] != self.dimension:
            raise IndexError_(f"query vectors have dimension {queries.shape[1]}, the index has {self.dimension}")
        with _omp_threads(SINGLE_QUERY_THREADS if len(queries) <= _FEW_QUERIES else None):
            if allowed is None and excluded is not None and len(excluded):
                return self._search_excluding(queries, k, np.ascontiguousarray(excluded, dtype=np.int64))
            return self._search(queries, k, allowed)

    def _search_excluding(self, queries: np.ndarray, k: int, excluded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        left = self.ntotal - len(excluded)
        if left <= 0 or k < 1:
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        k = min(k, left)
        sp = _filtered_params(self._index, self.kind, _excluding(excluded), self.ntotal / left, k,
                              nprobe=self.params.ivf_nprobe, ef=self.params.hnsw_ef_search)
        return self._index.search(queries, k, params=sp)

    def _search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        k = max(1, min(k, self.ntotal)) if self.ntotal else 0
        if allowed is not None:  # distinct positions inside the index, in order
            allowed = np.asarray(allowed, dtype=np.int64).ravel()
            keep = np.zeros(self.ntotal, dtype=bool)
            keep[allowed[(allowed >= 0) & (allowed < self.ntotal)]] = True
            allowed = np.flatnonzero(keep)
        if k == 0 or (allowed is not None and len(allowed) == 0):
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        if allowed is None or len(allowed) >= self.ntotal:
            return self._index.search(queries, k)
        if len(allowed) <= EXACT_FILTER_MAX and (stored := self._stored_vectors()) is not None:
            return _top_k_of(queries, stored, allowed, min(k, len(allowed)))
        selector = faiss.IDSelectorBatch(allowed)
        sp = _filtered_params(self._index, self.kind, selector, self.ntotal / len(allowed), k,
                              nprobe=self.params.ivf_nprobe, ef=self.params.hnsw_ef_search)
        return self._index.search(queries, min(k, len(allowed)), params=sp)

    def _stored_vectors(self) -> np.ndarray | None:
        """The raw vectors of a flat or HNSW index, as a view of faiss' memory (no copy); None for IVF."""
        index = faiss.downcast_index(self._index)
        if isinstance(index, faiss.IndexHNSW):
            index = faiss.downcast_index(index.storage)
        if not isinstance(index, faiss.IndexFlat) or index.ntotal == 0:
            return None
        return faiss.rev_swig_ptr(index.get_xb(), index.ntotal * index.d).reshape(index.ntotal, index.d)

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, kind: str, params: IndexParams) -> FaissIndex:
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise IndexError_(f"cannot read vector index {path}: {exc}") from exc
        return cls(index, kind, params)


# Selectors that leave out an Access's hidden positions, by the array they were built from: the
# store hands the same array for as long as the same documents are hidden (rag.store.base.Ruled),
# and building one costs milliseconds at 100k positions. Searches only read them.
# A bitmap (one bit per id: 125 kB at 1M) rather than a hash set: a search tests every vector it
# scans, and a bit test is what keeps a public search at 10% hidden near the unrestricted one's
# time (eval/ACCESS.md).
_EXCLUDERS: dict[int, tuple[np.ndarray, np.ndarray, object, object]] = {}


def _excluding(excluded: np.ndarray):
    got = _EXCLUDERS.get(id(excluded))
    if got is None or got[0] is not excluded:
        ids = np.asarray(excluded, dtype=np.int64)
        bits = np.zeros((int(ids.max()) + 8) // 8, dtype=np.uint8)
        np.bitwise_or.at(bits, ids >> 3, (1 << (ids & 7)).astype(np.uint8))
        inner = faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bits))  # reads `bits`: kept alive below
        if len(_EXCLUDERS) >= 16:
            _EXCLUDERS.clear()
        got = _EXCLUDERS[id(excluded)] = (excluded, bits, inner, faiss.IDSelectorNot(inner))
    return got[3]


def _filtered_params(index, kind: str, selector, widen: float, k: int, *, nprobe: int, ef: int = 0):
    """Search parameters with a selector; the share of the index a filter keeps (1 / widen) shrinks
    what a probe finds, so an approximate index is searched that much wider."""
    if kind == "hnsw":
        wide = min(_HNSW_FILTER_EF_MAX, math.ceil(max(ef, k) * widen))
        return faiss.SearchParametersHNSW(sel=selector, efSearch=max(wide, ef))
    if kind == "ivf":
        nlist = faiss.extract_index_ivf(index).nlist
        return faiss.SearchParametersIVF(sel=selector, nprobe=min(nlist, math.ceil(nprobe * widen)))
    return faiss.SearchParameters(sel=selector)


def _top_k_of(queries: np.ndarray, vectors: np.ndarray, allowed: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of `queries` among vectors[allowed], best first."""
    scores = queries @ vectors[allowed].T
    top = (np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < len(allowed)
           else np.broadcast_to(np.arange(len(allowed)), (len(queries), len(allowed))))
    top_scores = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-top_scores, axis=1, kind="stable")
    return (np.take_along_axis(top_scores, order, axis=1).astype(np.float32),
            allowed[np.take_along_axis(top, order, axis=1)].astype(np.int64))


@contextmanager
def _omp_threads(n: int | None):
    """faiss' OpenMP thread count for the calling thread, restored afterwards."""
    before = faiss.omp_get_max_threads()
    if n is None or n == before:
        yield
        return
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _train_ivf(vectors: np.ndarray, params: IndexParams) -> faiss.Index:
    n, d = vectors.shape
    nlist = params.ivf_nlist or default_nlist(n)
    nlist = max(1, min(nlist, n))
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = IVF_TRAIN_ITERATIONS
    index.cp.min_points_per_centroid = 1  # small explicit-IVF indexes: no warning, few points is fine
    index.cp.max_points_per_centroid = IVF_TRAIN_POINTS_PER_LIST
    sample_size = nlist * IVF_TRAIN_POINTS_PER_LIST
    sample = vectors if n <= sample_size else vectors[
        np.sort(np.random.default_rng(0).choice(n, sample_size, replace=False))]
    index.train(sample)
    return index


# -- an index keyed by row ids, changed in place (the disk store, rag/store/disk.py) -------------------
# IVF with 8-bit scalar-quantised codes: 384 bytes a vector (a quarter of float32), so 1M chunks hold
# about 0.4 GB in memory; the store re-scores the candidates with the exact vectors it reads per hit.
SQ_NLIST_MIN = 1


class IdIndex(_Sized):
    """Dense vectors under caller-chosen int64 ids: exact (flat) while small, IVF-SQ8 once trained.

    New vectors are added to the trained lists without retraining; the store retrains when the
    index has grown well past what it was trained on (k-means centroids drift as the archive does).
    """

    def __init__(self, index: faiss.Index, kind: str, nprobe: int) -> None:
        self._index = index
        self.kind = kind
        self.nprobe = nprobe
        if kind == "ivf":
            faiss.extract_index_ivf(index).nprobe = nprobe

    @classmethod
    def flat(cls, dimension: int, nprobe: int = 32) -> IdIndex:
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dimension)), "flat", nprobe)

    @classmethod
    def train_ivf(cls, sample: np.ndarray, n_expected: int, nprobe: int = 32, nlist: int | None = None) -> IdIndex:
        """An empty IVF-SQ8 index trained on `sample` (a random draw of the vectors it will hold)."""
        sample = np.ascontiguousarray(sample, dtype=np.float32)
        d = sample.shape[1]
        nlist = max(SQ_NLIST_MIN, min(nlist or default_nlist(n_expected), len(sample)))
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFScalarQuantizer(quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit,
                                              faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = IVF_TRAIN_ITERATIONS
        index.cp.min_points_per_centroid = 1
        index.cp.max_points_per_centroid = IVF_TRAIN_POINTS_PER_LIST
        index.train(sample)
        return cls(index, "ivf", nprobe)

    @property
    def nlist(self) -> int:
        return int(faiss.extract_index_ivf(self._index).nlist) if self.kind == "ivf" else 0

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32),
                                     np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> int:
        if not len(ids):
            return 0
        return int(self._index.remove_ids(faiss.IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64))))

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None, *,
               excluded: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) of one query; `allowed` (ids) restricts it, or `excluded` (ids) leaves
        those out, probing more IVF lists the fewer it keeps, as FaissIndex does."""
        q = np.ascontiguousarray(np.atleast_2d(query), dtype=np.float32)
        if q.shape[1] != self.dimension:
            raise IndexError_(f"query vectors have dimension {q.shape[1]}, the index has {self.dimension}")
        if self.ntotal == 0 or k < 1 or (allowed is not None and len(allowed) == 0):
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        k = min(k, self.ntotal)
        with _omp_threads(SINGLE_QUERY_THREADS):
            if allowed is not None:
                allowed = np.ascontiguousarray(allowed, dtype=np.int64)
                sp = _filtered_params(self._index, self.kind, faiss.IDSelectorBatch(allowed),
                                      self.ntotal / len(allowed), k, nprobe=self.nprobe)
                scores, ids = self._index.search(q, min(k, len(allowed)), params=sp)
            elif excluded is not None and len(excluded):
                left = max(1, self.ntotal - len(excluded))
                sp = _filtered_params(self._index, self.kind, _excluding(excluded), self.ntotal / left, k,
                                      nprobe=self.nprobe)
                scores, ids = self._index.search(q, min(k, left), params=sp)
            else:
                scores, ids = self._index.search(q, k)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    def memory_bytes(self) -> int:
        if self.kind == "flat":
            return self.ntotal * (self.dimension * 4 + 16)
        index = faiss.extract_index_ivf(self._index)
        return self.ntotal * (index.code_size + 8) + index.nlist * self.dimension * 4

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, nprobe: int = 32) -> IdIndex:
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise IndexError_(f"cannot read vector index {path}: {exc}") from exc
        kind = "ivf" if isinstance(faiss.downcast_index(index), faiss.IndexIVF) else "flat"
        return cls(index, kind, nprobe)
