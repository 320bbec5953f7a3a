"""Embedder backends: the ONNX export matches sentence-transformers; int8 stays close; errors are named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import MODEL_CACHE

from rag.embedding import OnnxEmbedder, default_embedder_path
from rag.errors import ConfigError, ModelError
from rag.models import make_embedder

TEXTS = [
    "Milošević won 38.62 percent and Koštunica got 48.96 percent in the first round.",
    "On March 11, 2006, Milošević died in prison from a heart attack.",
    "Putin and Clinton discussed options for Milosevic's departure from the presidency of Yugoslavia.",
    "short",
]


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def onnx(onnx_cache) -> OnnxEmbedder:
    emb = OnnxEmbedder(cache_dir=onnx_cache)
    emb.load()
    return emb


def test_onnx_float32_matches_sentence_transformers(torch_embedder, onnx):
    embedder = torch_embedder
    ref, got = embedder.embed(TEXTS), onnx.embed(TEXTS)
    assert got.shape == ref.shape == (4, 384) and got.dtype == np.float32
    assert float((ref * got).sum(1).min()) > 0.9999
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert onnx.id == embedder.id  # interchangeable vectors: an index built by either serves both


def test_onnx_tokenizer_matches_for_chunking(torch_embedder, onnx):
    embedder = torch_embedder
    assert onnx.count_tokens(TEXTS) == embedder.count_tokens(TEXTS)
    assert onnx.token_offsets(TEXTS[0]) == embedder.token_offsets(TEXTS[0])


def test_batches_keep_the_input_order(onnx):
    one_by_one = np.vstack([onnx.embed([t]) for t in TEXTS])
    assert np.allclose(onnx.embed(TEXTS), one_by_one, atol=1e-5)
    assert onnx.embed([]).shape == (0, 384)


def test_int8_is_close_and_has_its_own_id(torch_embedder, onnx_cache):
    embedder = torch_embedder
    emb = OnnxEmbedder(cache_dir=onnx_cache, int8=True)
    ref, got = embedder.embed(TEXTS), emb.embed(TEXTS)
    assert float((ref * got).sum(1).min()) > 0.95
    assert emb.id == f"{embedder.id}:int8"  # an index of float32 vectors is rebuilt, not mixed


def test_default_embeds_folded_text_so_spellings_meet(embedder):
    # Journalists type names without diacritics: both spellings must be one vector.
    a, b = embedder.embed(["Koštunica met Đukanović in Podgorica", "Kostunica met Djukanovic in Podgorica"])
    assert float(a @ b) > 0.9999
    assert embedder.id.endswith(":folded")  # an index of unfolded vectors is rebuilt, not mixed


def test_openvino_int8_is_close_and_cached(torch_embedder):
    # Built by name: the default ("auto") is whichever backend is fastest on this CPU.
    embedder = make_embedder("openvino-int8", cache_dir=MODEL_CACHE).inner
    assert isinstance(embedder, OnnxEmbedder) and (embedder.runtime, embedder.int8) == ("openvino", True)
    assert embedder.id == f"{torch_embedder.id}:openvino-int8"
    ref, got = torch_embedder.embed(TEXTS), embedder.embed(TEXTS)
    assert float((ref * got).sum(1).min()) > 0.98
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-3)
    # Nearest neighbours agree with float32: each text is closest to itself.
    assert list((got @ ref.T).argmax(1)) == list(range(len(TEXTS)))
    quantized = embedder.export_dir / "openvino-int8" / "model.xml"  # this model's, in the machine-wide cache
    before = quantized.stat().st_mtime_ns
    OnnxEmbedder(cache_dir=embedder.cache_dir, runtime="openvino", int8=True).load()
    assert quantized.stat().st_mtime_ns == before  # quantised once, then read


def test_token_sorted_batches_give_the_same_vectors(embedder):
    embedder = embedder.inner
    # Lengths from 3 to 200 tokens, in an order that does not sort them; batches of 2 mix nothing up.
    texts = [" ".join(["word"] * n) for n in (40, 3, 200, 17, 90, 1, 120)] + TEXTS
    one_by_one = np.vstack([embedder.embed([t]) for t in texts])
    size = embedder.batch_size
    embedder.batch_size = 2
    try:
        batched = embedder.embed(texts)
    finally:
        embedder.batch_size = size
    assert float((batched * one_by_one).sum(1).min()) > 0.999


def test_export_is_cached(onnx, onnx_cache):
    (folder,) = [p for p in onnx_cache.iterdir() if not p.name.startswith(".")]
    assert {"model.onnx", "model_int8.onnx"} <= {p.name for p in folder.iterdir()}
    before = (folder / "model.onnx").stat().st_mtime_ns
    OnnxEmbedder(cache_dir=onnx_cache).load()
    assert (folder / "model.onnx").stat().st_mtime_ns == before


def test_unsupported_pooling_is_named(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("modules.json", "tokenizer.json", "model.safetensors", "config.json"):
        src = default_embedder_path() / name
        (folder / name).write_bytes(src.read_bytes())
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling/config.json").write_text(json.dumps({"pooling_mode_max_tokens": True}))
    with pytest.raises(ModelError, match="pooling"):
        OnnxEmbedder(str(folder), cache_dir=tmp_path / "cache").load()


def test_make_embedder_names_backends(tmp_path):
    assert make_embedder("onnx-int8", cache_dir=tmp_path).id.endswith(":int8:folded")
    assert make_embedder("openvino-int8", cache_dir=tmp_path).id.endswith(":openvino-int8:folded")
    assert make_embedder("openvino", cache_dir=tmp_path).id == make_embedder("onnx", cache_dir=tmp_path).id
    with pytest.raises(ConfigError, match="onnx-int8"):
        make_embedder("tensorrt", cache_dir=tmp_path)
