"""BM25 over folded tokens (bm25s), so "Kostunica" finds "Koštunica" and "48.96" finds itself."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .text import query_tokens, tokenize

TOKENIZER_VERSION = "fold-stem-v2"


class LexicalIndex:
    def __init__(self, bm25, size: int) -> None:
        self._bm25 = bm25
        self.size = size

    @classmethod
    def build(cls, texts: Iterable[str]) -> LexicalIndex:
        """Index `texts`, read one at a time: only token ids are kept, never every chunk's token strings."""
        tokenized = _Tokenized(texts)
        if not tokenized.ids:
            return cls(None, 0)
        import bm25s

        bm25 = bm25s.BM25(k1=1.2, b=0.75)
        bm25.index(tokenized, show_progress=False)
        return cls(bm25, len(tokenized.ids))

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk for `query` (zeros where no query token occurs); a query word's
        other spellings of "Đ" (rag.text.spellings) count where the index holds them."""
        if self._bm25 is None:
            return np.zeros(self.size, dtype=np.float32)
        tokens = [t for t in query_tokens(query) if t in self._bm25.vocab_dict]
        if not tokens:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "size").write_text(str(self.size))
        if self._bm25 is not None:
            self._bm25.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        size = int((folder / "size").read_text())
        if size == 0:
            return cls(None, 0)
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)
        bm25 = bm25s.BM25.load(str(folder), show_progress=False, verbosity=0)
        return cls(bm25, size)


def _Tokenized(texts: Iterable[str]):
    """bm25s' Tokenized(ids, vocab) from our own tokenizer, one text at a time.

    Holding every chunk's token strings at once took about 4 KB per chunk (0.5 GB for a 50 MB file);
    ids are pointers to the vocabulary's own int objects, 8 bytes a token.
    """
    from bm25s.tokenization import Tokenized

    vocab: dict[str, int] = {}
    ids: list[list[int]] = []
    for text in texts:
        # bm25s wants every document to have a token; an empty one gets a placeholder.
        ids.append([vocab.setdefault(tok, len(vocab)) for tok in tokenize(text) or ["\u2205"]])
    return Tokenized(ids=ids, vocab=vocab)
