"""The llama.cpp backend with the real SmolLM2 GGUF file: streaming, greedy, stops, the Q8_0 cache."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from rag.errors import ConfigError, GenerationError, ModelError
from rag.generation import LlamaCppGenerator, default_gguf_path
from rag.models import make_generator

CHAT = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]
STORY = [{"role": "user", "content": "Write a long story about a cat who lives in a newsroom."}]


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("llamacpp-cache")


@pytest.fixture(scope="module")
def llama(model_cache) -> LlamaCppGenerator:
    gen = LlamaCppGenerator(cache_dir=model_cache, max_input_tokens=512)
    gen.load()
    return gen


@pytest.fixture(scope="module")
def story(llama) -> str:
    return llama.generate(STORY, max_new_tokens=24)


def test_answers_a_chat_with_the_models_template(llama):
    assert "Paris" in llama.generate(CHAT, max_new_tokens=20)
    ids = llama.prompt_ids(CHAT)
    text = llama._llm.detokenize(ids, special=True).decode()
    assert "<|im_start|>system" in text and text.rstrip().endswith("<|im_start|>assistant")


def test_streams_pieces_that_join_to_the_greedy_text(llama, story):
    pieces = list(llama.stream(STORY, max_new_tokens=24))
    assert len(pieces) > 3
    assert "".join(pieces) == story  # greedy: the same text every time
    assert 5 <= llama.count_tokens(story) <= 24


def test_scored_tokens_carry_log_probabilities_from_the_sampling_loop(llama, story):
    tokens = list(llama.stream_scored(STORY, max_new_tokens=24))
    assert "".join(t.text for t in tokens) == story
    lps = [t.logprob for t in tokens if t.logprob is not None]
    assert len(lps) >= 5 and all(lp <= 1e-6 for lp in lps)
    # Greedy: each chosen token is the model's most likely, so none is improbable.
    assert max(lps) > -0.7 and sum(lps) / len(lps) > -2.0


def test_a_repeated_prompt_prefix_gives_the_same_answer(llama):
    """The KV cache of the shared prefix is reused; the answer to the same prompt must not change."""
    first = llama.generate(CHAT, max_new_tokens=12)
    llama.generate(STORY, max_new_tokens=4)
    assert llama.generate(CHAT, max_new_tokens=12) == first


def test_stop_string_ends_output_before_it(llama, story):
    word = story.split()[3]
    cut = llama.generate(STORY, max_new_tokens=24, stop=[word])
    assert word not in cut and story.startswith(cut)


def test_long_prompts_are_cut_from_the_left(llama):
    long = [{"role": "user", "content": "news " * 2000 + "What is the capital of France?"}]
    assert len(llama.prompt_ids(long)) == 512
    assert isinstance(llama.generate(long, max_new_tokens=4), str)


def test_rejects_a_non_positive_token_budget(llama):
    with pytest.raises(ConfigError, match="max_new_tokens"):
        list(llama.stream(CHAT, max_new_tokens=0))


def test_malformed_messages_raise_generation_error(llama):
    with pytest.raises(GenerationError, match="prompt"):
        llama.prompt_ids([{"content": "no role"}])


def test_concurrent_sessions_get_the_same_answers_as_serial_ones(llama, story):
    answers: list[str] = []
    threads = [threading.Thread(target=lambda: answers.append(llama.generate(STORY, max_new_tokens=24)))
               for _ in range(3)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [story] * 3


def test_requantized_copy_is_cached_and_reused(llama, model_cache, monkeypatch):
    import llama_cpp

    (folder,) = [p for p in model_cache.iterdir() if not p.name.startswith(".")]
    model = folder / "model.gguf"
    assert model.stat().st_size > default_gguf_path().stat().st_size  # 8 bits a weight rather than 4
    before = model.stat().st_mtime_ns
    # Quantizing again fails the test (rather than the load timed: a clock on a shared machine can run past
    # any bound, and a second quantization would keep the first copy's mtime, the cache writing atomically).
    monkeypatch.setattr(llama_cpp, "llama_model_quantize", lambda *args: pytest.fail("requantized again"))
    again = LlamaCppGenerator(cache_dir=model_cache)
    again.load()
    assert model.stat().st_mtime_ns == before


def test_the_shipped_file_runs_without_requantizing(tmp_path):
    gen = LlamaCppGenerator(cache_dir=tmp_path, requantize="none")
    assert "Paris" in gen.generate(CHAT, max_new_tokens=20)
    assert not list(tmp_path.iterdir())


def test_bad_settings_and_files_are_named(tmp_path):
    with pytest.raises(ConfigError, match="gguf"):
        LlamaCppGenerator(str(tmp_path / "model.bin"), cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="requantize"):
        LlamaCppGenerator(cache_dir=tmp_path, requantize="q3")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF but not really")
    with pytest.raises(ModelError, match="broken.gguf"):
        LlamaCppGenerator(str(broken), requantize="none").load()


def test_make_generator_builds_llamacpp_lazily(tmp_path):
    gen = make_generator("llamacpp", model=None, cache_dir=tmp_path)
    assert isinstance(gen, LlamaCppGenerator) and gen._llm is None
    assert gen.id.endswith(":q8_0")
    assert not list(tmp_path.iterdir())
