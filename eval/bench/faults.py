"""Fault and load benchmark (issue 14, acceptance 2): prints figures, asserts nothing.

1. kill -9 at five moments of an ingest of 5,000 documents into an existing index (while reading,
   while chunking, after the first embedding batch, half-way through embedding, while the new
   snapshot is written): after each, the previous index must still answer, and a rerun must
   re-embed at most 10% of what the killed run had already embedded (the on-disk cache).
2. 100 concurrent /api/ask against `rag serve` with a queue of 32, then 34 concurrent streams
   (as many as 2 workers + 32 places hold): status counts, whether every 200 answers its own
   question, /api/health latency all the while, and the time to each stream's first event.
3. Peak RSS (VmHWM) of `rag ingest` of one 50 MB text file, and when its first output came.

    python -m eval.bench.faults [--docs 5000] [--backend disk|folder] [--concurrent 100] [--big-mb 50]
                                [--skip kill,load,big]

The kill moments are set by a hook in the child that sends itself SIGKILL at the chosen point,
which is what kill -9 from outside does, but at a reproducible moment.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from eval.bench.machine import cpu_line
from eval.paths import CORPUS_DIR, DEFAULT_QA, ROOT

PROBE = "Kostunica 48.96"

CHILD = r"""
import os, signal, sys
moment = os.environ["BENCH_KILL_AT"]
def die():
    print("KILLED AT " + moment, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
def count_then_die(module, name, at):
    real = getattr(module, name)
    seen = [0]
    def wrapper(*a, **k):
        out = real(*a, **k)
        seen[0] += 1
        if seen[0] == at:
            die()
        return out
    setattr(module, name, wrapper)
import rag.loaders.base, rag.ingest, rag.embedcache, rag.store.embedded, rag.store.disk
disk = os.environ["RAG_EMBEDDED_BACKEND"] == "disk"
if moment == "reading":
    count_then_die(rag.loaders.base, "make_document", int(os.environ["BENCH_HALF_DOCS"]))
elif moment == "chunking":  # every store's writer chunks through rag.ingest: half-way through the documents
    count_then_die(rag.ingest, "chunk_document", int(os.environ["BENCH_HALF_DOCS"]))
elif moment == "embedding-first-batch":
    count_then_die(rag.embedcache.EmbedCache, "put_many", 1)
elif moment == "embedding-half":
    count_then_die(rag.embedcache.EmbedCache, "put_many", int(os.environ["BENCH_HALF_BATCHES"]))
elif moment == "writing-snapshot":
    # The folder store fsyncs the new snapshot folder; the disk store writes the FAISS file of the
    # new version just before its transaction commits.
    count_then_die(rag.store.disk if disk else rag.store.embedded, "save_dense" if disk else "_fsync_tree", 1)
from rag.cli import main
sys.exit(main(sys.argv[1:]))
"""
MOMENTS = ("reading", "chunking", "embedding-first-batch", "embedding-half", "writing-snapshot")


def stats(values: list[float]) -> str:
    if not values:
        return "n/a"
    v = sorted(values)

    def p(q: float) -> float:
        return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]

    return (f"min {v[0]*1000:.0f} / p50 {statistics.median(v)*1000:.0f} / p95 {p(0.95)*1000:.0f} / "
            f"p99 {p(0.99)*1000:.0f} / max {v[-1]*1000:.0f} ms (n={len(v)})")


def _env(index_dir: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "RAG_INDEX_DIR": str(index_dir), "HF_HUB_OFFLINE": "1", **extra}


def _top(index_dir: Path, embedder, backend: str) -> tuple[str, int]:
    from rag.config import load_settings
    from rag.pipeline import Engine

    engine = Engine(load_settings(index_dir=index_dir, embedded_backend=backend), embedder=embedder)
    return engine.search(PROBE, k=1)[0].chunk.chunk_id, engine.retriever.store.counts()["documents"]


def bench_kills(work: Path, n_docs: int, backend: str) -> None:
    from eval.bench.corpus import write_corpus
    from rag import embedcache
    from rag.config import load_settings
    from rag.ingest import EMBED_BATCH, ingest
    from rag.models import make_embedder
    from rag.store import embedded_writer

    s = load_settings()
    embedder = make_embedder(s.embedder_backend, s.embedder, cache_dir=s.model_cache)
    corpus = write_corpus(work / "docs", n_docs)
    base = work / "base-index"
    shutil.rmtree(base, ignore_errors=True)
    ingest([CORPUS_DIR], embedded_writer(base, backend, use_cache=False), embedder=embedder)
    (base / embedcache.FILE).unlink(missing_ok=True)
    before = _top(base, embedder, backend)
    est_chunks = int(n_docs * 1.4)
    print(f"\n## kill -9 during an ingest of {n_docs} documents ({corpus.stat().st_size/1e6:.1f} MB JSONL) "
          f"into an index of {before[1]} documents, {backend} store")
    print("| moment | killed | previous index answers | committed vectors at kill | rerun embedded / from cache "
          "| re-embedded of committed | rerun s |")
    print("|---|---|---|---|---|---|---|")
    for moment in MOMENTS:
        index_dir = work / f"index-{moment}"
        shutil.rmtree(index_dir, ignore_errors=True)
        shutil.copytree(base, index_dir)
        env = _env(index_dir, RAG_EMBEDDED_BACKEND=backend, BENCH_KILL_AT=moment, BENCH_HALF_DOCS=str(n_docs // 2),
                   BENCH_HALF_BATCHES=str(max(2, est_chunks // EMBED_BATCH // 2)))
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", CHILD, "ingest", str(corpus), "--quiet"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=3600)
        killed = proc.returncode == -signal.SIGKILL and f"KILLED AT {moment}" in proc.stdout
        kill_s = time.perf_counter() - t0
        try:
            answers = _top(index_dir, embedder, backend) == before
        except Exception as exc:
            answers = f"no: {exc}"
        cache_file = index_dir / embedcache.FILE
        committed = 0
        if cache_file.exists():
            with sqlite3.connect(cache_file) as db:
                committed = db.execute("SELECT count(*) FROM vec").fetchone()[0]
        t1 = time.perf_counter()
        report = ingest([corpus], embedded_writer(index_dir, backend), embedder=embedder)
        rerun_s = time.perf_counter() - t1
        # Committed vectors the rerun did not reuse. The cache holds a repeated chunk text once while
        # the report counts each chunk, so the difference can go below zero: clamp it.
        again = max(0, committed - report.cached_chunks)
        share = f"{again} ({again / committed:.1%})" if committed else "0 (nothing embedded yet)"
        print(f"| {moment} | {'yes' if killed else 'NO rc=' + str(proc.returncode)} after {kill_s:.1f}s | "
              f"{'yes' if answers is True else answers} | {committed} | {report.embedded_chunks} / "
              f"{report.cached_chunks} | {share} | {rerun_s:.1f} |")
    print(f"- A batch being embedded when the process dies is lost: at most {EMBED_BATCH} chunks "
          f"({EMBED_BATCH / max(1, report.chunks):.1%} of the {report.chunks} chunks of the final index).")


def _wait_health(url: str, timeout: float = 600) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"{url}/api/health", timeout=5)
            if r.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError("the server did not become healthy")


def bench_load(work: Path, concurrent: int, streams: int) -> None:
    import httpx

    from devtools.testing import free_port
    from rag.config import load_settings
    from rag.ingest import ingest
    from rag.models import make_embedder
    from rag.store import embedded_writer

    s = load_settings()
    index_dir = work / "serve-index"
    if not index_dir.exists():
        embedder = make_embedder(s.embedder_backend, s.embedder, cache_dir=s.model_cache)
        ingest([CORPUS_DIR], embedded_writer(index_dir), embedder=embedder)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = _env(index_dir, RAG_ANSWER_QUEUE_SIZE="32", RAG_FEEDBACK_LOG=str(work / "feedback.jsonl"))
    server = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_health(url)
        qa = [json.loads(line)["question"] for line in DEFAULT_QA.read_text(encoding="utf-8").splitlines()
              if line.strip()]
        questions = [qa[i % len(qa)] + ("" if i < len(qa) else f" ({i})") for i in range(concurrent + streams)]
        with httpx.Client(timeout=5) as c:  # one answer first: the model is loaded before the burst
            httpx.post(f"{url}/api/ask", json={"question": qa[0]}, timeout=600)
            workers = c.get(f"{url}/api/health").json()["queue"]
        health: list[float] = []
        stop = threading.Event()

        def poll() -> None:
            with httpx.Client(timeout=30) as c:
                while not stop.is_set():
                    t = time.perf_counter()
                    r = c.get(f"{url}/api/health")
                    if r.status_code == 200:
                        health.append(time.perf_counter() - t)
                    time.sleep(0.05)

        def ask(q: str) -> tuple[int, bool, float]:
            t = time.perf_counter()
            r = httpx.post(f"{url}/api/ask", json={"question": q}, timeout=900)
            own = r.status_code != 200 or r.json().get("question") == q
            return r.status_code, own, time.perf_counter() - t

        def stream(q: str) -> tuple[int, float | None, str]:
            t = time.perf_counter()
            with httpx.stream("POST", f"{url}/api/ask/stream", json={"question": q}, timeout=900) as r:
                if r.status_code != 200:
                    return r.status_code, None, ""
                first, last = None, ""
                for line in r.iter_lines():
                    if line.startswith("event: "):
                        first = first if first is not None else time.perf_counter() - t
                        last = line[7:]
                return 200, first, last

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        t0 = time.perf_counter()
        with ThreadPoolExecutor(concurrent) as pool:
            results = list(pool.map(ask, questions[:concurrent]))
        wall = time.perf_counter() - t0
        # Then as many concurrent streams as the line holds: each must hear `queued` at once.
        with ThreadPoolExecutor(streams) as pool:
            sresults = list(pool.map(stream, questions[concurrent:]))
        stop.set()
        poller.join()
        codes: dict[int, int] = {}
        for code, _, _ in results:
            codes[code] = codes.get(code, 0) + 1
        wrong = sum(1 for code, own, _ in results if code == 200 and not own)
        others = sum(n for code, n in codes.items() if code not in (200, 503))
        ok_lat = [d for code, _, d in results if code == 200]
        shed_lat = [d for code, _, d in results if code == 503]
        first = [f for code, f, _ in sresults if code == 200 and f is not None]
        scodes: dict[int, int] = {}
        for code, _, _ in sresults:
            scodes[code] = scodes.get(code, 0) + 1
        print(f"\n## {concurrent} concurrent /api/ask ({wall:.1f}s wall), then {streams} concurrent streams; "
              f"queue {workers['queue_size']}, {workers['workers']} answer workers")
        print(f"- /api/ask statuses: {codes}; errors other than 503: {others}; "
              f"200s answering another question: {wrong}")
        print(f"- /api/ask latency, 200s: {stats(ok_lat)}")
        print(f"- /api/ask latency, 503s: {stats(shed_lat)}")
        print(f"- streams: statuses {scodes}; last events {sorted({e for c, _, e in sresults if c == 200})}")
        print(f"- first stream event: {stats(first)}")
        print(f"- /api/health while loaded: {stats(health)}")
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def bench_big(work: Path, megabytes: int) -> None:
    from eval.bench.corpus import docstring_documents

    big = work / "big" / "big.txt"
    big.parent.mkdir(parents=True, exist_ok=True)
    docs = docstring_documents(5000)
    with big.open("w", encoding="utf-8") as f:
        written, i = 0, 0
        while written < megabytes * 1_000_000:
            # Every line made unique: the cleaner drops lines repeated verbatim (page chrome), which
            # would shrink a file of repeated docstrings to a fraction of its size.
            lines = [line for line in docs[i % len(docs)]["text"].splitlines() if line.strip()]
            text = "\n".join(f"{line} (part {i}.{j})" for j, line in enumerate(lines)) + "\n\n"
            f.write(text)
            written += len(text.encode("utf-8"))
            i += 1
    index_dir = work / "big-index"
    shutil.rmtree(index_dir, ignore_errors=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "ingest", str(big)], cwd=ROOT, env=_env(index_dir),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first_out: list[float] = []
    embed_start: list[float] = []
    tail: list[str] = []

    def read_err() -> None:
        buf = ""
        while True:
            ch = proc.stderr.read(1)
            if not ch:
                return
            if not first_out:
                first_out.append(time.perf_counter() - t0)
            buf += ch
            if "embedding" in buf and not embed_start:
                embed_start.append(time.perf_counter() - t0)
            if ch in "\r\n":
                tail.append(buf.strip())
                buf = ""

    reader = threading.Thread(target=read_err, daemon=True)
    reader.start()
    peak_kb = 0
    while proc.poll() is None:
        try:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak_kb = max(peak_kb, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.2)
    out = proc.stdout.read()
    reader.join(timeout=5)
    wall = time.perf_counter() - t0
    print(f"\n## one {big.stat().st_size / 1e6:.1f} MB text file")
    print(f"- exit {proc.returncode}; {out.strip().splitlines()[0] if out.strip() else tail[-1:]} ")
    print(f"- peak RSS (VmHWM) {peak_kb / 2**20:.2f} GiB; first output after "
          f"{first_out[0] if first_out else float('nan'):.1f}s; embedding started after "
          f"{embed_start[0] if embed_start else float('nan'):.1f}s; {wall:.0f}s in all")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=5000)
    p.add_argument("--concurrent", type=int, default=100)
    p.add_argument("--streams", type=int, default=34, help="concurrent streams after the asks (workers + queue)")
    p.add_argument("--big-mb", type=int, default=50)
    p.add_argument("--backend", choices=("disk", "folder"), default="disk",
                   help="embedded store of the kill part (disk: the default for a new index)")
    p.add_argument("--skip", default="", help="comma-separated parts to skip: kill, load, big")
    p.add_argument("--work", type=Path, help="scratch folder (default: a new temporary one)")
    args = p.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    work = args.work or Path(tempfile.mkdtemp(prefix="rag-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"# bench_faults ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n- {cpu_line()}", flush=True)
    t0 = time.perf_counter()
    if "kill" not in skip:
        bench_kills(work, args.docs, args.backend)
    if "load" not in skip:
        bench_load(work, args.concurrent, args.streams)
    if "big" not in skip:
        bench_big(work, args.big_mb)
    print(f"\ntook {time.perf_counter() - t0:.0f}s", flush=True)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
