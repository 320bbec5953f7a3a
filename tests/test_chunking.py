import pytest

from rag.chunking import ChunkingSettings, chunk_document, split_sentences
from rag.errors import ConfigError
from rag.records import Document


def test_offsets_point_into_the_cleaned_text_for_every_corpus_chunk(corpus_docs, embedder):
    for doc in corpus_docs:
        chunks = chunk_document(doc, embedder.count_tokens, embedder.token_offsets)
        assert chunks
        for c in chunks:
            assert doc.text[c.start:c.end] == c.text
            assert c.doc_id == doc.doc_id and c.chunk_id.startswith(doc.doc_id)
        assert len({c.chunk_id for c in chunks}) == len(chunks)


def test_chunks_respect_the_token_budget_and_sentence_boundaries(corpus_docs, embedder):
    settings = ChunkingSettings(max_tokens=160, overlap_tokens=40)
    for doc in corpus_docs:
        starts = {s for s, _ in split_sentences(doc.text)}
        ends = {e for _, e in split_sentences(doc.text)}
        chunks = chunk_document(doc, embedder.count_tokens, embedder.token_offsets, settings)
        for c in chunks:
            assert embedder.count_tokens([c.text])[0] <= settings.max_tokens + 8
            assert c.start in starts and c.end in ends  # no sentence is cut
        # Whole document covered, with overlap between neighbours.
        assert chunks[0].start == min(starts) and chunks[-1].end == max(ends)
        for a, b in zip(chunks, chunks[1:]):
            assert b.start <= a.end or doc.text[a.end:b.start].strip() == ""  # no text falls between


def test_sentence_splitter_handles_abbreviations_and_quotes():
    text = ("The U.S. Agency for International Development helped. Mr. Smith agreed. He said “No.” Then he left."
            "\nNew line")
    sents = [text[s:e] for s, e in split_sentences(text)]
    assert sents == [
        "The U.S. Agency for International Development helped.",
        "Mr. Smith agreed.",
        "He said “No.”",
        "Then he left.",
        "New line",
    ]


def test_a_sentence_longer_than_a_chunk_is_cut_at_token_boundaries(embedder):
    long = " ".join(f"word{i}" for i in range(400)) + "."
    doc = Document("d", long)
    chunks = chunk_document(doc, embedder.count_tokens, embedder.token_offsets, ChunkingSettings(64, 8))
    assert len(chunks) > 3
    assert all(doc.text[c.start:c.end] == c.text for c in chunks)
    assert all(embedder.count_tokens([c.text])[0] <= 64 + 2 for c in chunks)
    assert not any(c.text.startswith(" ") or c.text.endswith(" ") for c in chunks)


def test_bad_chunk_settings_name_the_value():
    with pytest.raises(ConfigError, match="overlap_tokens"):
        ChunkingSettings(max_tokens=100, overlap_tokens=100)
