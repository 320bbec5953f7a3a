"""FaissIndex on small synthetic data: exactness, filters, approximate recall, persistence."""

from __future__ import annotations

import numpy as np
import pytest

from rag import index as index_mod
from rag.errors import IndexError_
from rag.index import FaissIndex, IndexParams, default_nlist

DIM = 64


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(n: int, seed: int = 0, clusters: int = 40, spread: float = 0.35) -> np.ndarray:
    """Unit vectors around `clusters` random centres (neighbourhood structure, unlike uniform noise)."""
    rng = np.random.default_rng(seed)
    centres = _normalise(rng.standard_normal((clusters, DIM)))
    labels = rng.integers(0, clusters, n)
    return _normalise(centres[labels] + spread * rng.standard_normal((n, DIM)) / np.sqrt(DIM) * 3)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    points = clustered(3000, seed=1)
    queries = _normalise(clustered(60, seed=1)[:60] + 0.05 * np.random.default_rng(7).standard_normal((60, DIM)))
    return points, queries


@pytest.fixture(scope="module")
def built(data):
    """One index per kind with default parameters, built once (HNSW takes about a second)."""
    cache: dict[str, FaissIndex] = {}

    def get(kind: str) -> FaissIndex:
        if kind not in cache:
            cache[kind] = FaissIndex.build(data[0], IndexParams(kind=kind))
        return cache[kind]

    return get


def brute_force(points: np.ndarray, queries: np.ndarray, k: int, allowed: np.ndarray | None = None):
    scores = queries @ points.T
    if allowed is not None:
        mask = np.full(len(points), -np.inf)
        mask[allowed] = 0.0
        scores = scores + mask
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


def recall(exact: np.ndarray, approx: np.ndarray) -> float:
    k = exact.shape[1]
    return float(np.mean([len(set(e) & set(a)) / k for e, a in zip(exact, approx)]))


def test_flat_returns_exact_top_k_in_order(data):
    points, queries = data
    idx = FaissIndex.build(points, IndexParams(kind="flat"))
    assert idx.kind == "flat" and idx.ntotal == len(points) and idx.dimension == DIM
    scores, positions = idx.search(queries, 10)
    want_scores, want_positions = brute_force(points, queries, 10)
    assert positions.shape == (len(queries), 10)
    np.testing.assert_allclose(scores, want_scores, rtol=0, atol=1e-5)
    # Positions agree wherever scores are not tied to within float error.
    assert recall(want_positions, positions) == 1.0
    assert np.all(np.diff(scores, axis=1) <= 1e-6), "scores must come best first"


def test_single_query_vector_and_k_larger_than_index(data):
    points, queries = data
    idx = FaissIndex.build(points[:5], IndexParams(kind="flat"))
    scores, positions = idx.search(queries[0], 10)  # 1-D query, k > ntotal
    assert positions.shape == (1, 5)
    assert sorted(positions[0].tolist()) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
@pytest.mark.parametrize("exact_filter_max", [index_mod.EXACT_FILTER_MAX, 0])
def test_allowed_restricts_results(data, built, kind, exact_filter_max, monkeypatch):
    """Both paths: a narrow filter searched exactly, and (limit 0) the ANN index with a selector."""
    monkeypatch.setattr(index_mod, "EXACT_FILTER_MAX", exact_filter_max)
    points, queries = data
    idx = built(kind)
    rng = np.random.default_rng(3)
    for share in (0.02, 0.3):
        allowed = rng.choice(len(points), int(share * len(points)), replace=False)
        scores, positions = idx.search(queries, 10, allowed=allowed)
        found = positions[positions >= 0]
        assert found.size and set(found.tolist()) <= set(allowed.tolist())
        _, want = brute_force(points, queries, 10, allowed)
        assert recall(want, positions) >= (1.0 if exact_filter_max or kind == "flat" else 0.8)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_narrow_filter_is_exact_and_k_capped(data, built, kind):
    points, queries = data
    idx = built(kind)
    allowed = np.array([5, 17, 17, 2999, -1, 10_000])  # duplicates and out-of-range ids are ignored
    scores, positions = idx.search(queries[:3], 10, allowed=allowed)
    assert positions.shape == (3, 3)
    _, want = brute_force(points, queries[:3], 3, np.array([5, 17, 2999]))
    np.testing.assert_array_equal(positions, want)
    np.testing.assert_allclose(scores, np.take_along_axis(queries[:3] @ points.T, want, axis=1), atol=1e-5)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_empty_allowed_gives_empty_result(data, built, kind):
    points, queries = data
    idx = built(kind)
    for allowed in (np.array([], dtype=np.int64), []):
        scores, positions = idx.search(queries[:4], 10, allowed=allowed)
        assert scores.shape == positions.shape == (4, 0)
        assert positions.dtype == np.int64 and scores.dtype == np.float32


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_recall_against_flat(data, built, kind):
    points, queries = data
    _, exact = built("flat").search(queries, 10)
    idx = built(kind)
    assert idx.kind == kind
    _, approx = idx.search(queries, 10)
    assert recall(exact, approx) >= 0.9


def test_ivf_recall_with_few_probes(data):
    """IVF still finds most neighbours probing few of its lists (the partitioning is meaningful)."""
    points, queries = data
    _, exact = FaissIndex.build(points, IndexParams(kind="flat")).search(queries, 10)
    idx = FaissIndex.build(points, IndexParams(kind="ivf", ivf_nlist=64, ivf_nprobe=8))
    _, approx = idx.search(queries, 10)
    assert recall(exact, approx) >= 0.9


@pytest.mark.parametrize("ann_kind", ["hnsw", "ivf"])
def test_auto_picks_flat_below_threshold_and_ann_above(data, ann_kind):
    points, _ = data
    params = IndexParams(kind="auto", ann_threshold=1000, ann_kind=ann_kind)
    assert FaissIndex.build(points[:1000], params).kind == "flat"
    assert FaissIndex.build(points[:1001], params).kind == ann_kind
    assert IndexParams().resolve(IndexParams().ann_threshold) == "flat"
    assert IndexParams().resolve(IndexParams().ann_threshold + 1) == IndexParams().ann_kind


def test_default_nlist_keeps_lists_trainable():
    assert default_nlist(1_000_000) == 2000
    assert default_nlist(50_001) == 447
    assert default_nlist(100) == 2  # at least 39 points per list
    assert default_nlist(0) == 1


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_save_load_roundtrip(data, built, kind, tmp_path):
    points, queries = data
    params = IndexParams(kind=kind)
    idx = built(kind)
    idx.save(tmp_path / "dense.faiss")
    loaded = FaissIndex.load(tmp_path / "dense.faiss", idx.kind, params)
    assert loaded.kind == kind and loaded.ntotal == idx.ntotal
    for allowed in (None, np.arange(0, 3000, 7)):
        a_scores, a_pos = idx.search(queries, 10, allowed)
        b_scores, b_pos = loaded.search(queries, 10, allowed)
        np.testing.assert_array_equal(a_pos, b_pos)
        np.testing.assert_array_equal(a_scores, b_scores)


def test_load_applies_search_params(data, tmp_path):
    points, _ = data
    FaissIndex.build(points, IndexParams(kind="ivf", ivf_nprobe=4)).save(tmp_path / "i.faiss")
    loaded = FaissIndex.load(tmp_path / "i.faiss", "ivf", IndexParams(kind="ivf", ivf_nprobe=9))
    assert index_mod.faiss.extract_index_ivf(loaded._index).nprobe == 9


def test_load_unreadable_file_raises(tmp_path):
    bad = tmp_path / "dense.faiss"
    bad.write_bytes(b"not an index")
    with pytest.raises(IndexError_):
        FaissIndex.load(bad, "flat", IndexParams())


@pytest.mark.parametrize("kind", ["auto", "flat", "hnsw", "ivf"])
def test_empty_index_searches_to_empty_result(kind):
    idx = FaissIndex.build(np.zeros((0, DIM), dtype=np.float32), IndexParams(kind=kind), dimension=DIM)
    assert idx.ntotal == 0 and idx.dimension == DIM
    query = clustered(2, seed=5)
    for allowed in (None, np.array([0, 1])):
        scores, positions = idx.search(query, 5, allowed)
        assert scores.shape == positions.shape == (2, 0)
    assert idx.memory_bytes() >= 0


def test_empty_1d_input_uses_dimension():
    idx = FaissIndex.build(np.zeros((0,), dtype=np.float32), IndexParams(), dimension=DIM)
    assert idx.ntotal == 0 and idx.dimension == DIM


def test_single_query_leaves_thread_count_alone(data, built):
    points, queries = data
    faiss = index_mod.faiss
    before = faiss.omp_get_max_threads()
    for kind in ("flat", "ivf"):
        built(kind).search(queries[0], 5)
        built(kind).search(queries[0], 5, allowed=np.arange(100))
        assert faiss.omp_get_max_threads() == before


def test_query_dimension_mismatch_raises(data):
    points, _ = data
    idx = FaissIndex.build(points, IndexParams(kind="flat"))
    with pytest.raises(IndexError_):
        idx.search(np.ones((1, DIM + 1), dtype=np.float32), 3)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_memory_bytes_close_to_serialised_size(data, built, kind):
    points, _ = data
    idx = built(kind)
    serialised = index_mod.faiss.serialize_index(idx._index).nbytes
    assert points.nbytes <= idx.memory_bytes() <= 1.5 * serialised
