"""Scale benchmark: exact vs approximate dense search, and BM25, at 10k / 100k / 1M chunks.

    .venv/bin/python -m eval.bench.scale [--sizes 10000,100000,1000000] [--queries 200] [--out eval/SCALE.md]

Not a test: it measures, prints a Markdown report and writes it to --out. Everything goes through the
project's own classes (rag.index.FaissIndex, rag.lexical.LexicalIndex) with their default parameters,
so the report describes the configuration the engine ships with.

Dense data is synthetic but structured like sentence embeddings (see GENERATOR below); uniform random
vectors would have no neighbourhoods and make every approximate index look bad. Ground truth is
computed with numpy, independently of faiss. Text for BM25 is generated from real English words.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import math
import os
import platform
import re
import resource
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from eval.metrics import neighbour_recall
from eval.paths import CORPUS_DIR, EVAL_DIR
from rag import index as index_mod  # imports faiss (and names the OpenBLAS core first)
from rag.index import FaissIndex, IndexParams, default_nlist
from rag.lexical import LexicalIndex
from rag.text import tokenize

faiss = index_mod.faiss  # rag.index is the only module that imports faiss; borrow it for version/threads
DIM = 384
K = 10
POOL_K = 50  # what retrieval asks the dense index for (max(candidates=50, 4k))

GENERATOR = dict(
    n_topics=64, n_clusters=4096, spectrum_offset=10, spectrum_slope=0.75, mean_norm=0.6,
    topic_scale=0.7, cluster_scale=0.8, spread_median=0.6, spread_sigma=0.35, mix_share=0.5, query_noise=0.6,
)
GENERATOR_TEXT = """\
Dense vectors (dimension 384, L2-normalised): a two-level Gaussian mixture shaped like sentence
embeddings. Per-dimension scale s_i ∝ (i+10)^-0.75 (variance ∝ (i+10)^-1.5, the PCA spectrum fitted to
MiniLM embeddings of real passages); a shared offset of norm 0.6 (embeddings are anisotropic);
64 topic centres (scale 0.7·s), 4,096 cluster centres around them (scale 0.8·s) with lognormal
weights (σ 1) and lognormal spreads (median 0.6·s, σ 0.35); half of the points also mix in a second
random cluster with weight U(0, 0.5) (chunks that straddle stories), which fills the space between
clusters and makes partitioning harder. Queries: held-out points from the same generator plus noise
0.6·s, normalised (cosine to their source ≈ 0.86). Every size uses a prefix of one 1M sample and the
same queries. The parameters were fitted once against 5,148 all-MiniLM-L6-v2 embeddings of real
4-sentence passages (the corpus articles plus English software documentation): real data gave
random-pair cosine 0.22 ± 0.13, IVF recall@10 at 64 lists / 1, 2, 4, 8 probes of 0.56, 0.72, 0.83, 0.92 at
2.6k passages; this generator gives 0.22 ± 0.12 and about 0.49, 0.62, 0.73, 0.85 at the same size (slightly
harder than real data, so the recall figures below are conservative)."""

TEXT_TEXT = """\
Text for BM25: 120 words per chunk (about 160 model tokens, the chunk size) drawn from a Zipf–Mandelbrot
law (rank+2.7)^-1.05 over a 300,000-word vocabulary whose top ranks are real English words ordered by
frequency (the corpus articles, then the package descriptions in the virtual environment's
*.dist-info/METADATA), and whose tail is pseudo-words spliced from real words plus numbers (names and
rare terms); 30% of each chunk's words come from one of 2,000 topics (200 tail words each), so query
words co-occur. Queries: 6 words drawn from a held-out chunk, run through LexicalIndex.scores plus the
top-50 selection retrieval does."""


# ----------------------------------------------------------------------------------------------- data


def dense_generator(seed: int = 0) -> dict:
    g = GENERATOR
    rng = np.random.default_rng(seed)
    s = ((np.arange(1, DIM + 1) + g["spectrum_offset"]) ** -g["spectrum_slope"]).astype(np.float32)
    s /= np.sqrt((s**2).sum())
    mu = rng.standard_normal(DIM).astype(np.float32)
    mu *= g["mean_norm"] / np.linalg.norm(mu)
    topics = rng.standard_normal((g["n_topics"], DIM)).astype(np.float32) * s * g["topic_scale"]
    parent = rng.integers(0, g["n_topics"], g["n_clusters"])
    noise = rng.standard_normal((g["n_clusters"], DIM)).astype(np.float32)
    centres = mu + topics[parent] + noise * s * g["cluster_scale"]
    spread = np.exp(rng.normal(np.log(g["spread_median"]), g["spread_sigma"], g["n_clusters"])).astype(np.float32)
    weights = rng.lognormal(0.0, 1.0, g["n_clusters"])
    return dict(s=s, centres=centres, spread=spread, weights=weights / weights.sum())


def dense_sample(gen: dict, n: int, rng: np.random.Generator) -> np.ndarray:
    out = np.empty((n, DIM), dtype=np.float32)
    k = len(gen["weights"])
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        first, second = rng.choice(k, m, p=gen["weights"]), rng.choice(k, m, p=gen["weights"])
        mix = ((rng.random(m) < GENERATOR["mix_share"]) * rng.uniform(0.0, 0.5, m)).astype(np.float32)[:, None]
        x = (1 - mix) * gen["centres"][first] + mix * gen["centres"][second]
        x += rng.standard_normal((m, DIM), dtype=np.float32) * gen["s"] * gen["spread"][first, None]
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[start:start + m] = x
    return out


def dense_queries(gen: dict, held_out: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    q = held_out + GENERATOR["query_noise"] * rng.standard_normal(held_out.shape, dtype=np.float32) * gen["s"]
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def _real_words() -> list[str]:
    """Real English words by frequency: the corpus articles first, then installed packages' descriptions."""
    corpus = Counter(w for p in sorted(CORPUS_DIR.glob("*.txt")) for w in _WORD.findall(p.read_text(encoding="utf-8")))
    docs: Counter = Counter()
    for meta in sorted(Path(np.__file__).resolve().parents[1].glob("*.dist-info/METADATA")):
        docs.update(_WORD.findall(meta.read_text(encoding="utf-8", errors="ignore")))
    words, seen = [], set()
    for word, _ in corpus.most_common() + [(w, c) for w, c in docs.most_common() if c >= 2]:
        key = word.casefold()
        # One word, at most one BM25 token; words with "đ" stay out, as when eval/SCALE.md was measured.
        if key not in seen and "đ" not in key and len(tokenize(word)) <= 1:
            seen.add(key)
            words.append(word)
    return words


def text_generator(seed: int = 0, vocab_size: int = 300_000, n_topics: int = 2000, topic_words: int = 200) -> dict:
    rng = np.random.default_rng(seed)
    words = _real_words()
    n_real = len(words)
    stems = [w for w in words if len(w) >= 4 and w.isascii() and w.isalpha()]
    seen = {w.casefold() for w in words}
    word_tokens = [tokenize(w) for w in words]
    while len(words) < vocab_size:
        if rng.random() < 0.03:
            word = f"{rng.integers(1, 2000)}.{rng.integers(0, 100):02d}"
        else:
            a, b = stems[rng.integers(len(stems))], stems[rng.integers(len(stems))]
            word = a[: len(a) // 2 + 1] + b[len(b) // 2:].lower()
        if word.casefold() not in seen and len(toks := tokenize(word)) == 1:
            seen.add(word.casefold())
            words.append(word)
            word_tokens.append(toks)
    ranks = np.arange(1, vocab_size + 1)
    p = 1.0 / (ranks + 2.7) ** 1.05
    # BM25 token of every word (-1: stopword), for the pre-tokenised build at sizes past --lexical-full-max.
    token_of: dict[str, int] = {}
    word_token = np.array([token_of.setdefault(t[0], len(token_of)) if t else -1 for t in word_tokens])
    return dict(words=np.array(words, dtype=object), cdf=np.cumsum(p) / p.sum(), n_real=n_real,
                topics=rng.integers(n_real, vocab_size, (n_topics, topic_words)), word_token=word_token,
                token_vocab=token_of)


def text_word_ids(gen: dict, n: int, rng: np.random.Generator, length: int = 120, topical: float = 0.3) -> np.ndarray:
    out = np.empty((n, length), dtype=np.int32)
    for start in range(0, n, 50_000):
        m = min(50_000, n - start)
        ids = np.searchsorted(gen["cdf"], rng.random((m, length)))
        topic = rng.integers(0, len(gen["topics"]), m)
        from_topic = gen["topics"][topic[:, None], rng.integers(0, gen["topics"].shape[1], (m, length))]
        out[start:start + m] = np.where(rng.random((m, length)) < topical, from_topic, ids)
    return out


def texts_of(gen: dict, ids: np.ndarray) -> list[str]:
    words = gen["words"]
    return [" ".join(words[row]) for row in ids]


def lexical_pretokenised(gen: dict, ids: np.ndarray) -> LexicalIndex:
    """The index LexicalIndex.build would make from texts_of(ids), built from token ids directly.

    Every vocabulary word is at most one BM25 token, so a chunk's tokens are its words' tokens in order;
    this skips only the per-chunk tokenizer (checked equal to LexicalIndex.build at the smallest size).
    """
    import bm25s
    from bm25s.tokenization import Tokenized

    tokens = gen["word_token"][ids]
    vocab = dict(gen["token_vocab"])
    empty = vocab.setdefault("\u2205", len(vocab))
    rows = [row[row >= 0].tolist() or [empty] for row in tokens]
    del tokens
    bm25 = bm25s.BM25(k1=1.2, b=0.75)
    bm25.index(Tokenized(ids=rows, vocab=vocab), show_progress=False)
    return LexicalIndex(bm25, len(ids))


# ------------------------------------------------------------------------------------------ measuring


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def cpu_minutes() -> float:
    t = os.times()
    return (t.user + t.system) / 60


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def exact_top(points: np.ndarray, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """Exact top-k positions by inner product, in numpy (independent of faiss)."""
    best_s = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), 0), dtype=np.int64)
    ids = np.arange(len(points)) if allowed is None else np.asarray(allowed)
    for start in range(0, len(ids), 100_000):
        block = ids[start:start + 100_000]
        s = queries @ (points[start:start + len(block)] if allowed is None else points[block]).T
        s = np.concatenate([best_s, s], axis=1)
        i = np.concatenate([best_i, np.broadcast_to(block, (len(queries), len(block)))], axis=1)
        top = np.argpartition(-s, min(k, s.shape[1]) - 1, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(s, top, axis=1), np.take_along_axis(i, top, axis=1)
    return best_i


def latencies(fn, items, budget_s: float) -> np.ndarray:
    """Seconds per call of fn(item), one at a time, stopping early once budget_s is spent."""
    for item in items[:3]:
        fn(item)  # warm caches and thread pools
    out, spent = [], 0.0
    for item in items:
        t = time.perf_counter()
        fn(item)
        out.append(time.perf_counter() - t)
        spent += out[-1]
        if spent > budget_s and len(out) >= 20:
            break
    return np.array(out)


def ms(x: float) -> str:
    return f"{x * 1e3:.2f}" if x < 0.1 else f"{x * 1e3:.0f}"


def mib(x: float) -> str:
    return f"{x / 2**20:,.0f}"


def secs(x: float) -> str:
    return f"{x:.2f}" if x < 10 else f"{x:.0f}"


def size_label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def machine() -> dict:
    info = {}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        info["cpu"] = re.search(r"model name\s*:\s*(.*)", cpuinfo).group(1).strip()
        flags = set(re.search(r"flags\s*:\s*(.*)", cpuinfo).group(1).split())
        simd = [f for f in ("avx2", "fma", "avx512f", "avx512bw", "avx512vl") if f in flags]
        info["simd"] = ", ".join(simd) or "no AVX2"
    except (OSError, AttributeError):
        info["cpu"], info["simd"] = platform.processor() or "unknown", "unknown"
    info["cores"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        info["ram"] = int(re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text()).group(1)) * 1024
    except (OSError, AttributeError):
        info["ram"] = 0
    try:
        info["faiss_simd"] = faiss.SIMDConfig.get_level_name()
    except Exception:
        info["faiss_simd"] = "n/a"
    return info


# ---------------------------------------------------------------------------------------------- runs


def bench_dense(kind: str, points: np.ndarray, queries: np.ndarray, truth10: np.ndarray, truth50: np.ndarray,
                budget_s: float, threads: int) -> tuple[dict, FaissIndex]:
    gc.collect()
    before = rss_bytes()
    t = time.perf_counter()
    idx = FaissIndex.build(points, IndexParams(kind=kind), dimension=DIM)
    build = time.perf_counter() - t
    gc.collect()
    row = dict(kind=idx.kind, build=build, mem=idx.memory_bytes(), rss=rss_bytes() - before)

    def one(q: np.ndarray) -> object:  # one user request
        return idx.search(q[None, :], K)

    lat = latencies(one, queries, budget_s)  # as shipped: one query on SINGLE_QUERY_THREADS threads
    shipped = index_mod.SINGLE_QUERY_THREADS
    index_mod.SINGLE_QUERY_THREADS = None  # faiss' default: all `threads`
    try:
        lat_all = latencies(one, queries, budget_s)
    finally:
        index_mod.SINGLE_QUERY_THREADS = shipped
    row.update(p50=np.median(lat), p95=np.percentile(lat, 95), p50_all=np.median(lat_all),
               p95_all=np.percentile(lat_all, 95), n_lat=len(lat), n_lat_all=len(lat_all))
    row["recall10"] = neighbour_recall(truth10, idx.search(queries, K)[1])
    row["recall50"] = neighbour_recall(truth50, idx.search(queries, POOL_K)[1])
    if idx.kind == "ivf":
        ivf = faiss.extract_index_ivf(idx._index)
        row["detail"] = f"nlist {ivf.nlist}, nprobe {ivf.nprobe}"
    elif idx.kind == "hnsw":
        h = faiss.downcast_index(idx._index).hnsw
        row["detail"] = f"M {idx.params.hnsw_m}, efC {h.efConstruction}, efS {h.efSearch}"
    else:
        row["detail"] = "IndexFlatIP"
    return row, idx


def bench_filtered(idx: FaissIndex, points: np.ndarray, queries: np.ndarray, share: float, budget_s: float) -> dict:
    rng = np.random.default_rng(int(share * 1000))
    allowed = np.sort(rng.choice(len(points), max(1, int(share * len(points))), replace=False))
    truth = exact_top(points, queries, K, allowed)
    lat = latencies(lambda q: idx.search(q[None, :], K, allowed), queries, budget_s)
    got = idx.search(queries, K, allowed)[1]
    assert np.isin(got[got >= 0], allowed).all(), "a filtered search returned a position outside the filter"
    if idx.kind == "ivf":
        nlist = faiss.extract_index_ivf(idx._index).nlist
        nprobe = min(nlist, math.ceil(idx.params.ivf_nprobe * len(points) / len(allowed)))
        path = f"selector, nprobe {nprobe} of {nlist}" + (" (all: exact)" if nprobe == nlist else "")
    else:
        path = "exact over the filter" if len(allowed) <= index_mod.EXACT_FILTER_MAX else "selector, full scan"
    return dict(allowed=len(allowed), p50=np.median(lat), p95=np.percentile(lat, 95),
                recall10=neighbour_recall(truth, got), path=path)


def bench_lexical(lex: LexicalIndex, text_queries: list[str], budget_s: float) -> dict:
    def one(q: str) -> None:
        scores = lex.scores(q)
        np.argpartition(-scores, min(POOL_K, len(scores)) - 1)[:POOL_K]

    lat = latencies(one, text_queries, budget_s)
    scores = lex._bm25.scores
    structure = sum(getattr(v, "nbytes", 0) for v in scores.values())
    return dict(p50=np.median(lat), p95=np.percentile(lat, 95), mem=structure, n_lat=len(lat))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--out", type=Path, default=EVAL_DIR / "SCALE.md")
    ap.add_argument("--hnsw-max", type=int, default=100_000,
                    help="largest size to build HNSW at (its build at 1M takes many minutes on 2 cores)")
    ap.add_argument("--lexical-full-max", type=int, default=100_000,
                    help="largest size built with LexicalIndex.build (tokenizer included); larger ones pre-tokenised")
    ap.add_argument("--lexical-max", type=int, default=100_000,
                    help="largest size to measure BM25 at (1M: several more minutes and ~6 GB more memory)")
    ap.add_argument("--latency-budget", type=float, default=10.0,
                    help="seconds per latency series; slow series (exact search at 1M) stop early")
    args = ap.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    t_start = time.perf_counter()
    load_start = os.getloadavg()
    threads = faiss.omp_get_max_threads()
    info = machine()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:6.0f}s] {msg}", file=sys.stderr, flush=True)

    # Dense: one sample of the largest size; each size is a prefix; queries are shared.
    rng = np.random.default_rng(1)
    gen = dense_generator()
    t = time.perf_counter()
    all_points = dense_sample(gen, sizes[-1], rng)
    queries = dense_queries(gen, dense_sample(gen, args.queries, rng), rng)
    log(f"generated {len(all_points):,} vectors in {time.perf_counter() - t:.0f}s")

    dense_rows, filter_rows, shape_rows = [], [], []
    for n in sizes:
        points = all_points[:n]
        truth50 = exact_top(points, queries, POOL_K)
        # Ground truth must be ordered by score (argpartition leaves the top 50 unordered).
        top_scores = np.einsum("qd,qkd->qk", queries, points[truth50])
        order = np.argsort(-top_scores, axis=1)
        truth50 = np.take_along_axis(truth50, order, axis=1)
        top_scores = np.take_along_axis(top_scores, order, axis=1)
        truth10 = truth50[:, :K]
        pairs = np.random.default_rng(5).integers(0, n, (2000, 2))
        rand = np.einsum("ij,ij->i", points[pairs[:, 0]], points[pairs[:, 1]])
        shape_rows.append((n, rand.mean(), rand.std(), top_scores[:, 0].mean(), top_scores[:, K - 1].mean()))
        kinds = ["flat", "ivf"] + (["hnsw"] if n <= args.hnsw_max else [])
        for kind in kinds:
            log(f"{size_label(n)}: {kind} ...")
            row, idx = bench_dense(kind, points, queries, truth10, truth50, args.latency_budget, threads)
            row["n"] = n
            dense_rows.append(row)
            log(f"  {kind}: build {row['build']:.1f}s p50 {ms(row['p50'])}ms recall@10 {row['recall10']:.3f}")
            if kind in ("flat", "ivf"):
                for share in (0.01, 0.10):
                    f = bench_filtered(idx, points, queries, share, args.latency_budget / 2)
                    filter_rows.append(dict(n=n, kind=kind, share=share, **f))
            del idx
            gc.collect()
    del all_points
    gc.collect()

    # Lexical.
    lex_rows = []
    lex_sizes = [n for n in sizes if n <= args.lexical_max]
    if lex_sizes:
        t = time.perf_counter()
        tgen = text_generator()
        trng = np.random.default_rng(2)
        word_ids = text_word_ids(tgen, lex_sizes[-1], trng)
        held = texts_of(tgen, text_word_ids(tgen, args.queries, trng))
        text_queries = [" ".join(trng.choice(h.split(), 6, replace=False)) for h in held]
        log(f"generated {len(word_ids):,} chunks of text in {time.perf_counter() - t:.0f}s "
            f"({tgen['n_real']:,} real words in the vocabulary)")
        checked = False
        full_build_rate = None
        for n in lex_sizes:
            gc.collect()
            before = rss_bytes()
            if n <= args.lexical_full_max:
                texts = texts_of(tgen, word_ids[:n])
                before = rss_bytes()
                t = time.perf_counter()
                lex = LexicalIndex.build(texts)
                build, how = time.perf_counter() - t, "LexicalIndex.build"
                full_build_rate = build / n
                if not checked:  # the pre-tokenised shortcut must build the very same index
                    quick = lexical_pretokenised(tgen, word_ids[:n])
                    for q in text_queries[:25]:
                        np.testing.assert_allclose(quick.scores(q), lex.scores(q), rtol=1e-5, atol=1e-6)
                    checked = True
                    del quick
                del texts
            else:
                t = time.perf_counter()
                lex = lexical_pretokenised(tgen, word_ids[:n])
                build, how = time.perf_counter() - t, "pre-tokenised"
            gc.collect()
            row = dict(n=n, build=build, how=how, rss=rss_bytes() - before,
                       **bench_lexical(lex, text_queries, args.latency_budget))
            if how == "pre-tokenised" and full_build_rate:
                row["est_full"] = full_build_rate * n
            lex_rows.append(row)
            log(f"{size_label(n)}: bm25 build {build:.0f}s ({how}) p50 {ms(row['p50'])}ms")
            del lex
            gc.collect()

    total = time.perf_counter() - t_start
    report = render(args, sizes, info, threads, dense_rows, filter_rows, shape_rows, lex_rows, total, load_start)
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    log(f"wrote {args.out} ({total / 60:.1f} min wall, {cpu_minutes():.1f} min CPU)")
    return 0


def render(args, sizes, info, threads, dense_rows, filter_rows, shape_rows, lex_rows, total, load_start) -> str:
    import bm25s

    defaults = IndexParams()
    load_end = os.getloadavg()
    lines = [
        "# Scale benchmark: dense (FAISS) and lexical (BM25) search",
        "",
        f"Generated by `python -m eval.bench.scale --sizes {args.sizes} --queries {args.queries}` on "
        f"{dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}; the whole run took {total / 60:.1f} min "
        f"of wall time and {cpu_minutes():.1f} min of CPU time (user + system, all threads: roughly what the "
        "run takes on an idle machine, as most of it is single-threaded).",
        "",
        "## Machine",
        "",
        f"- CPU: {info['cpu']}, {info['cores']} cores available ({info['simd']}); RAM {info['ram'] / 2**30:.0f} GiB",
        f"- faiss {faiss.__version__} (SIMD level {info['faiss_simd']}), OpenMP threads {threads} (the default: "
        f"one per core); OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}",
        "- The OpenBLAS bundled with faiss-cpu (0.3.15) may not recognise this CPU and fall back to its SSE3 "
        "kernels, which slows the matrix products of IVF training and bulk adds (build times); faiss' own "
        "distance kernels, used by single-query search, dispatch AVX-512 either way.",
        f"- numpy {np.__version__}, bm25s {bm25s.__version__}, Python {platform.python_version()}",
        f"- load average at start {load_start[0]:.1f}, at end {load_end[0]:.1f}: other work shared the cores, "
        "so absolute times carry noise (compare rows within one run).",
        "",
        "## Defaults under test (`IndexParams()`)",
        "",
        f"`kind={defaults.kind!r}`, `ann_threshold={defaults.ann_threshold:,}`, `ann_kind={defaults.ann_kind!r}`, "
        f"`ivf_nlist=None` (→ round(2·√n): {', '.join(f'{default_nlist(n):,} at {size_label(n)}' for n in sizes)}), "
        f"`ivf_nprobe={defaults.ivf_nprobe}`, `hnsw_m={defaults.hnsw_m}`, "
        f"`hnsw_ef_construction={defaults.hnsw_ef_construction}`, `hnsw_ef_search={defaults.hnsw_ef_search}`. "
        f"IVF trains k-means on {index_mod.IVF_TRAIN_POINTS_PER_LIST} points per list, "
        f"{index_mod.IVF_TRAIN_ITERATIONS} iterations.",
        "",
    ]
    target = [r for r in dense_rows if r["n"] == 1_000_000 and r["kind"] == defaults.ann_kind]
    if target:
        r = target[0]
        ok = r["p50"] <= 0.010 and r["recall10"] >= 0.95
        lines += [
            f"**Acceptance (approximate p50 ≤ 10 ms at 1M with recall@10 ≥ 0.95): {'MET' if ok else 'NOT MET'}** — "
            f"default `{r['kind']}` ({r['detail']}): p50 {ms(r['p50'])} ms, p95 {ms(r['p95'])} ms, recall@10 "
            f"{r['recall10']:.3f}; exact search at 1M: p50 "
            f"{ms(next(x['p50'] for x in dense_rows if x['n'] == 1_000_000 and x['kind'] == 'flat'))} ms.",
            "",
        ]
    lines += [
        "## Dense search (dimension 384, inner product, k = 10, one query per call)",
        "",
        "Latency: one query per `FaissIndex.search` call, as a user request makes it; `FaissIndex` runs a "
        f"single query on {index_mod.SINGLE_QUERY_THREADS} OpenMP thread(s) (`SINGLE_QUERY_THREADS`), and the "
        f"last latency columns repeat the series with faiss' default of {threads} threads (one per core). "
        "recall@10: top-10 of the index vs the exact top-10 (numpy); recall@50: the same at k = 50, the "
        "candidate pool retrieval asks for. Memory: `memory_bytes()` (what the index holds) and the process "
        "RSS growth over the build.",
        "",
        f"| chunks | index | parameters | build s | p50 ms | p95 ms | p50 ms ({threads} threads) | "
        f"p95 ms ({threads} threads) | recall@10 | recall@50 | memory MiB | RSS Δ MiB |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in dense_rows:
        note = f" ({r['n_lat']} q)" if r["n_lat"] < args.queries else ""
        note1 = f" ({r['n_lat_all']} q)" if r["n_lat_all"] < args.queries else ""
        lines.append(
            f"| {size_label(r['n'])} | {r['kind']} | {r['detail']} | {secs(r['build'])} | {ms(r['p50'])}{note} | "
            f"{ms(r['p95'])} | {ms(r['p50_all'])}{note1} | {ms(r['p95_all'])} | {r['recall10']:.3f} | "
            f"{r['recall50']:.3f} | "
            f"{mib(r['mem'])} | {mib(r['rss'])} |"
        )
    skipped = [n for n in sizes if n > args.hnsw_max]
    if skipped:
        h = [r for r in dense_rows if r["kind"] == "hnsw"]
        base = f" (it took {secs(h[-1]['build'])} s at {size_label(h[-1]['n'])})" if h else ""
        lines += ["", f"HNSW was not built at {', '.join(size_label(n) for n in skipped)} "
                  f"(`--hnsw-max {args.hnsw_max}`): "
                  f"its build grows a little faster than linearly{base}, so at 1M it would take more than ten times "
                  "as long, beyond this run's time budget on 2 cores. Pass `--hnsw-max 1000000` to measure it."]
    lines += [
        "",
        "(q) after a latency: the series stopped early at the time budget, after that many queries.",
        "",
        "### Filtered search (metadata filters: `allowed` = a random share of positions)",
        "",
        f"Flat (and HNSW): a filter keeping at most {index_mod.EXACT_FILTER_MAX:,} positions is scored "
        "exactly over those vectors; a wider one scans with an IDSelector. IVF: an IDSelector with nprobe "
        "widened to nprobe × total / allowed (capped at nlist, where the search is exact). recall@10 is "
        "against the exact top-10 within the filter; latency budget per series is half the unfiltered one.",
        "",
        "| chunks | index | allowed | path | p50 ms | p95 ms | recall@10 |",
        "|---:|---|---:|---|---:|---:|---:|",
    ]
    for r in filter_rows:
        lines.append(f"| {size_label(r['n'])} | {r['kind']} | {r['allowed']:,} ({r['share']:.0%}) | {r['path']} | "
                     f"{ms(r['p50'])} | {ms(r['p95'])} | {r['recall10']:.3f} |")
    lines += [
        "",
        "### Shape of the synthetic data",
        "",
        "| chunks | random-pair cosine (mean ± sd) | query → 1st neighbour cosine | query → 10th neighbour cosine |",
        "|---:|---:|---:|---:|",
    ]
    for n, m, s, c1, c10 in shape_rows:
        lines.append(f"| {size_label(n)} | {m:.3f} ± {s:.3f} | {c1:.3f} | {c10:.3f} |")
    lines += ["", GENERATOR_TEXT, ""]
    lines += ["## Lexical search (BM25, `LexicalIndex`)", ""]
    if lex_rows:
        lines += [
            "Latency: `LexicalIndex.scores(query)` plus the top-50 selection, one query per call. Memory: "
            "bm25s' score matrix (data, indices, indptr); RSS Δ: process growth over the build (the "
            "tokenised corpus is freed after it, so the peak is higher).",
            "",
            "| chunks | build | build s | p50 ms | p95 ms | score matrix MiB | RSS Δ MiB |",
            "|---:|---|---:|---:|---:|---:|---:|",
        ]
        for r in lex_rows:
            extra = f" (full build est. {secs(r['est_full'])} s)" if "est_full" in r else ""
            lines.append(f"| {size_label(r['n'])} | {r['how']} | {secs(r['build'])}{extra} | {ms(r['p50'])} | "
                         f"{ms(r['p95'])} | {mib(r['mem'])} | {mib(r['rss'])} |")
        if any(r["how"] == "pre-tokenised" for r in lex_rows):
            full_ms = next((r["build"] / r["n"] * 1e3 for r in lex_rows if r["how"] == "LexicalIndex.build"),
                           float("nan"))
            lines += [
                "",
                f"Past {size_label(args.lexical_full_max)} chunks the index is built from token ids directly "
                "(`lexical_pretokenised`): the same bm25s index `LexicalIndex.build` makes — checked equal, "
                f"score for score, at {size_label(lex_rows[0]['n'])} — but without running `rag.text.tokenize` "
                "over every chunk, which costs about "
                f"{full_ms:.2f} "
                "ms a chunk here and would not fit this run's time budget at 1M. The full-build estimate scales "
                "the largest `LexicalIndex.build` linearly. Query latency does not depend on how the index was built.",
            ]
    else:
        lines.append("Not measured in this run (`--lexical-max`).")
    skipped = [n for n in sizes if n > args.lexical_max]
    if skipped:
        full = [r for r in lex_rows if r["how"] == "LexicalIndex.build"]
        rate = ""
        if full:
            per_chunk = full[-1]["build"] / full[-1]["n"]
            rate = (f" (about {per_chunk * 1e3:.1f} ms a chunk here, so roughly "
                    f"{per_chunk * skipped[-1] / 60:.0f} min at {size_label(skipped[-1])})")
        lines += ["", f"BM25 was not measured at {', '.join(size_label(n) for n in skipped)} (`--lexical-max "
                  f"{args.lexical_max}`): `LexicalIndex.build` tokenises every chunk in Python{rate}, far past this "
                  "run's time budget. `--lexical-max 1000000` measures 1M with a pre-tokenised build of the same "
                  "index (several more minutes, about 6 GB more memory)."]
    lines += ["", TEXT_TEXT, "", f"Peak RSS of the benchmark process: {mib(peak_rss_bytes())} MiB.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
