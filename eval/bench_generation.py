"""Speed of the default local generator (SmolLM2-135M, GGUF Q4_1) on this machine: a benchmark, not a test.

    .venv/bin/python eval/bench_generation.py [--threads 1,2] [--lengths 250,500,1000] [--repeats 3]

Reports load time (cold GGUF conversion vs the warm safetensors cache, in-process and from a fresh
process), then time to first token and decode speed for float32 and int8 at each prompt length,
as Markdown tables. The cache goes to a fresh temporary folder so the cold figure is really cold.
The machine's load average is printed too: on shared cores the figures swing widely.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from rag.generation import TransformersGenerator  # noqa: E402

ARTICLE = ROOT / "corpus" / "000_c072f841d33a32ed.txt"
SYSTEM = "You answer questions about news articles, using only the context given."
QUESTION = "Summarise the article above in detail, paragraph by paragraph."

FRESH_PROCESS = """
import os, sys, time
t = time.perf_counter()
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, {root!r})
from pathlib import Path
from rag.generation import TransformersGenerator
g = TransformersGenerator(cache_dir=Path({cache!r}), threads={threads})
g.load()
assert g.load_source == "cache", g.load_source
print(time.perf_counter() - t)
"""


def messages_of_length(gen: TransformersGenerator, n_tokens: int) -> list[dict[str, str]]:
    """A RAG-shaped chat whose prompt is n_tokens long (context cut from a corpus article)."""
    tok = gen.tokenizer
    overhead = len(gen.prompt_ids([{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]))
    context_ids = tok.encode(ARTICLE.read_text(encoding="utf-8"), add_special_tokens=False)
    keep = max(0, n_tokens - overhead - 4)
    if keep > len(context_ids):
        raise SystemExit(f"{ARTICLE} has only {len(context_ids)} tokens; cannot build a {n_tokens}-token prompt")
    context = tok.decode(context_ids[:keep])
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Context:\n{context}\n\n{QUESTION}"},
    ]


def run_once(gen: TransformersGenerator, msgs, new_tokens: int) -> tuple[float, float, int]:
    """(seconds to first piece, decode tokens/s after it, tokens generated)."""
    start = time.perf_counter()
    first_at = None
    pieces = []
    for piece in gen.stream(msgs, max_new_tokens=new_tokens):
        if first_at is None:
            first_at = time.perf_counter() - start
        pieces.append(piece)
    total = time.perf_counter() - start
    if first_at is None:
        return float("nan"), float("nan"), 0
    n = gen.count_tokens("".join(pieces))
    after_first = n - gen.count_tokens(pieces[0])
    rate = after_first / (total - first_at) if after_first > 0 else float("nan")
    return first_at, rate, n


def spread(xs: list[float], fmt: str = "{:.2f}") -> str:
    return " / ".join(fmt.format(x) for x in (min(xs), statistics.median(xs), max(xs)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1", help="torch thread counts to try, comma-separated (e.g. 1,2)")
    ap.add_argument("--lengths", default="250,500,1000", help="prompt lengths in tokens")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--new-tokens", type=int, default=64)
    args = ap.parse_args()
    # Exit through SystemExit on a kill, so the temporary cache (hundreds of MB) is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    threads = [int(t) for t in args.threads.split(",")]
    lengths = [int(n) for n in args.lengths.split(",")]

    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average at start {os.getloadavg()}\n")
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        cold = TransformersGenerator(cache_dir=cache, max_input_tokens=4096, threads=threads[0])
        cold_s = cold.load()
        assert cold.load_source == "gguf"
        warm = TransformersGenerator(cache_dir=cache, max_input_tokens=4096)
        warm_s = warm.load()
        assert warm.load_source == "cache"
        fresh = [
            float(subprocess.run(
                [sys.executable, "-c", FRESH_PROCESS.format(root=str(ROOT), cache=tmp, threads=threads[0])],
                check=True, capture_output=True, text=True,
            ).stdout.split()[-1])
            for _ in range(args.repeats)
        ]
        int8 = TransformersGenerator(cache_dir=cache, quantize="int8", max_input_tokens=4096)
        int8_s = int8.load()

        print("| load | seconds |")
        print("|---|---|")
        print(f"| cold: GGUF conversion + save cache (float32) | {cold_s:.2f} |")
        print(f"| warm: safetensors cache, in-process (float32) | {warm_s:.2f} |")
        print(f"| warm: fresh process incl. torch/transformers import, {threads[0]} thread(s), "
              f"min/median/max | {spread(fresh)} |")
        print(f"| warm + int8 dynamic quantization, in-process | {int8_s:.2f} |")
        print()

        del cold
        prompts = {n: messages_of_length(warm, n) for n in lengths}
        print(f"Greedy decoding, {args.new_tokens} new tokens at most, {args.repeats} runs each, float32 and "
              "int8 runs interleaved so both see the same machine load; figures are min / median / max.\n")
        print("| model | threads | prompt tokens | TTFT s | decode tok/s | tokens out | load avg |")
        print("|---|---|---|---|---|---|---|")
        variants = (("float32", warm), ("int8", int8))
        for t in threads:
            torch.set_num_threads(t)
            for n, msgs in prompts.items():
                load = os.getloadavg()[0]
                runs: dict[str, list] = {name: [] for name, _ in variants}
                for _ in range(args.repeats):
                    for name, gen in variants:
                        runs[name].append(run_once(gen, msgs, args.new_tokens))
                for name, gen in variants:
                    ttft, rate = [r[0] for r in runs[name]], [r[1] for r in runs[name]]
                    out = sorted({r[2] for r in runs[name]})
                    print(f"| {name} | {t} | {len(gen.prompt_ids(msgs))} | {spread(ttft)} | "
                          f"{spread(rate, '{:.1f}')} | {','.join(map(str, out))} | {load:.1f} |", flush=True)
    print(f"\nload average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
