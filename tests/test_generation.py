"""Generators: the real SmolLM2 GGUF model through transformers, and an OpenAI-compatible client
against a real loopback HTTP server."""

from __future__ import annotations

import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from rag import generation
from rag.errors import ConfigError, GenerationError, ModelError
from rag.generation import (
    OpenAIGenerator,
    TransformersGenerator,
    _StopScanner,
)
from rag.modelcache import write_atomically
from rag.models import make_generator

CHAT = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]
STORY = [{"role": "user", "content": "Write a long story about a cat who lives in a newsroom."}]


# -- fixtures: the real model, converted once into a private cache --------------------------------


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The generators here run torch on one thread (see TransformersGenerator.threads): on a CI box
    whose 2 cores are shared, two OpenMP threads decode 5-20x slower. Restored for other test files."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("generator-cache")


@pytest.fixture(scope="module")
def cold(model_cache):
    """The default generator, built from the GGUF file (the conversion runs here, once)."""
    gen = TransformersGenerator(cache_dir=model_cache, max_input_tokens=512, threads=1)
    seconds = gen.load()
    assert gen.load_source == "gguf"
    return gen, seconds


@pytest.fixture(scope="module")
def smol(cold) -> TransformersGenerator:
    return cold[0]


@pytest.fixture(scope="module")
def cached_folder(smol, model_cache) -> Path:
    (folder,) = [p for p in model_cache.iterdir() if not p.name.startswith(".")]
    return folder


@pytest.fixture(scope="module")
def story(smol) -> str:
    return smol.generate(STORY, max_new_tokens=24)


# -- the real SmolLM2 model -----------------------------------------------------------------------


def test_generates_text_for_a_chat(smol):
    text = smol.generate(CHAT, max_new_tokens=24)
    assert text.strip()
    assert "Paris" in text  # a 135M model still knows this one; a broken prompt format would not
    assert smol.id == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_streams_several_pieces_that_join_to_the_generated_text(smol, story):
    pieces = list(smol.stream(STORY, max_new_tokens=24))
    assert len(pieces) > 1
    assert all(pieces)
    assert "".join(pieces) == story


def test_greedy_decoding_is_deterministic(smol, story):
    assert smol.generate(STORY, max_new_tokens=24) == story


def test_respects_max_new_tokens(smol, story):
    assert smol.count_tokens(story) <= 24 + 2
    short = smol.generate(STORY, max_new_tokens=5)
    assert short and story.startswith(short)
    assert smol.count_tokens(short) <= 5 + 2


def test_stop_string_ends_output_before_it(smol, story):
    word = story.split()[3]
    text = smol.generate(STORY, max_new_tokens=24, stop=[word])
    assert text == story[: story.index(word)]
    assert word not in text


def test_stop_string_spanning_token_boundaries_is_never_yielded(smol, story):
    stop = story[5:14]  # nine characters: crosses at least one token boundary
    pieces = list(smol.stream(STORY, max_new_tokens=24, stop=["never-appears", stop]))
    assert "".join(pieces) == story[: story.index(stop)]


def test_rejects_a_non_positive_token_budget(smol):
    with pytest.raises(ConfigError, match=r"max_new_tokens.*\b0\b"):  # the value itself, not any digit 0
        smol.generate(CHAT, max_new_tokens=0)


def test_malformed_messages_raise_generation_error(smol):
    with pytest.raises(GenerationError, match="'role': 'user'"):
        smol.generate([{"role": "user"}], max_new_tokens=2)


def test_abandoned_stream_releases_the_generation_lock(smol):
    it = smol.stream(STORY, max_new_tokens=24)
    next(it)
    it.close()
    done: list[str] = []
    worker = threading.Thread(target=lambda: done.append(smol.generate(CHAT, max_new_tokens=3)))
    worker.start()
    worker.join(timeout=120)
    assert done, "generation blocked: the abandoned stream kept the lock"


def test_concurrent_sessions_get_the_same_answers_as_serial_ones(smol, story):
    serial_chat = smol.generate(CHAT, max_new_tokens=8)
    results: dict[str, str] = {}

    def run(name, messages):
        results[name] = smol.generate(messages, max_new_tokens=8 if name == "chat" else 24)

    threads = [threading.Thread(target=run, args=a) for a in (("chat", CHAT), ("story", STORY))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert results == {"chat": serial_chat, "story": story}


def test_long_prompts_are_cut_from_the_left(smol):
    long = [{"role": "user", "content": "word " * 2000 + "What is the capital of France?"}]
    ids = smol.prompt_ids(long)
    assert len(ids) == smol.max_input_tokens
    assert smol.tokenizer.decode(ids).endswith("What is the capital of France?<|im_end|>\n<|im_start|>assistant\n")
    assert smol.generate(long, max_new_tokens=4)


# -- the safetensors cache ------------------------------------------------------------------------


def test_conversion_is_cached_as_safetensors(cached_folder, model_cache):
    assert cached_folder.name.startswith("SmolLM2-135M-Instruct.Q4_1.gguf-")
    for name in ("model.safetensors", "config.json", "tokenizer.json"):
        assert (cached_folder / name).is_file(), name
    assert "quantization_config" not in json.loads((cached_folder / "config.json").read_text())
    assert [p.name for p in model_cache.iterdir()] == [cached_folder.name]  # no temp folder left over


def test_second_instance_loads_the_cache_without_converting(cold, cached_folder, model_cache, monkeypatch):
    smol, _ = cold

    def no_conversion(path):
        raise AssertionError(f"converted {path} again")

    monkeypatch.setattr(generation, "_convert_gguf", no_conversion)
    weights = cached_folder / "model.safetensors"
    before = weights.stat().st_mtime_ns
    warm = TransformersGenerator(cache_dir=model_cache)
    warm.load()
    assert warm.load_source == "cache"
    # The cache is read, not written again (rather than the warm load timed against the cold one: a
    # clock on a shared machine can make either slower).
    assert weights.stat().st_mtime_ns == before
    assert warm.generate(CHAT, max_new_tokens=12) == smol.generate(CHAT, max_new_tokens=12)


def test_int8_generator_quantizes_linear_layers(model_cache, monkeypatch):
    import torch

    monkeypatch.setattr(generation, "_convert_gguf", lambda path: pytest.fail("converted again"))
    gen = TransformersGenerator(cache_dir=model_cache, quantize="int8")
    assert gen.id.endswith(":int8")
    gen.load()
    linears = [m for m in gen._model.modules() if type(m) is torch.nn.Linear]
    assert not linears
    assert gen.generate(CHAT, max_new_tokens=12).strip()


def test_a_plain_hugging_face_folder_loads_directly(cached_folder, smol, tmp_path, monkeypatch):
    monkeypatch.setattr(generation, "_convert_gguf", lambda path: pytest.fail("converted a plain folder"))
    gen = TransformersGenerator(str(cached_folder), cache_dir=tmp_path)
    assert gen.id == str(cached_folder)
    gen.load()
    assert gen.load_source == "direct"
    assert not list(tmp_path.iterdir())
    assert gen.generate(CHAT, max_new_tokens=12) == smol.generate(CHAT, max_new_tokens=12)

    gen.tokenizer.chat_template = None  # a base model without a template gets "role: content" lines
    prompt = gen.tokenizer.decode(gen.prompt_ids([{"role": "user", "content": "hi"}]), skip_special_tokens=True)
    assert prompt.endswith("user: hi\nassistant:")


def test_unknown_model_raises_model_error(tmp_path):
    gen = TransformersGenerator(str(tmp_path / "no-such-model"), cache_dir=tmp_path)
    with pytest.raises(ModelError, match="no-such-model"):
        gen.load()


def test_bad_quantize_mode_raises_config_error(tmp_path):
    with pytest.raises(ConfigError, match="int4"):
        TransformersGenerator(cache_dir=tmp_path, quantize="int4")


def test_failed_cache_write_leaves_nothing_behind(tmp_path):
    final = tmp_path / "model-abc"

    def crash(tmp: Path) -> None:
        (tmp / "model.safetensors").write_bytes(b"half a file")
        raise RuntimeError("killed mid-save")

    with pytest.raises(RuntimeError):
        write_atomically(final, crash)
    assert list(tmp_path.iterdir()) == []

    assert write_atomically(final, lambda tmp: (tmp / "config.json").write_text("{}"))
    assert (final / "config.json").read_text() == "{}"
    # Another process got there first: its copy is kept and ours is dropped.
    assert not write_atomically(final, lambda tmp: (tmp / "config.json").write_text("[]"))
    assert (final / "config.json").read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["model-abc"]


@pytest.mark.parametrize(
    ("pieces", "stops", "expected"),
    [
        (["Hel", "lo wor", "ld"], [], "Hello world"),
        (["Hel", "lo wor", "ld"], ["o w"], "Hell"),
        (["answer </", "sto", "p> more"], ["</stop>"], "answer "),
        (["a <", "b"], ["<stop>"], "a <b"),  # a held-back prefix that never completes is still text
        (["x", "y"], [""], "xy"),
    ],
)
def test_stop_scanner(pieces, stops, expected):
    scanner = _StopScanner(stops)
    out = []
    for p in pieces:
        out.append(scanner.feed(p))
        for s in stops:
            assert not (s and s in "".join(out))
        if scanner.stopped:
            break
    out.append(scanner.flush())
    assert "".join(out) == expected


# -- OpenAI-compatible client against a loopback server --------------------------------------------


class ChatServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ChatHandler)
        self.requests: list[dict] = []
        self.status = 200
        self.pieces = ["The ", "council ", "met ", "on ", "Tuesday."]
        self.gate = threading.Event()  # the server holds piece 2+ until the client has seen piece 1
        self.gate_opened_in_time: bool | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class ChatHandler(BaseHTTPRequestHandler):
    server: ChatServer

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        if self.server.status != 200:
            self.send_response(self.server.status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": {"message": "model crashed"}}')
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()

        def event(payload: str) -> None:
            self.wfile.write(f"data: {payload}\n\n".encode())
            self.wfile.flush()

        chunk = {"id": "c1", "object": "chat.completion.chunk", "model": body["model"]}
        event(json.dumps({**chunk, "choices": [{"index": 0, "delta": {"role": "assistant"}}]}))
        self.wfile.write(b": keep-alive\n\n")
        for i, piece in enumerate(self.server.pieces):
            if i == 1:
                self.server.gate_opened_in_time = self.server.gate.wait(timeout=10)
            # Servers that support it send each token's log-probability; the first piece here has none.
            scored = {"logprobs": {"content": [{"token": piece, "logprob": -0.25 * i}]}} if i else {}
            event(json.dumps({**chunk, "choices": [{"index": 0, "delta": {"content": piece}, **scored}]}))
        event(json.dumps({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
        event("[DONE]")


@pytest.fixture()
def server():
    srv = ChatServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_openai_streams_pieces_in_order(server):
    gen = OpenAIGenerator(server.base_url, "smollm2")
    it = gen.stream(CHAT, max_new_tokens=32)
    first = next(it)
    server.gate.set()
    rest = list(it)
    assert [first, *rest] == server.pieces
    assert server.gate_opened_in_time, "the first piece only arrived after the whole answer"

    (req,) = server.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["body"] == {
        "model": "smollm2",
        "messages": CHAT,
        "stream": True,
        "temperature": 0,
        "max_tokens": 32,
        "stop": [],
        "logprobs": True,
    }
    assert "Authorization" not in req["headers"]


def test_openai_reports_the_servers_log_probabilities(server):
    server.gate.set()
    tokens = list(OpenAIGenerator(server.base_url, "m").stream_scored(CHAT))
    assert [t.text for t in tokens] == server.pieces
    assert [t.logprob for t in tokens] == [None, -0.25, -0.5, -0.75, -1.0]


def test_openai_sends_the_api_key_and_stop(server):
    server.gate.set()
    gen = OpenAIGenerator(server.base_url + "/", "m", api_key="sekrit")
    # The fake server ignores `stop`, as some real ones do; the client still cuts there.
    assert gen.generate(CHAT, stop=["met"]) == "The council "
    (req,) = server.requests
    assert req["headers"]["Authorization"] == "Bearer sekrit"
    assert req["body"]["stop"] == ["met"]
    assert req["body"]["max_tokens"] == 160


def test_openai_http_error_raises_generation_error(server):
    server.status = 500
    gen = OpenAIGenerator(server.base_url, "m")
    with pytest.raises(GenerationError, match=r"HTTP 500\b") as err:  # the status, not the port (127.0.0.1:45001)
        gen.generate(CHAT)
    assert f"{server.base_url}/chat/completions" in str(err.value)
    assert "model crashed" in str(err.value)


def test_openai_refused_connection_raises_generation_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gen = OpenAIGenerator(f"http://127.0.0.1:{port}/v1", "m", timeout=5)
    with pytest.raises(GenerationError, match=f"127.0.0.1:{port}/v1/chat/completions") as err:
        gen.generate(CHAT)
    # Refused at once, not waited out: httpx raises ConnectError for a refusal and ConnectTimeout after the 5 s
    # (rather than a clock, which a busy machine can run past).
    assert "ConnectError" in str(err.value), err.value


def test_openai_counts_tokens_roughly():
    gen = OpenAIGenerator("http://127.0.0.1:9/v1", "m")
    assert gen.count_tokens("") == 0
    assert gen.count_tokens("abcd") == 1
    assert gen.count_tokens("abcde") == 2


# -- configuration --------------------------------------------------------------------------------


def test_make_generator_rejects_an_unknown_backend(tmp_path):
    with pytest.raises(ConfigError, match="llamacpp"):
        make_generator("llama-cpp", model=None, cache_dir=tmp_path, quantize="none", base_url=None, api_key=None)


def test_make_generator_builds_each_backend_lazily(tmp_path):
    local = make_generator("transformers", model=None, cache_dir=tmp_path, quantize="int8", base_url=None, api_key=None)
    assert isinstance(local, TransformersGenerator)
    assert local.id.endswith(":int8")
    assert local._model is None  # nothing loads until first use
    assert not list(tmp_path.iterdir())

    remote = make_generator(
        "openai", model="qwen", cache_dir=tmp_path, quantize="none", base_url="http://127.0.0.1:8080/v1", api_key="k"
    )
    assert isinstance(remote, OpenAIGenerator)
    assert remote.url == "http://127.0.0.1:8080/v1/chat/completions"

    with pytest.raises(ConfigError, match="base_url"):
        make_generator("openai", model="m", cache_dir=tmp_path, quantize="none", base_url=None, api_key=None)


def test_packaged_model_names_resolve_to_their_files(tmp_path):
    from rag.config import load_settings
    from rag.errors import ModelError
    from rag.generation import default_gguf_path, resolve_model

    home = load_settings().model_home
    assert resolve_model(None, home).endswith("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")
    assert resolve_model("smollm2-135m", home) == str(default_gguf_path())
    assert resolve_model("/models/other.gguf", home) == "/models/other.gguf"
    with pytest.raises(ModelError, match="rag.weights fetch qwen2.5-coder-1.5b"):
        resolve_model(None, tmp_path)  # a machine without the joined file says how to get it
