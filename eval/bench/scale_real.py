"""Scale benchmark of the disk store (rag/store/disk.py) on real text, at 10k / 100k / 1M chunks.

    PYTHONPATH=. .venv/bin/python -m eval.bench.scale_real [--sizes 10000,100000,1000000] [--work /tmp/scale]
                                                           [--out eval/SCALE.md]

Not a test: it measures and prints min/median/max, then appends a section to --out.

Text: docstrings of the standard library and the installed packages (eval/bench/corpus.py's source),
300-1,500 characters, as JSONL articles with a publisher and a publication date. The first stage
ingests about 10k chunks of distinct text with `rag.ingest` (embedding every chunk); later stages
repeat those documents under new ids, so the embedding is free (the store reuses the stored vector
of an identical text) but chunking, tokenising and writing are paid per chunk: up to --real-max
chunks through `rag.ingest`, the rest by copying rows inside SQLite (eval-only: the same rows an
ingest of those repeated documents writes; their FAISS index is then rebuilt by the store's own code).
At every stage:
  - incremental add: `rag ingest` of 1,000 new documents (distinct text, embedded), a fresh process,
    timed end to end (model loading included);
  - hybrid search: DiskStore.search(query, vector, 50, weighted fusion), as the Retriever calls it,
    one query at a time (query vectors computed beforehand);
  - recall@10 of the IVF-SQ8 index (with the store's exact re-scoring) against exact search over
    every stored vector; with repeated texts the exact top-10 holds ties, so a result counts when
    its exact score reaches the exact 10th-best score (tie-aware recall);
  - `rag serve` peak RSS (VmHWM) after answering a few questions through /api/ask.
A last section measures recall of the same IVF-SQ8 index on 1M distinct synthetic vectors
(eval/bench/scale.py's generator), where duplicates cannot help.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import numpy as np

from eval.metrics import neighbour_recall
from eval.paths import EVAL_DIR, ROOT
from rag.calibration import docstrings
from rag.store import disk

PUBLISHERS = ["Reuters", "AP", "AFP", "Beta", "Tanjug"]
QUESTIONS = ["What does the function return when the file is missing?", "How is the timeout handled?",
             "Which encoding is used by default?"]


def stats(xs: list[float]) -> str:
    xs = sorted(xs)
    return f"{xs[0]:.1f} / {np.median(xs):.1f} / {xs[-1]:.1f}"


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q))


def gather(n_docs: int) -> list[dict]:
    docs: list[dict] = []
    rng = random.Random(0)
    seen: set[str] = set()
    for root in (Path(sysconfig.get_paths()["stdlib"]), Path(sysconfig.get_paths()["purelib"])):
        for name, text in docstrings(root, 300, 1500, skip={"test", "tests"}):
            if text in seen:
                continue
            seen.add(text)
            day = dt.date(2000, 1, 1) + dt.timedelta(days=rng.randrange(9000))
            docs.append({"id": f"d{len(docs):06d}", "title": name, "text": text,
                         "publisher": rng.choice(PUBLISHERS), "published": day.isoformat()})
            if len(docs) == n_docs:
                return docs
    return docs


def write_jsonl(path: Path, docs: list[dict]) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for d in docs:
            fh.write(json.dumps(d, ensure_ascii=False) + "\n")
    return path


def env_for(index_dir: Path) -> dict:
    env = dict(os.environ, RAG_EMBEDDED_BACKEND="disk", RAG_INDEX_DIR=str(index_dir), PYTHONPATH=str(ROOT))
    return env


def cli(args: list[str], env: dict) -> tuple[float, str]:
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", "import sys; from rag.cli import main; sys.exit(main())", *args],
                         env=env, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"rag {' '.join(args)} failed:\n{out.stdout}\n{out.stderr[-3000:]}")
    return time.perf_counter() - t, out.stdout.strip()


def clone_rows(index_dir: Path, target: int, params) -> tuple[int, float]:
    """Grow the live version to `target` chunks by copying documents under new ids, inside SQLite."""
    t = time.perf_counter()
    db = disk.connect(index_dir)
    live = disk.live_version(db)
    info = disk.version_row(db, live)
    have, v = int(info["chunks"]), live + 1
    docs = db.execute(f"SELECT d.doc_id FROM docs d WHERE {disk.visible('d')} ORDER BY d.rid", {"v": live}).fetchall()
    per_doc = have / max(1, len(docs))
    db.execute("BEGIN IMMEDIATE")
    added_docs, rep = 0, 0
    while have < target:
        rep += 1
        for (doc_id,) in docs:
            if have >= target:
                break
            new = f"{doc_id}-c{v}-{rep}"
            db.execute(f"""INSERT INTO docs (doc_id, hash, source, title, metadata, doc_key, meta_folded, published,
                                             added_in)
                           SELECT ?, hash, source, title, metadata, lower(?), meta_folded, published, ? FROM docs d
                           WHERE d.doc_id = ? AND {disk.visible('d', '?')}""", (new, new, v, doc_id, live, live))
            before = db.execute("SELECT coalesce(max(id), 0) FROM chunks").fetchone()[0]
            db.execute(f"""INSERT INTO chunks (doc_id, ord, chunk_id, start, "end", text, text_key, vector, added_in)
                           SELECT ?, ord, replace(chunk_id, ?, ?), start, "end", text, text_key, vector, ? FROM chunks c
                           WHERE c.doc_id = ? AND {disk.visible('c', '?')} ORDER BY c.ord""",
                       (new, doc_id, new, v, doc_id, live, live))
            after = db.execute("SELECT max(id) FROM chunks").fetchone()[0]
            db.execute(f"""INSERT INTO lex (rowid, tokens) SELECT n.id, l.tokens FROM chunks n
                           JOIN chunks o ON o.doc_id = ? AND o.ord = n.ord AND {disk.visible('o', '?')}
                           JOIN lex l ON l.rowid = o.id WHERE n.id > ? AND n.id <= ?""",
                       (doc_id, live, live, before, after))
            have += after - before
            added_docs += 1
    dense, trained = disk.build_dense(db, v, have, int(info["settings"]["dimension"]),
                                      ann_threshold=params.ann_threshold, nprobe=params.ivf_nprobe)
    disk.save_dense(index_dir, v, dense)
    name, created = disk.new_version_name()
    settings = {**info["settings"], "dense": dense.kind, "trained_on": trained}
    db.execute("INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?)",
               (v, name, created, int(info["documents"]) + added_docs, have, json.dumps(settings)))
    db.execute("INSERT OR REPLACE INTO meta VALUES ('live', ?)", (str(v),))
    db.execute("COMMIT")
    disk.drop_other_dense(index_dir, v)
    db.close()
    del per_doc
    return have, time.perf_counter() - t


def _has_live(index_dir: Path) -> bool:
    if not disk.is_disk_store(index_dir):
        return False
    db = disk.connect(index_dir)
    try:
        return disk.live_version(db) is not None
    finally:
        db.close()


def serve_rss(index_dir: Path) -> tuple[float, float]:
    """Peak RSS (MiB) of `rag serve` after answering QUESTIONS, and seconds per answer (median)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Threshold 0: every question is answered by the generator, so its model is loaded and counted.
    env = {**env_for(index_dir), "RAG_REFUSAL_THRESHOLD": "0"}
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from rag.cli import main; sys.exit(main())",
                             "serve", "--port", str(port)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/api/health", timeout=5).read()
                break
            except Exception:
                if proc.poll() is not None:
                    raise SystemExit(f"rag serve died: {proc.stderr.read()[-3000:]}") from None
                time.sleep(1)
        times = []
        for q in QUESTIONS:
            t = time.perf_counter()
            req = urllib.request.Request(base + "/api/ask", data=json.dumps({"question": q}).encode(),
                                         headers={"Content-Type": "application/json"})
            answer = json.loads(urllib.request.urlopen(req, timeout=600).read())
            times.append(time.perf_counter() - t)
            print(f"  asked {q!r}: refused={answer.get('refused')}, {times[-1]:.1f}s, "
                  f"{len(answer.get('citations') or [])} citations", flush=True)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        hwm = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
        return hwm / 1024, float(np.median(times))
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def search_figures(index_dir: Path, queries: list[str], qvecs: np.ndarray) -> dict:
    from rag.store.disk import DiskStore

    store = DiskStore(index_dir)
    for q, v in zip(queries[:5], qvecs[:5], strict=True):  # warm the page cache a little, as a running server has it
        store.search(q, v, 50, mode="hybrid", fusion="weighted", alpha=0.3)
    # "hybrid" comes first, when the store sees each query's terms for the first time (their document
    # frequencies are then read from FTS5); "hybrid again" repeats the queries, as a running server
    # that has met those words before answers them.
    lat = {"hybrid": [], "dense": [], "lexical": [], "hybrid again": []}
    for mode in lat:
        for q, v in zip(queries, qvecs, strict=True):
            t = time.perf_counter()
            store.search(q, v, 50, mode=mode.split()[0], fusion="weighted", alpha=0.3)
            lat[mode].append((time.perf_counter() - t) * 1000)
    # Exact ground truth over every stored vector, with multiplicity (repeated texts are ties).
    db = sqlite3.connect(disk.path_of(index_dir))
    live = disk.live_version(db)
    keys, vecs, mult = {}, [], []
    for k, vec in db.execute(f"SELECT c.text_key, c.vector FROM chunks c WHERE {disk.visible('c')}", {"v": live}):
        if k in keys:
            mult[keys[k]] += 1
        else:
            keys[k] = len(vecs)
            vecs.append(np.frombuffer(vec, dtype=np.float32))
            mult.append(1)
    db.close()
    matrix, mult = np.stack(vecs), np.array(mult)
    recalls = []
    for q, v in zip(queries, qvecs, strict=True):
        scores = matrix @ v
        order = np.argsort(-scores)
        tenth = scores[order[np.searchsorted(np.cumsum(mult[order]), 10)]]
        got = store.search(q, v, 10, mode="dense", fusion="weighted", alpha=0.3)[:10]
        recalls.append(sum(1 for c in got if float(c.vector @ v) >= tenth - 1e-5) / 10)
    out = {"lat": lat, "recall": float(np.mean(recalls)), "distinct": len(vecs), "dense_kind": store.dense.kind,
           "nlist": store.dense.nlist, "dense_mib": store.dense.memory_bytes() / 2**20,
           "db_mib": disk.path_of(index_dir).stat().st_size / 2**20}
    store.close()
    return out


def synthetic_recall(n: int, n_queries: int) -> dict:
    """IVF-SQ8 (IdIndex, default nlist/nprobe) + exact re-scoring of 2x candidates vs exact, on distinct vectors."""
    from eval.bench.scale import dense_generator, dense_queries, dense_sample
    from rag.index import IVF_TRAIN_POINTS_PER_LIST, IdIndex, default_nlist

    gen = dense_generator()
    rng = np.random.default_rng(0)
    x = dense_sample(gen, n, rng)
    queries = dense_queries(gen, dense_sample(gen, n_queries, rng), rng)
    t = time.perf_counter()
    rng = np.random.default_rng(0)
    sample = x[np.sort(rng.choice(n, min(n, default_nlist(n) * IVF_TRAIN_POINTS_PER_LIST), replace=False))]
    index = IdIndex.train_ivf(sample, n, nprobe=disk.DEFAULT_NPROBE)
    for s in range(0, n, 100_000):
        index.add(np.arange(s, min(n, s + 100_000)), x[s:s + 100_000])
    build = time.perf_counter() - t
    tops, truths, lat = [], [], []
    for q in queries:
        t = time.perf_counter()
        _, ids = index.search(q, 10 * disk.RERANK_FACTOR)
        exact = x[ids] @ q
        tops.append(ids[np.argsort(-exact)[:10]])
        lat.append((time.perf_counter() - t) * 1000)
        truths.append(np.argpartition(-(x @ q), 10)[:10])
    return {"n": n, "recall": neighbour_recall(truths, tops), "build_s": build, "p50": pct(lat, 50),
            "p95": pct(lat, 95),
            "mib": index.memory_bytes() / 2**20, "nlist": index.nlist}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--work", type=Path, default=Path("/tmp/scale-real"))
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--real-max", type=int, default=100_000, help="chunks ingested through rag.ingest at most")
    ap.add_argument("--synthetic", type=int, default=1_000_000, help="distinct synthetic vectors for recall (0: skip)")
    ap.add_argument("--no-serve", action="store_true")
    ap.add_argument("--synthetic-only", action="store_true", help="with --remeasure: only the synthetic recall")
    ap.add_argument("--keep-store", action="store_true", help="continue from the store in --work (resume a run)")
    ap.add_argument("--first-stage", type=int, default=0, help="with --keep-store: the index of the first size given")
    ap.add_argument("--out", type=Path, default=EVAL_DIR / "SCALE.md")
    ap.add_argument("--remeasure", action="store_true",
                    help="only measure search, recall and serve RSS of the store already in --work (no growth, no add)")
    args = ap.parse_args()
    if args.remeasure:
        return remeasure(args)
    sizes = [int(s) for s in args.sizes.split(",")]
    from rag.config import load_settings
    from rag.pipeline import Engine

    t_run = time.time()
    load_start = os.getloadavg()
    work = args.work
    index_dir = work / "index"
    # A fresh store each run; the embedding cache of an interrupted run is kept (it is keyed by text).
    for child in (work.iterdir() if work.exists() and not args.keep_store else []):
        if child != index_dir:
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    for child in (index_dir.iterdir() if index_dir.exists() and not args.keep_store else []):
        if not child.name.startswith("embed-cache.sqlite"):
            child.unlink()
    index_dir.mkdir(parents=True, exist_ok=True)
    engine = Engine(load_settings(index_dir=index_dir, embedded_backend="disk"))
    params = engine.index_params
    t = time.perf_counter()
    n_base = 7407 if args.keep_store else int(sizes[0] / 1.35)  # 7,407: the first stage's 10k
    pool = gather(n_base + args.queries + 1000 * (len(sizes) + args.first_stage))
    print(f"gathered {len(pool)} docstrings in {time.perf_counter() - t:.0f}s", flush=True)
    base, rest = pool[:n_base], pool[n_base:]
    query_docs, new_docs = rest[:args.queries], rest[args.queries:]
    queries = [" ".join(d["text"].split()[:12]) for d in query_docs]
    qvecs = engine.embedder.embed(queries)
    rows = []
    real_ingested = 0
    for si, size in enumerate(sizes, start=args.first_stage):
        row = {"size": size}
        have = engine.retriever.store.counts()["chunks"] if _has_live(index_dir) else 0
        engine._retriever = None
        # Grow: the first stage embeds distinct text; later ones repeat it under new ids.
        if have == 0:
            path = write_jsonl(work / "base.jsonl", base)
            t = time.perf_counter()
            rep = engine.ingest([path])
            row["grow"] = f"rag.ingest, {rep.chunks:,} chunks ({rep.embedded_chunks:,} embedded)"
            row["rate"] = rep.chunks / (time.perf_counter() - t)
            real_ingested = rep.chunks
            have = rep.chunks
        parts = []
        want = min(size, args.real_max) - have
        if want > 1000:
            reps, r = [], 0
            while sum(len(x) for x in reps) * 1.35 < want:
                r += 1
                reps.append([{**d, "id": f"{d['id']}-s{si}r{r}"} for d in base])
            docs = [d for part in reps for d in part][:int(want / 1.35)]
            path = write_jsonl(work / f"repeat-{si}.jsonl", docs)
            t = time.perf_counter()
            rep = engine.ingest([path])
            secs = time.perf_counter() - t
            added = rep.chunks - have
            parts.append(f"rag.ingest of {len(docs):,} repeated documents, {added:,} chunks, "
                         f"{added / secs:.0f} chunks/s")
            row["rate"] = added / secs
            real_ingested += added
            have = rep.chunks
        if have < size:
            have2, secs = clone_rows(index_dir, size, params)
            parts.append(f"SQL copy of {have2 - have:,} chunks in {secs:.0f}s")
            have = have2
        if parts:
            row["grow"] = "; ".join(parts)
        engine._retriever = None
        print(f"[{size:,}] grown: {row['grow']}", flush=True)
        # Incremental add of 1,000 new documents, end to end in a fresh process.
        new = new_docs[1000 * si:1000 * (si + 1)]
        path = write_jsonl(work / f"new-{si}.jsonl", new)
        secs, out = cli(["ingest", "--quiet", str(path)], env_for(index_dir))
        row["add_s"], row["add_out"] = secs, out.splitlines()[0]
        print(f"[{size:,}] add 1,000 docs: {secs:.1f}s  {row['add_out']}", flush=True)
        row.update(search_figures(index_dir, queries, qvecs))
        lat = row["lat"]["hybrid"]
        again = row["lat"]["hybrid again"]
        print(f"[{size:,}] hybrid ms min/median/max {stats(lat)} p95 {pct(lat, 95):.1f}; again {stats(again)} "
              f"p95 {pct(again, 95):.1f}; dense p50 {pct(row['lat']['dense'], 50):.1f}; lexical p50 "
              f"{pct(row['lat']['lexical'], 50):.1f}; recall@10 {row['recall']:.3f}", flush=True)
        if not args.no_serve:
            row["rss"], row["answer_s"] = serve_rss(index_dir)
            print(f"[{size:,}] serve VmHWM {row['rss']:.0f} MiB", flush=True)
        rows.append(row)
    synth = synthetic_recall(args.synthetic, args.queries) if args.synthetic else None
    if synth:
        print(f"synthetic {synth}", flush=True)
    write_report(args, rows, synth, load_start, t_run)


def remeasure(args) -> None:
    from rag.config import load_settings
    from rag.pipeline import Engine

    if args.synthetic_only:
        print(synthetic_recall(args.synthetic, args.queries), flush=True)
        return
    index_dir = args.work / "index"
    engine = Engine(load_settings(index_dir=index_dir, embedded_backend="disk"))
    # The benchmark's held-out queries: the docstrings after the first stage's 7,407 (none is indexed).
    queries = [" ".join(d["text"].split()[:12]) for d in gather(7407 + args.queries)[7407:]]
    qvecs = engine.embedder.embed(queries)
    load = os.getloadavg()
    r = search_figures(index_dir, queries, qvecs)
    chunks = engine.retriever.store.counts()["chunks"]
    h = r["lat"]["hybrid"]
    print(f"{chunks:,} chunks, load {load[0]:.1f}: hybrid ms min/median/max {stats(h)}, p50 {pct(h, 50):.1f}, "
          f"p95 {pct(h, 95):.1f}; dense p50 {pct(r['lat']['dense'], 50):.1f} p95 {pct(r['lat']['dense'], 95):.1f}; "
          f"lexical p50 {pct(r['lat']['lexical'], 50):.1f} p95 {pct(r['lat']['lexical'], 95):.1f}; "
          f"hybrid again min/median/max {stats(r['lat']['hybrid again'])} p95 {pct(r['lat']['hybrid again'], 95):.1f}; "
          f"recall@10 {r['recall']:.3f} ({r['distinct']:,} distinct vectors); {r['dense_kind']} nlist {r['nlist']}, "
          f"{r['dense_mib']:.0f} MiB", flush=True)
    if not args.no_serve:
        rss, answer = serve_rss(index_dir)
        print(f"serve VmHWM {rss:.0f} MiB (median answer {answer:.1f}s); load {os.getloadavg()[0]:.1f}", flush=True)


def write_report(args, rows, synth, load_start, t_run) -> None:
    flags = sorted(set(subprocess.run("grep -o 'avx512_vnni\\|avx2\\|avx512f' /proc/cpuinfo", shell=True,
                                      capture_output=True, text=True).stdout.split()))
    load_end = os.getloadavg()
    lines = [
        "",
        "## Disk store on real text (rag/store/disk.py, the default embedded store)",
        "",
        f"Generated by `PYTHONPATH=. .venv/bin/python -m eval.bench.scale_real --sizes {args.sizes} "
        f"--queries {args.queries} --real-max {args.real_max}` "
        f"on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC in {(time.time() - t_run) / 60:.0f} min. "
        f"CPU flags: {', '.join(flags)}; {os.cpu_count()} cores shared with other work; load average "
        f"{load_start[0]:.1f} at start, {load_end[0]:.1f} at end.",
        "",
        "Text: standard-library and installed-package docstrings (300-1,500 characters) as articles; "
        "the first stage embeds them, later stages repeat them under new ids (see the script's docstring). "
        "Latency: `DiskStore.search(query, vector, 50)` per query (min / median / max, p95), query vectors "
        "computed beforehand. Recall@10: dense search (IVF-SQ8, 2x candidates re-scored exactly) vs exact "
        "search over all stored vectors, tie-aware (repeated texts). Add: `rag ingest` of 1,000 new "
        "documents in a fresh process, model loading included. RSS: `rag serve` VmHWM after answering "
        f"{len(QUESTIONS)} questions (embedder, llama.cpp generator, spaCy and the store).",
        "",
        "| chunks | grown by | ingest chunks/s | add 1,000 docs s | hybrid ms min/med/max | hybrid p50 | hybrid p95 "
        "| hybrid again p50 / p95 | dense p50 | lexical p50 | recall@10 | dense index | index MiB (RAM) "
        "| store.sqlite MiB | serve VmHWM MiB |",
        "|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        h, again = r["lat"]["hybrid"], r["lat"]["hybrid again"]
        lines.append(
            f"| {r['size']:,} | {r['grow']} | {r.get('rate', float('nan')):.0f} | {r['add_s']:.1f} | {stats(h)} | "
            f"{pct(h, 50):.1f} | {pct(h, 95):.1f} | {pct(again, 50):.1f} / {pct(again, 95):.1f} | "
            f"{pct(r['lat']['dense'], 50):.1f} | {pct(r['lat']['lexical'], 50):.1f} | "
            f"{r['recall']:.3f} | {r['dense_kind']}{' nlist ' + str(r['nlist']) if r['nlist'] else ''} | "
            f"{r['dense_mib']:.0f} | {r['db_mib']:.0f} | {r.get('rss', float('nan')):.0f} |")
    lines.append("")
    for r in rows:
        lines.append(f"- {r['size']:,}: add: `{r['add_out']}`; {r['distinct']:,} distinct vectors")
    if synth:
        lines += ["", f"Distinct synthetic vectors (eval/bench/scale.py's generator), {synth['n']:,}: IVF-SQ8 nlist "
                  f"{synth['nlist']}, nprobe {disk.DEFAULT_NPROBE}, 20 candidates re-scored exactly: "
                  f"recall@10 {synth['recall']:.3f}, "
                  f"p50 {synth['p50']:.1f} ms, p95 {synth['p95']:.1f} ms, build {synth['build_s']:.0f} s, "
                  f"{synth['mib']:.0f} MiB."]
    text = "\n".join(lines) + "\n"
    print(text)
    with args.out.open("a", encoding="utf-8") as fh:
        fh.write(text)


if __name__ == "__main__":
    main()
