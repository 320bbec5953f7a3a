"""The speed benchmark suite (a benchmark, not a test): `rag bench` or `python -m eval.bench`.

    rag bench [--repeats 3] [--only ingest,embed,generate,e2e,serve] [--docs 5000] [--out eval/BENCHMARKS.md]

Compares variants side by side in one run and prints min / median / max over repeated runs:
  ingest    documents/s and chunks/s per stage (clean, chunk, embed, index) on >= 5,000 real documents
  embed     embedder backends (PyTorch float32, ONNX and OpenVINO, each also int8): chunks/s and recall on the eval set
  generate  time to first token and decode tokens/s by prompt length, per generator backend
  e2e       answer latency p50/p95, accuracy and citation precision over the evaluation set
  serve     cold start of `rag serve` to its first answer, and the serving process's peak RSS
Writes the tables with the machine's description to eval/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from eval.bench.machine import machine
from eval.paths import CORPUS_DIR, DEFAULT_QA, EVAL_DIR, ROOT
from rag.config import load_settings

SECTIONS = ("ingest", "embed", "generate", "e2e", "serve")
PROMPT_LENGTHS = (250, 500, 1000, 2000)
DECODE_TOKENS = 32


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        out = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        out += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(out + [""] + [f"- {n}" for n in self.notes] + [""])


def spread(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    """min / median / max of repeated measurements."""
    v = sorted(values)
    return " / ".join(fmt.format(x) for x in (v[0], statistics.median(v), v[-1]))


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}×" if base else "–"


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# -- sections ------------------------------------------------------------------------------------


def bench_ingest(repeats: int, n_docs: int, work: Path) -> Table:
    from rag.config import load_settings
    from rag.pipeline import Engine

    t = time.perf_counter()
    path = corpus_file(n_docs)
    gather_s = time.perf_counter() - t
    eng = Engine(load_settings(index_dir=work / "ingest-index"))
    eng.embedder.embed(["warm up"])  # model load is not ingest throughput
    runs = []
    for _ in range(repeats):
        # Every repeat embeds from scratch into an empty index: the on-disk embedding cache and the
        # disk store (which keeps the vector of a chunk text it already holds) would serve the vectors.
        shutil.rmtree(work / "ingest-index", ignore_errors=True)
        t = time.perf_counter()
        report = eng.ingest([path], rebuild=True)
        runs.append((time.perf_counter() - t, report))
    docs, chunks = runs[0][1].documents, runs[0][1].chunks
    st = eng.retriever.store
    tokens = sum(sum(eng.embedder.count_tokens([c.text for c in st.document_chunks(d)])) for d in st.document_ids())
    table = Table(f"Ingest: {docs} documents, {chunks} chunks ({tokens / chunks:.0f} tokens per chunk), "
                  f"embedder `{eng.embedder.id}`",
                  ["stage", "seconds (min / median / max)", "documents/s (median)", "chunks/s (median)"])  # fmt: skip
    for stage in runs[0][1].stage_seconds:
        secs = [r.stage_seconds.get(stage, 0.0) for _, r in runs]  # a stage that had nothing to do is absent
        med = statistics.median(secs)
        table.rows.append([stage, spread(secs), f"{docs / med:,.0f}", f"{chunks / med:,.0f}"])
    totals = [s for s, _ in runs]
    table.rows.append(["**end to end**", spread(totals), f"{docs / statistics.median(totals):,.1f}",
                       f"**{spread([chunks / s for s in totals], '{:.1f}')}** (min / median / max)"])
    table.notes.append(f"Corpus: docstrings of the installed Python packages (eval/bench/corpus.py), "
                       f"{path.stat().st_size / 1e6:.1f} MB of JSONL, gathered (or read from .rag/bench) in "
                       f"{gather_s:.0f} s, not counted.")
    return table


def corpus_file(n_docs: int) -> Path:
    """The large corpus, gathered once into .rag/bench (half a minute of parsing) and reused."""
    from eval.bench.corpus import write_corpus

    folder = ROOT / ".rag/bench" / f"docstrings-{n_docs}"
    path = folder / "docstrings.jsonl"
    return path if path.is_file() else write_corpus(folder, n_docs)


def _chunk_sample(n: int) -> list[str]:
    """Real chunks of the large corpus, as ingest makes them (the first n)."""
    from rag.chunking import ChunkingSettings, chunk_document
    from rag.loaders import load_paths
    from rag.models import make_embedder

    path = corpus_file(5000)
    counter = make_embedder("onnx", cache_dir=load_settings().model_cache)
    out: list[str] = []
    for doc in load_paths([path]).documents:
        out += [c.text for c in chunk_document(doc, counter.count_tokens, counter.token_offsets, ChunkingSettings())]
        if len(out) >= n:
            break
    return out[:n]


def _recall(backend: str, work: Path) -> tuple[float, float, float]:
    """(recall@5, MRR, ingest seconds) of the default retrieval on the eval set with this embedder."""
    from eval.evaluators import RetrievalEvaluator
    from eval.qa import load_qa
    from rag.config import load_settings
    from rag.pipeline import Engine

    evaluator = RetrievalEvaluator.of(load_qa(DEFAULT_QA), k=10)
    eng = Engine(load_settings(index_dir=work / f"recall-{backend}", embedder_backend=backend))
    secs = timed(lambda: eng.ingest([CORPUS_DIR], rebuild=True))
    m = evaluator(eng)
    return m["recall@5"], m["mrr"], secs


def bench_embed(repeats: int, work: Path, n_chunks: int = 512) -> Table:
    from rag.embedding import BACKENDS
    from rag.models import make_embedder

    texts = _chunk_sample(n_chunks)
    table = Table(f"Embedder backends: {len(texts)} chunks of the large corpus, batch 32",
                  ["backend", "load s", "chunks/s (min / median / max)", "vs torch", "recall@5", "MRR",
                   "min cosine to torch"])  # fmt: skip
    base_rate, base_vecs = 0.0, None
    for backend in BACKENDS:  # torch first: the others are compared with it
        try:
            emb = make_embedder(backend, cache_dir=load_settings().model_cache)
            load_s = timed(partial(emb.embed, ["warm up"]))
        except Exception as exc:
            table.rows.append([backend, "–", f"unavailable: {exc}"[:120], "", "", "", ""])
            continue
        vecs = None
        rates = []
        for _ in range(repeats):
            t = time.perf_counter()
            vecs = emb.embed(texts)
            rates.append(len(texts) / (time.perf_counter() - t))
        med = statistics.median(rates)
        if base_vecs is None:
            base_rate, base_vecs = med, vecs
        cos = float((vecs * base_vecs).sum(1).min())
        r5, mrr, _ = _recall(backend, work)
        table.rows.append([backend, f"{load_s:.2f}", spread(rates, "{:.1f}"), ratio(med, base_rate), f"{r5:.3f}",
                           f"{mrr:.3f}", f"{cos:.4f}"])  # fmt: skip
    table.notes.append("Recall: default hybrid retrieval over corpus/ for the answerable questions of eval/qa.jsonl.")
    table.notes.append("Load: first call in this process, exports cached in RAG_MODEL_CACHE (the first ever export "
                       "takes about 10 s; the OpenVINO int8 calibration about 20 s more).")
    return table


def _generators() -> list[tuple[str, Callable[[], object]]]:
    from rag.generation import LlamaCppGenerator, TransformersGenerator

    cache = load_settings().model_cache
    return [
        ("transformers float32", lambda: TransformersGenerator(cache_dir=cache, threads=os.cpu_count())),
        ("transformers int8", lambda: TransformersGenerator(cache_dir=cache, quantize="int8", threads=os.cpu_count())),
        ("llama.cpp Q4_1 (file as shipped)", lambda: LlamaCppGenerator(cache_dir=cache, requantize="none")),
        ("llama.cpp Q8_0 (requantized)", lambda: LlamaCppGenerator(cache_dir=cache, requantize="q8_0")),
    ]


def _prompt(gen, n_tokens: int) -> list[dict[str, str]]:
    """A RAG-shaped chat of about n_tokens prompt tokens: corpus text, then a question."""
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted(CORPUS_DIR.glob("*.txt")))
    question = "\n\nSummarise the article above in detail, paragraph by paragraph."
    lo, hi = 0, len(text)
    while lo < hi:  # the longest prefix that fits
        mid = (lo + hi + 1) // 2
        if len(gen.prompt_ids([{"role": "user", "content": text[:mid] + question}])) <= n_tokens:
            lo = mid
        else:
            hi = mid - 1
    return [{"role": "user", "content": text[:lo] + question}]


def bench_generate(repeats: int, lengths: Sequence[int] = PROMPT_LENGTHS) -> Table:
    table = Table(f"Generation: time to first token and decode speed, greedy, {DECODE_TOKENS} new tokens",
                  ["backend", "load s", "prompt tokens", "TTFT s (min / median / max)",
                   "decode tok/s (min / median / max)", "TTFT vs float32", "decode vs float32"])
    base: dict[int, tuple[float, float]] = {}
    for name, make in _generators():
        gen = make()
        load_s = gen.load()
        # The shipped Q4_1 file prefills slowest at every length; its 2000-token point alone would cost
        # 40 s of the suite's 15 minutes and show nothing new.
        for n in [n for n in lengths if not (n > 1000 and "Q4_1" in name)]:
            messages = _prompt(gen, n)
            ttfts, rates = [], []
            for _ in range(repeats):
                if hasattr(gen, "_llm"):
                    gen._llm.reset()  # no prompt-prefix cache: every run prefills the whole prompt
                t = time.perf_counter()
                first, pieces = None, []
                for piece in gen.stream(messages, max_new_tokens=DECODE_TOKENS):
                    first = first or time.perf_counter()
                    pieces.append(piece)
                end = time.perf_counter()
                ttfts.append((first or end) - t)
                n_new = gen.count_tokens("".join(pieces))
                rates.append(max(n_new - 1, 1) / max(end - (first or end), 1e-9))
            ttft, rate = statistics.median(ttfts), statistics.median(rates)
            base.setdefault(n, (ttft, rate))
            table.rows.append([name, f"{load_s:.2f}", str(len(gen.prompt_ids(messages))), spread(ttfts),
                               spread(rates, "{:.1f}"), ratio(ttft, base[n][0]), ratio(rate, base[n][1])])  # fmt: skip
        del gen
    table.notes.append("Decode tok/s: tokens of the streamed text after the first, over the time after the first.")
    table.notes.append("transformers loads from the safetensors cache; llama.cpp reads the GGUF file directly.")
    table.notes.append("The shipped Q4_1 file is measured up to 1000 tokens: it is the slowest to prefill at each.")
    return table


def bench_e2e(repeats: int, work: Path) -> Table:
    from eval.qa import load_qa
    from eval.runner import run_eval
    from rag.config import load_settings
    from rag.pipeline import Engine

    items = load_qa(DEFAULT_QA)
    table = Table(f"End to end: the {len(items)} questions of eval/qa.jsonl, default retrieval and evidence",
                  ["engine", "runs", "TTFT p50 s", "total p50 s", "total p95 s", "accuracy (standalone / follow-up)",
                   "citation precision", "refusal accuracy"])  # fmt: skip
    d = load_settings()
    variants = [(d.generator_backend, d.embedder_backend, f"default: {d.generator_backend} generator, "
                 f"{d.embedder_backend} embedder", repeats),
                ("transformers", "onnx", "float32: transformers, ONNX float32 embedder (= PyTorch)", 1)]  # fmt: skip
    for generator, embedder, label, runs in variants:
        eng = Engine(load_settings(index_dir=work / f"e2e-index-{embedder}", generator_backend=generator,
                                   embedder_backend=embedder))  # fmt: skip
        eng.ingest([CORPUS_DIR])
        eng.generator.load()
        full = [run_eval(eng, items, out_dir=work / f"e2e-{generator}-{i}", progress=False) for i in range(runs)]
        ms, cats = [f["overall"] for f in full], full[0]["by_category"]
        by_cat = " / ".join(f"{cats[c]['answer_accuracy']:.2f}" for c in ("standalone", "follow-up") if c in cats)
        latency = [spread([m[key] for m in ms]) for key in ("ttft_p50_s", "total_p50_s", "total_p95_s")]
        table.rows.append([label, str(runs), *latency, f"{ms[0]['answer_accuracy']:.3f} ({by_cat})",
                           f"{ms[0]['citation_precision']:.3f}", f"{ms[0]['refusal_accuracy']:.3f}"])
    table.notes.append("Quality figures are deterministic (greedy decoding), so they come from the first run.")
    return table


def bench_serve(repeats: int, work: Path) -> Table:
    from eval.bench.serve import serve_once

    table = Table("Serving: `rag serve` with the default models, caches built",
                  ["figure", "min / median / max"])  # fmt: skip
    runs = [serve_once(ROOT, work / "serve-index") for _ in range(repeats)]
    table.rows.append(["launch → first answer (s)", spread([r["first_answer_s"] for r in runs])])
    table.rows.append(["launch → health OK (s)", spread([r["health_s"] for r in runs])])
    table.rows.append(["peak RSS after 10 answers (MB)", spread([r["peak_rss_mb"] for r in runs], "{:.0f}")])
    table.notes.append("A fresh process each run; the index is built once beforehand. "
                       "Peak RSS is VmHWM of the process.")
    return table


# -- running -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rag bench", description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3, help="runs per figure (default 3)")
    p.add_argument("--heavy-repeats", type=int, default=2,
                   help="runs of the two long figures, ingest of the large corpus and the whole eval set (default 2)")
    p.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {SECTIONS}")
    p.add_argument("--docs", type=int, default=5000, help="documents in the large ingest corpus (default 5000)")
    p.add_argument("--out", type=Path, default=EVAL_DIR / "BENCHMARKS.md", help="Markdown report")
    p.add_argument("--pick", action="store_true",
                   help="measure the embedder and llama.cpp variants on this CPU now, record the fastest that "
                        "passes its accuracy check for RAG_*=auto (rag/autotune.py), print the table and exit")
    return p


def pick() -> int:
    from rag import autotune
    from rag.config import load_settings

    s = load_settings()
    cache = Path(s.model_cache)
    for kind, model in (("embedder", s.embedder), ("generator", s.generator_model)):
        choice, trials = autotune.tune(kind, model, cache)
        unit = trials[0].unit if trials else ""
        table = Table(f"{kind} variants on this CPU ({autotune.cpu_info().describe()})",
                      ["variant", f"{unit} (min / median / max)", f"vs {trials[0].variant if trials else '-'}",
                       "closeness", "neighbours", "passes", "chosen"])
        base = trials[0].rate if trials else 0.0
        best = autotune.choose(trials).variant
        for t in trials:
            table.rows.append([t.variant, spread(t.rates, "{:.3g}") if t.rates else f"error: {t.error}"[:100],
                               ratio(t.rate, base) if t.rates else "", f"{t.closeness:.4f}", f"{t.neighbours:.3f}",
                               "yes" if t.passes else "no", "**yes**" if t.variant == best else ""])  # fmt: skip
        table.notes.append(f"Recorded in {cache / autotune.CACHE_FILE}: {choice}. Closeness: min cosine to float32 "
                           f"(embedders, limit {autotune.MIN_COSINE:.2f}) or greedy-token agreement with the shipped "
                           f"GGUF (generator, limit {autotune.MIN_AGREEMENT:.2f}); neighbours: share of float32's 5 "
                           f"nearest texts in the variant's top 10 (limit {autotune.MIN_NEIGHBOURS:.2f}).")
        print("\n" + table.markdown(), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.pick:
        from rag.config import offline_environment

        offline_environment()
        print("\n".join(machine()), flush=True)
        return pick()
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in SECTIONS]
    if unknown or args.repeats < 1 or args.heavy_repeats < 1:
        print(f"rag bench: unknown section(s) {unknown} (expected {SECTIONS}) or repeats < 1", file=sys.stderr)
        return 2
    from rag.config import load_settings

    load_settings()  # offline switches for the libraries, before any model loads
    started = time.perf_counter()
    head = machine()
    print("\n".join(head), flush=True)
    tables: list[Table] = []
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        work = Path(tmp)
        runners = {
            "ingest": lambda: bench_ingest(args.heavy_repeats, args.docs, work),
            "embed": lambda: bench_embed(args.repeats, work),
            "generate": lambda: bench_generate(args.repeats),
            "e2e": lambda: bench_e2e(args.heavy_repeats, work),
            "serve": lambda: bench_serve(args.repeats, work),
        }
        for name in only:
            t = time.perf_counter()
            table = runners[name]()
            table.notes.append(f"Section took {time.perf_counter() - t:.0f} s.")
            tables.append(table)
            print("\n" + table.markdown(), flush=True)
    total = time.perf_counter() - started
    print(f"\nsuite: {total / 60:.1f} min")
    text = ["# Benchmarks", "", f"`rag bench --repeats {args.repeats} --heavy-repeats {args.heavy_repeats} "
            f"--only {','.join(only)}` took "
            f"{total / 60:.1f} min on {time.strftime('%Y-%m-%d')}.", "", "## Machine", "", *head, ""]
    text += ["## Results", ""] + [t.markdown() for t in tables]
    args.out.write_text("\n".join(text), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
