"""Access-rule benchmark of the disk store (issue 25, acceptance point 4): at 1M chunks with 10% of the
documents restricted, hybrid search for the public principal against unrestricted search.

    PYTHONPATH=. .venv/bin/python -m eval.bench.access [--chunks 1000000] [--queries 200] [--rounds 2]
                                                      [--work /tmp/access-bench] [--out eval/ACCESS.md]

Not a test: it measures, prints a Markdown report and writes it to --out (tests/test_bench_access.py
runs it at a tiny size). The store is built once under --work and reused while its settings match.

The store (rag/store/disk.py) is written directly into SQLite, as `rag ingest` writes it (the same
`docs`, `chunks`, `lex` FTS5, `versions` and `meta` rows, rag/store/disk_writer.py), with the store's
own helpers (`disk.connect`, `disk.lexical_tokens`'s tokens, `disk.build_dense`, `disk.save_dense`):
embedding a million chunks is out of reach on a small CPU.
  - Text: real English sentences, from the docstrings of the standard library and the installed
    packages (rag.calibration.docstrings, as eval/bench/corpus.py and scale_real.py use them); a chunk
    is 4-8 random sentences (at most 900 characters), a document 3-7 chunks (5 on average) and a title.
    A share of the sentences is held out: the queries are their first 12 words.
  - Vectors: eval/bench/scale.py's generator of sentence-embedding-like vectors (dimension 384); the
    query vectors come from its query path (held-out points plus noise).
  - Rules, in the documents' metadata as rag/loaders/rules.py stores them: a random 10% of the
    documents are hidden from the public principal, a third each `desks: ["investigations"]` (half of
    them with a second desk), `embargo_until` in 2099, `status: "retracted"`; another 1% carry an
    embargo that has passed and 1% `status: "corrected"` (rules that hide nothing now).

Measured in one process, one query at a time, on the same queries and vectors:
`DiskStore.search(query, qvec, 50, mode="hybrid", fusion="weighted", alpha=0.3, filters=...)` with no
filters (unrestricted), with the public principal's Access (no desks) and with an "investigations"
desk principal's. After a warm-up pass over every query and variant, the variants run interleaved per
query (the order rotating from query to query), --rounds times. Recall@10: the store's dense search
(n=10, and the first 10 of n=50, what hybrid fuses) against the exact top-10 by numpy over the stored
float32 vectors of the chunks that principal may see. Every returned candidate is checked against
the documents the principal may not see (leaks), and the store's hidden set against the builder's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import json
import os
import re
import resource
import shutil
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.bench.machine import cpu_line
from eval.bench.scale import DIM, dense_generator, dense_queries, dense_sample
from eval.paths import EVAL_DIR
from rag import index as index_mod
from rag.calibration import docstrings
from rag.chunking import ChunkingSettings, split_sentences
from rag.index import IndexParams
from rag.ingest import metadata_json
from rag.lexical import TOKENIZER_VERSION
from rag.records import Access, Filters, utc_stamp
from rag.store import disk
from rag.store.disk_writer import text_key
from rag.text import fold, tokenize

FORMAT = 1  # of the built store and its record (work/built.json); a change rebuilds
EMBEDDER_ID = "synthetic:scale-generator-384"  # no model made these vectors (eval/bench/scale.py's generator)
DESK = "investigations"
PUBLISHERS = ["Reuters", "AP", "AFP", "Beta", "Tanjug"]
RESTRICTED_SHARE = 0.10
PASSED_SHARE = CORRECTED_SHARE = 0.01
# Rule kinds per document: what the builder writes, and who may not see it.
NONE, DESK_ONLY, EMBARGOED, RETRACTED, EMBARGO_PASSED, CORRECTED = range(6)
KIND_NAMES = {DESK_ONLY: "desk", EMBARGOED: "embargo", RETRACTED: "retracted", EMBARGO_PASSED: "embargo passed",
              CORRECTED: "corrected"}
HIDDEN_KINDS = {"public": (DESK_ONLY, EMBARGOED, RETRACTED), "desk": (EMBARGOED, RETRACTED)}
VARIANTS = ("unrestricted", "public", "desk")
N_CANDIDATES = 50
QUERY_WORDS = 12
BATCH_DOCS = 10_000
MAX_CHUNK_CHARS = 900


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------------------------------------ text
_SENTENCE = re.compile(r"[A-Z][^<>{}=\[\]|\\`*_#@$~^]*[.!?]")


def gather_sentences(limit: int) -> list[str]:
    """Up to `limit` distinct English sentences (40-300 characters, mostly letters) of docstrings,
    the standard library's first, then the installed packages', in path order (stable per machine)."""
    paths = sysconfig.get_paths()
    out: list[str] = []
    seen: set[str] = set()
    for root, skip in ((Path(paths["stdlib"]), {"test", "tests", "idle_test", "site-packages"}),
                       (Path(paths["purelib"]), {"test", "tests"})):
        for _, text in docstrings(root, 80, 5000, skip=skip):
            for s, e in split_sentences(text):
                x = " ".join(text[s:e].split())
                if (40 <= len(x) <= 300 and x not in seen and _SENTENCE.fullmatch(x)
                        and sum(c.isalpha() or c == " " for c in x) >= 0.9 * len(x)):
                    seen.add(x)
                    out.append(x)
                    if len(out) >= limit:
                        return out
    return out


def sentences(work: Path, limit: int) -> list[str]:
    """gather_sentences(limit), remembered under `work` (scanning every package takes a minute or two)."""
    cache = work / "sentences.json"
    if cache.exists():
        got = json.loads(cache.read_text(encoding="utf-8"))
        if got.get("limit") == limit:
            return got["sentences"]
    found = gather_sentences(limit)
    work.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"limit": limit, "sentences": found}), encoding="utf-8")
    return found


# ------------------------------------------------------------------------------------------------ plan
@dataclass(frozen=True)
class Plan:
    """The documents of a store of `chunks` chunks: chunk counts, row ids and rule kinds, from the seed
    alone (a reused store needs no second record of which documents are restricted)."""

    chunks: int
    counts: np.ndarray  # chunks per document
    first: np.ndarray  # row id (chunks.id) of each document's first chunk; ids run 1..chunks
    kinds: np.ndarray  # rule kind per document

    @classmethod
    def make(cls, chunks: int, seed: int = 0) -> Plan:
        rng = np.random.default_rng([seed, 1])
        counts = rng.integers(3, 8, size=chunks // 3 + 1)
        total = np.cumsum(counts)
        n_docs = int(np.searchsorted(total, chunks)) + 1
        counts = counts[:n_docs].copy()
        counts[-1] -= int(total[n_docs - 1]) - chunks
        first = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64) + 1
        kinds = np.full(n_docs, NONE, dtype=np.int8)
        order = rng.permutation(n_docs)
        restricted = int(round(RESTRICTED_SHARE * n_docs))
        for i, kind in enumerate((DESK_ONLY, EMBARGOED, RETRACTED)):
            kinds[order[restricted * i // 3:restricted * (i + 1) // 3]] = kind
        at = restricted
        for share, kind in ((PASSED_SHARE, EMBARGO_PASSED), (CORRECTED_SHARE, CORRECTED)):
            m = int(round(share * n_docs))
            kinds[order[at:at + m]] = kind
            at += m
        return cls(chunks, counts, first, kinds)

    @property
    def documents(self) -> int:
        return len(self.counts)

    def hidden_docs(self, variant: str) -> np.ndarray:
        """Document numbers `variant` may not see."""
        if variant == "unrestricted":
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(np.isin(self.kinds, HIDDEN_KINDS[variant]))

    def hidden_chunks(self, variant: str) -> np.ndarray:
        """Row ids (sorted) of the chunks `variant` may not see."""
        docs = self.hidden_docs(variant)
        if not len(docs):
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([np.arange(self.first[d], self.first[d] + self.counts[d]) for d in docs])

    def row_id(self, chunk_id: str) -> int:
        doc, ord_ = chunk_id.split("#")
        return int(self.first[doc_number(doc)]) + int(ord_)


def doc_name(d: int) -> str:
    return f"acc{d:07d}"


def doc_number(doc_id: str) -> int:
    return int(doc_id[3:])


def doc_metadata(d: int, kind: int, rng: np.random.Generator) -> dict:
    day = dt.date(2000, 1, 1) + dt.timedelta(days=int(rng.integers(9000)))
    meta: dict = {"publisher": PUBLISHERS[d % len(PUBLISHERS)], "published": day.isoformat()}
    if kind == DESK_ONLY:
        meta["desks"] = [DESK] if rng.random() < 0.5 else [DESK, "politics"]
    elif kind in (EMBARGOED, EMBARGO_PASSED):
        year = 2099 if kind == EMBARGOED else int(rng.integers(2001, 2021))
        when = dt.datetime(year, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=int(rng.integers(360 * 86400)))
        meta["embargo_until"] = utc_stamp(when)
    elif kind == RETRACTED:
        meta["status"] = "retracted"
    elif kind == CORRECTED:
        meta["status"] = "corrected"
        meta["correction"] = "An earlier version of this article misstated a figure."
    return meta


# ----------------------------------------------------------------------------------------------- build
def _record(work: Path) -> dict | None:
    try:
        return json.loads((work / "built.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _usable(work: Path, want: dict) -> bool:
    rec, index_dir = _record(work), work / "index"
    if rec is None or {k: rec.get(k) for k in want} != want or not disk.is_disk_store(index_dir):
        return False
    db = disk.connect(index_dir)
    try:
        v = disk.live_version(db)
        return v is not None and disk.dense_path(index_dir, v).exists() and \
            int(disk.version_row(db, v)["chunks"]) == want["chunks"]
    finally:
        db.close()


def build_store(work: Path, chunks: int, *, seed: int = 0, sentence_limit: int = 100_000,
                held_out: int = 1000) -> dict:
    """The store under work/index (reused when built with these settings); returns its build record:
    the settings, the held-out sentences (queries) and the seconds each step took."""
    want = {"format": FORMAT, "chunks": chunks, "seed": seed, "sentence_limit": sentence_limit,
            "held_out": held_out}
    if _usable(work, want):
        rec = _record(work)
        log(f"reusing the store in {work / 'index'} (built {rec['built_at']})")
        return rec
    index_dir = work / "index"
    if index_dir.exists():
        shutil.rmtree(index_dir)
    (work / "built.json").unlink(missing_ok=True)
    t_all = time.perf_counter()
    t = time.perf_counter()
    pool = sentences(work, sentence_limit)
    order = np.random.default_rng([seed, 2]).permutation(len(pool))
    n_held = min(held_out, len(pool) // 5)
    held = [pool[i] for i in order[:n_held]]
    body = [pool[i] for i in order[n_held:]]
    sent_tokens = [" ".join(tokenize(s)) for s in body]
    secs = {"sentences": time.perf_counter() - t}
    log(f"{len(pool):,} sentences ({n_held:,} held out for queries) in {secs['sentences']:.0f}s")

    plan = Plan.make(chunks, seed)
    gen = dense_generator(seed)
    rng = np.random.default_rng([seed, 3])
    db = disk.connect(index_dir, create=True)
    db.execute("PRAGMA synchronous=OFF")  # this connection only: a killed build is rebuilt anyway
    db.execute("PRAGMA cache_size=-262144")
    v = 1
    chunking = ChunkingSettings().to_json()
    checked = 0
    t = time.perf_counter()
    for b, start in enumerate(range(0, plan.documents, BATCH_DOCS)):
        docs = range(start, min(plan.documents, start + BATCH_DOCS))
        m = int(plan.counts[docs.start:docs.stop].sum())
        vectors = dense_sample(gen, m, np.random.default_rng([seed, 4, b]))
        picks = rng.integers(0, len(body), size=(m, 8))
        sizes = rng.integers(4, 9, size=m)
        doc_rows, chunk_rows, lex_rows = [], [], []
        at = 0
        for d in docs:
            title_words = body[int(rng.integers(len(body)))].split()[:int(rng.integers(3, 9))]
            title = " ".join(title_words).rstrip(".,;:!?")
            title_tok = " ".join(tokenize(title))
            name = doc_name(d)
            texts, offsets, pos = [], [], 0
            for _ in range(int(plan.counts[d])):
                chosen = [int(j) for j in picks[at + len(texts), :sizes[at + len(texts)]]]
                while len(chosen) > 1 and sum(len(body[j]) + 1 for j in chosen) - 1 > MAX_CHUNK_CHARS:
                    chosen.pop()
                text = " ".join(body[j] for j in chosen)
                tokens = " ".join(x for x in [title_tok, *(sent_tokens[j] for j in chosen)] if x)
                if checked < 200:  # the per-sentence tokens joined are what an ingest would index
                    assert tokens == disk.lexical_tokens(title, text), (title, text)
                    checked += 1
                texts.append((text, tokens))
                offsets.append((pos, pos + len(text)))
                pos += len(text) + 1
            meta = doc_metadata(d, int(plan.kinds[d]), rng)
            digest = hashlib.sha256(" ".join(x for x, _ in texts).encode("utf-8")).hexdigest()
            folded = json.dumps({str(k): fold(str(val)) for k, val in meta.items() if val is not None},
                                ensure_ascii=False)
            doc_rows.append((name, digest, f"access-bench.jsonl:{d + 1}", title, metadata_json(meta), fold(name),
                             folded, str(meta.get("published") or "")[:10], v))
            for ord_, ((text, tokens), (s, e)) in enumerate(zip(texts, offsets)):
                cid = int(plan.first[d]) + ord_
                chunk_rows.append((cid, name, ord_, f"{name}#{ord_}", s, e, text, text_key(EMBEDDER_ID, text),
                                   vectors[at].tobytes(), v))
                lex_rows.append((cid, tokens))
                at += 1
        assert at == m
        db.execute("BEGIN")
        db.executemany("""INSERT INTO docs (doc_id, hash, source, title, metadata, doc_key, meta_folded, published,
                                            added_in) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""", doc_rows)
        db.executemany("""INSERT INTO chunks (id, doc_id, ord, chunk_id, start, "end", text, text_key, vector,
                                              added_in) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""", chunk_rows)
        db.executemany("INSERT INTO lex (rowid, tokens) VALUES (?, ?)", lex_rows)
        db.execute("COMMIT")
        done = int(plan.first[docs.stop - 1] + plan.counts[docs.stop - 1] - 1)
        if b % 5 == 4 or docs.stop == plan.documents:
            log(f"rows: {done:,} of {chunks:,} chunks ({time.perf_counter() - t:.0f}s)")
    secs["rows"] = time.perf_counter() - t
    t = time.perf_counter()
    params = IndexParams()  # what `rag ingest` builds with
    dense, trained = disk.build_dense(db, v, chunks, DIM, ann_threshold=params.ann_threshold, nprobe=params.ivf_nprobe)
    disk.save_dense(index_dir, v, dense)
    secs["dense"] = time.perf_counter() - t
    log(f"dense index: {dense.kind}{f' nlist {dense.nlist}' if dense.nlist else ''}, {secs['dense']:.0f}s")
    name, created = disk.new_version_name()
    settings = {"embedder": EMBEDDER_ID, "dimension": DIM, "chunking": chunking, "tokenizer": TOKENIZER_VERSION,
                "ann_threshold": params.ann_threshold, "dense": dense.kind, "trained_on": trained}
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?)",
               (v, name, created, plan.documents, chunks, json.dumps(settings)))
    db.execute("INSERT OR REPLACE INTO meta VALUES ('live', ?)", (str(v),))
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    secs["total"] = time.perf_counter() - t_all
    rec = {**want, "built_at": f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC", "seconds": secs,
           "sentences": len(pool), "held_out_sentences": held, "cpu": cpu_line()}
    (work / "built.json").write_text(json.dumps(rec), encoding="utf-8")
    log(f"built {chunks:,} chunks, {plan.documents:,} documents in {secs['total']:.0f}s")
    return rec


# --------------------------------------------------------------------------------------------- measure
def queries_of(rec: dict, n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    held = rec["held_out_sentences"]
    if n > len(held):
        raise SystemExit(f"--queries {n}: the store holds out only {len(held)} sentences; rebuild with more")
    texts = [" ".join(s.split()[:QUERY_WORDS]) for s in held[:n]]
    gen = dense_generator(seed)
    rng = np.random.default_rng([seed, 5])
    return texts, dense_queries(gen, dense_sample(gen, n, rng), rng)


def _pcts(xs: list[float]) -> dict:
    a = np.array(xs)
    return {"min": float(a.min()), "p50": float(np.median(a)), "p95": float(np.percentile(a, 95)),
            "max": float(a.max()), "n": len(a)}


def _rotated(i: int) -> tuple[str, ...]:
    k = i % len(VARIANTS)
    return VARIANTS[k:] + VARIANTS[:k]


def measure(work: Path, rec: dict, n_queries: int, rounds: int = 2, seed: int = 0) -> dict:
    from rag.store.disk import DiskStore

    plan = Plan.make(rec["chunks"], rec["seed"])
    index_dir = work / "index"
    texts, qvecs = queries_of(rec, n_queries, seed)
    now = utc_stamp(dt.datetime.now(dt.UTC))
    filters = {"unrestricted": None, "public": Filters(access=Access(frozenset(), now)),
               "desk": Filters(access=Access(frozenset({DESK}), now))}
    hidden_docs = {v: {doc_name(int(d)) for d in plan.hidden_docs(v)} for v in VARIANTS}
    hidden_chunks = {v: plan.hidden_chunks(v) for v in VARIANTS}
    leaks = dict.fromkeys(VARIANTS, 0)
    checked = dict.fromkeys(VARIANTS, 0)

    def search(variant: str, i: int, n: int = N_CANDIDATES, mode: str = "hybrid") -> list:
        got = store.search(texts[i], qvecs[i], n, mode=mode, fusion="weighted", alpha=0.3, filters=filters[variant])
        access = filters[variant].access if filters[variant] is not None else None
        for c in got:
            checked[variant] += 1
            if c.chunk.doc_id in hidden_docs[variant] or (access is not None and access.denial(c.chunk.metadata)):
                leaks[variant] += 1
        return got

    out: dict = {"now": now, "queries": n_queries, "rounds": rounds}
    t = time.perf_counter()
    store = DiskStore(index_dir)
    out["open_s"] = time.perf_counter() - t
    # One-time costs, on first use: Ruled (once per store version), the hidden set (once per desks and
    # passed embargoes), the faiss selector (once per hidden set). A first search would pay them.
    t = time.perf_counter()
    ruled = store.ruled()
    out["ruled_s"] = time.perf_counter() - t
    out["ruled_docs"] = len(ruled.docs)
    for v in ("public", "desk"):
        t = time.perf_counter()
        hidden = ruled.hidden_positions(filters[v].access)
        out[f"hidden_{v}_s"] = time.perf_counter() - t
        t = time.perf_counter()
        index_mod._excluding(hidden)
        out[f"selector_{v}_s"] = time.perf_counter() - t
        if not np.array_equal(hidden, hidden_chunks[v]):
            raise AssertionError(f"the store hides {len(hidden):,} chunks from {v}, the plan {len(hidden_chunks[v]):,}")
        out[f"hidden_{v}"] = len(hidden)
        out[f"hidden_docs_{v}"] = len(ruled.hidden_documents(filters[v].access))
    dense = store.dense
    out.update(dense_kind=dense.kind, nlist=dense.nlist, nprobe=store.nprobe, ntotal=dense.ntotal,
               dense_mib=dense.memory_bytes() / 2**20, db_mib=disk.path_of(index_dir).stat().st_size / 2**20)
    if dense.kind == "ivf":
        for v in ("public", "desk"):
            out[f"nprobe_{v}"] = min(dense.nlist, int(np.ceil(store.nprobe * dense.ntotal /
                                                                (dense.ntotal - out[f"hidden_{v}"]))))

    # Warm-up: every query once per variant (each term's document frequency is read once, then cached).
    t = time.perf_counter()
    for i in range(n_queries):
        for v in _rotated(i):
            search(v, i)
    out["warmup_s"] = time.perf_counter() - t
    log(f"warm-up: {n_queries} queries x {len(VARIANTS)} variants in {out['warmup_s']:.0f}s")

    gc.collect()
    lat: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(rounds):
        for i in range(n_queries):
            for v in _rotated(i):
                t = time.perf_counter()
                got = search(v, i)
                lat[v].append((time.perf_counter() - t) * 1000)
                del got
    out["hybrid"] = {v: _pcts(lat[v]) for v in VARIANTS}
    log("hybrid p50 ms: " + ", ".join(f"{v} {out['hybrid'][v]['p50']:.2f}" for v in VARIANTS))

    # Parts: dense alone and lexical alone, interleaved the same way (one round).
    for mode in ("dense", "lexical"):
        parts: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for i in range(n_queries):
            for v in _rotated(i):
                t = time.perf_counter()
                search(v, i, mode=mode)
                parts[v].append((time.perf_counter() - t) * 1000)
        out[mode] = {v: _pcts(parts[v]) for v in VARIANTS}
    # FTS5 statements per lexical search (untimed: a trace callback slows every statement).
    db = store._db()
    statements: list[str] = []
    db.set_trace_callback(statements.append)
    fts = {}
    for v in VARIANTS:
        ranked, refetched, per_term = 0, 0, 0
        for i in range(n_queries):
            statements.clear()
            search(v, i, mode="lexical")
            ordered = sum("ORDER BY s LIMIT" in s for s in statements)
            ranked += ordered
            refetched += ordered > 1
            per_term += sum("bm25(lex) FROM lex WHERE" in s for s in statements)
        fts[v] = {"ranked_queries": ranked / n_queries, "refetched": refetched / n_queries,
                  "per_term": per_term / n_queries}
    db.set_trace_callback(None)
    out["fts"] = fts

    out["recall"] = recall(store, plan, texts, qvecs, filters, hidden_chunks, search)
    out["leaks"], out["checked"] = leaks, checked
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    store.close()
    return out


def recall(store, plan: Plan, texts, qvecs: np.ndarray, filters, hidden_chunks, search) -> dict:
    """Recall@10 of the store's dense search against numpy's exact top-10 over the stored float32
    vectors of the chunks each variant may see."""
    db = disk.connect(store.index_dir)
    v = disk.live_version(db)
    exact = {name: (np.full((len(qvecs), 0), -np.inf, np.float32), np.zeros((len(qvecs), 0), np.int64))
             for name in VARIANTS}
    masks = {}
    for name in VARIANTS:
        mask = np.zeros(plan.chunks + 1, dtype=bool)
        mask[hidden_chunks[name]] = True
        masks[name] = mask
    for ids, vecs in disk.iter_vectors(db, disk.visible("c"), {"v": v}, DIM, block=100_000):
        scores = qvecs @ vecs.T
        for name in VARIANTS:
            s = np.where(masks[name][ids][None, :], -np.inf, scores)
            best_s, best_i = exact[name]
            s = np.concatenate([best_s, s], axis=1)
            i = np.concatenate([best_i, np.broadcast_to(ids, (len(qvecs), len(ids)))], axis=1)
            top = np.argpartition(-s, 9, axis=1)[:, :10]
            exact[name] = (np.take_along_axis(s, top, axis=1), np.take_along_axis(i, top, axis=1))
    db.close()
    out = {}
    for name in VARIANTS:
        truth = exact[name][1]
        for n in (10, N_CANDIDATES):
            shares = []
            for q in range(len(qvecs)):
                got = [plan.row_id(c.chunk.chunk_id) for c in search(name, q, n=n, mode="dense")[:10]]
                shares.append(len(set(got) & set(truth[q].tolist())) / 10)
            out[f"{name}@{n}"] = float(np.mean(shares))
    return out


# ---------------------------------------------------------------------------------------------- report
def render(args, rec: dict, r: dict, load: tuple[float, float], seconds: float) -> str:
    plan = Plan.make(rec["chunks"], rec["seed"])
    kinds = {KIND_NAMES[k]: int((plan.kinds == k).sum()) for k in KIND_NAMES}
    h, base = r["hybrid"], r["hybrid"]["unrestricted"]["p50"]
    ratio = h["public"]["p50"] / base
    rc = r["recall"]
    bs = rec["seconds"]
    lines = [
        "# Access rules at scale (issue 25, acceptance point 4)",
        "",
        f"Generated by `PYTHONPATH=. .venv/bin/python -m eval.bench.access --chunks {rec['chunks']} "
        f"--queries {args.queries} --rounds {args.rounds}` on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC "
        f"({seconds / 60:.0f} min measuring; load average {load[0]:.2f} at start, {load[1]:.2f} at end).",
        "",
        f"- {cpu_line()}",
        f"- faiss {index_mod.faiss.__version__}; one query at a time, faiss on "
        f"{index_mod.SINGLE_QUERY_THREADS} thread(s); peak RSS of the measuring process {r['peak_rss_mib']:,.0f} MiB",
        f"- Store: {rec['chunks']:,} chunks, {plan.documents:,} documents; {r['dense_kind']} "
        f"{'nlist ' + str(r['nlist']) + ', ' if r['nlist'] else ''}nprobe {r['nprobe']}, {r['dense_mib']:,.0f} MiB in "
        f"memory; store.sqlite {r['db_mib']:,.0f} MiB. Built {rec['built_at']} in {bs['total'] / 60:.1f} min "
        f"(sentences {bs['sentences']:.0f}s, SQLite rows incl. FTS5 {bs['rows']:.0f}s, dense index "
        f"{bs['dense']:.0f}s); text from {rec['sentences']:,} docstring sentences, vectors from "
        "eval/bench/scale.py's generator (see the script's docstring).",
        f"- Rules: {', '.join(f'{n} {c:,}' for n, c in kinds.items())} documents. Hidden from the public principal: "
        f"{r['hidden_docs_public']:,} documents ({r['hidden_docs_public'] / plan.documents:.1%}), "
        f"{r['hidden_public']:,} chunks ({r['hidden_public'] / rec['chunks']:.1%}); from the "
        f"\"{DESK}\" desk: {r['hidden_docs_desk']:,} documents, {r['hidden_desk']:,} chunks.",
        "",
        f"Hybrid search: `DiskStore.search(query, vector, {N_CANDIDATES}, mode=\"hybrid\", fusion=\"weighted\", "
        f"alpha=0.3)`, {args.queries} queries (12 words of held-out sentences) x {args.rounds} rounds per variant, "
        "interleaved per query after a warm-up pass; ms.",
        "",
        "| principal | filters | min | p50 | p95 | max | p50 / unrestricted | dense-only p50 | lexical-only p50 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    described = {"unrestricted": "None", "public": "Access(desks={})", "desk": f"Access(desks={{{DESK}}})"}
    for v in VARIANTS:
        x = h[v]
        lines.append(f"| {v} | `{described[v]}` | {x['min']:.2f} | {x['p50']:.2f} | {x['p95']:.2f} | {x['max']:.2f} | "
                     f"{x['p50'] / base:.2f}x | {r['dense'][v]['p50']:.2f} | {r['lexical'][v]['p50']:.2f} |")
    lines += [
        "",
        "Recall@10 of dense search (the store's dense index, its candidates re-scored exactly) against numpy's exact "
        "top-10 over the stored float32 vectors of the chunks the principal may see: n=10, and the first "
        f"10 of n={N_CANDIDATES} (what hybrid fuses).",
        "",
        "| principal | recall@10 (n=10) | recall@10 (n=50) | candidates checked | leaks |",
        "|---|---:|---:|---:|---:|",
    ]
    for v in VARIANTS:
        leak = str(r["leaks"][v]) if v != "unrestricted" else "n/a"
        lines.append(f"| {v} | {rc[f'{v}@10']:.3f} | {rc[f'{v}@{N_CANDIDATES}']:.3f} | {r['checked'][v]:,} | {leak} |")
    fts = r["fts"]
    lines += [
        "",
        "Where the time goes:",
        "",
        f"- One-time, per store version: reading the ruled documents (`Ruled`, {r['ruled_docs']:,} documents) "
        f"{r['ruled_s'] * 1000:,.0f} ms; per principal (desks, passed embargoes): the hidden set "
        f"{r['hidden_public_s'] * 1000:.1f} ms (public) / {r['hidden_desk_s'] * 1000:.1f} ms (desk) and its faiss "
        f"selector {r['selector_public_s'] * 1000:.1f} ms / {r['selector_desk_s'] * 1000:.1f} ms. Opening the "
        f"store {r['open_s']:.1f}s; warm-up pass {r['warmup_s']:.0f}s.",
    ]
    if r["dense_kind"] == "ivf":
        lines.append(f"- Dense: IVF lists probed widen with the hidden share: nprobe {r['nprobe']} unrestricted, "
                     f"{r['nprobe_public']} public, {r['nprobe_desk']} desk (of {r['nlist']}); dense-only p50 "
                     f"{r['dense']['public']['p50'] / r['dense']['unrestricted']['p50']:.2f}x unrestricted.")
    lines.append(
        f"- Lexical: FTS5 ranked queries per search {fts['unrestricted']['ranked_queries']:.2f} unrestricted, "
        f"{fts['public']['ranked_queries']:.2f} public, {fts['desk']['ranked_queries']:.2f} desk (searches that "
        f"re-fetched because hidden chunks filled the first page: {fts['public']['refetched']:.0%} public, "
        f"{fts['desk']['refetched']:.0%} desk); per-term BM25 queries per search "
        f"{fts['unrestricted']['per_term']:.2f} / {fts['public']['per_term']:.2f} / {fts['desk']['per_term']:.2f}; "
        f"lexical-only p50 {r['lexical']['public']['p50'] / r['lexical']['unrestricted']['p50']:.2f}x unrestricted.")
    leaks = r["leaks"]["public"] + r["leaks"]["desk"]
    ok_ratio, ok_recall = ratio <= 1.5, min(rc["public@10"], rc["unrestricted@10"]) >= 0.95
    lines += [
        "",
        f"**Target** (p50 public <= 1.5x unrestricted, recall@10 >= 0.95, no leaks): p50 ratio {ratio:.2f}x "
        f"({'met' if ok_ratio else 'NOT met'}); recall@10 {rc['public@10']:.3f} public, "
        f"{rc['unrestricted@10']:.3f} unrestricted ({'met' if ok_recall else 'NOT met'}); "
        f"{leaks} leaks in {r['checked']['public'] + r['checked']['desk']:,} restricted candidates.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chunks", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2, help="measured passes over the queries per variant")
    ap.add_argument("--work", type=Path, default=Path("/tmp/access-bench"))
    ap.add_argument("--out", type=Path, default=EVAL_DIR / "ACCESS.md")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sentences", type=int, default=100_000, help="docstring sentences to draw text from, at most")
    args = ap.parse_args(argv)
    report, results = run(args)
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    leaks = results["leaks"]["public"] + results["leaks"]["desk"]
    assert leaks == 0, f"{leaks} candidates of hidden documents were returned (see {args.out})"
    return 0


def run(args) -> tuple[str, dict]:
    rec = build_store(args.work, args.chunks, seed=args.seed, sentence_limit=args.sentences,
                      held_out=max(1000, args.queries))
    load0, t = os.getloadavg()[0], time.perf_counter()
    results = measure(args.work, rec, args.queries, args.rounds, args.seed)
    report = render(args, rec, results, (load0, os.getloadavg()[0]), time.perf_counter() - t)
    return report, results


if __name__ == "__main__":
    raise SystemExit(main())
