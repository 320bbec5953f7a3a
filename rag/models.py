"""The models a configuration names, built in one place.

Above the backends (rag/embedding.py, rag/generation.py) and above the measurement of those
backends (rag/autotune.py, which builds them to time them): a setting of "auto" is resolved here,
from what autotune recorded for this CPU, so no backend module imports the measurement.
"""

from __future__ import annotations

from pathlib import Path

from . import autotune
from .embedding import Embedder, backend_of, open_embedder
from .errors import ConfigError
from .generation import (
    BACKENDS,
    Generator,
    LlamaCppGenerator,
    OpenAIGenerator,
    TransformersGenerator,
    resolve_model,
)


def make_embedder(backend: str = "torch", model: str | None = None, *, cache_dir: Path, batch_size: int = 32,
                  threads: int | None = None, index_embedder: str | None = None) -> Embedder:  # fmt: skip
    """The embedder a configuration names (RAG_EMBEDDER_BACKEND). "auto" serves an index with a
    backend that reproduces its vectors (`index_embedder`: the embedder id the index records; an
    int8 index needs its own backend, a float32 one takes the fastest float32 backend measured here),
    and otherwise is the backend measured fastest on this CPU."""
    if backend == "auto" and index_embedder is not None:
        backend = backend_of(index_embedder) or autotune.float32_backend(model, cache_dir)
    elif backend == "auto":
        backend = autotune.pick_embedder(model, cache_dir)
    return open_embedder(backend, model, cache_dir=cache_dir, batch_size=batch_size, threads=threads)


def make_generator(
    backend: str, *, model: str | None = None, cache_dir: Path, model_home: Path | None = None,
    quantize: str = "none", base_url: str | None = None, api_key: str | None = None, requantize: str = "q8_0",
    threads: int | None = None,
) -> Generator:  # fmt: skip
    """The generator a configuration names: switching backends is a setting, not a code change.
    llama.cpp's requantize "auto" is the quantisation and thread count rag/autotune.py measured best
    here (explicit threads win); otherwise threads None means one per core. With a `model_home`, no
    model means the reader model (resolve_model); without one, the small SmolLM2 file."""
    if backend != "openai":
        model = resolve_model(model, model_home)
    if backend == "llamacpp":
        if requantize == "auto":
            requantize, best_threads = autotune.pick_generator(model, cache_dir)
            threads = threads or best_threads
        return LlamaCppGenerator(model, cache_dir=cache_dir, requantize=requantize, threads=threads)
    if backend == "transformers":
        return TransformersGenerator(model, cache_dir=cache_dir, quantize=quantize)
    if backend == "openai":
        if not base_url:
            raise ConfigError("the openai generator backend needs a base_url (e.g. http://127.0.0.1:8080/v1)")
        return OpenAIGenerator(base_url, model or "default", api_key=api_key)
    raise ConfigError(f"unknown generator backend {backend!r}; expected one of {BACKENDS}")
