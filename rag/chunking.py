"""Sentence-aware chunking sized by the embedder's tokenizer.

Chunks are runs of whole sentences, so a citation never starts mid-sentence; only a sentence longer
than a chunk is cut, at token boundaries. Offsets index the cleaned document text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from .errors import ConfigError
from .records import Chunk, Document

SPLITTER_VERSION = "sentences-v1"

# Abbreviations after which a period does not end a sentence.
_ABBREV = {
    "mr", "mrs", "ms", "dr", "prof", "gen", "col", "lt", "sgt", "capt", "sen", "rep", "gov", "pres",
    "st", "jr", "sr", "vs", "etc", "inc", "ltd", "co", "corp", "no", "nos", "vol", "fig", "approx",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "e.g", "i.e",
    "u.s", "u.k", "u.n", "e.u", "d.c",
}
_END = re.compile(r"[.!?…]+[\"”’»)\]]*")
_STARTER = re.compile(r"[\"“‘«(\[•A-Z0-9À-ÖØ-Þ\u0100-\u024f]")


@dataclass(frozen=True)
class ChunkingSettings:
    max_tokens: int = 160
    overlap_tokens: int = 40

    def __post_init__(self) -> None:
        if self.max_tokens < 8:
            raise ConfigError(f"chunk max_tokens must be at least 8, got {self.max_tokens}")
        if not 0 <= self.overlap_tokens < self.max_tokens:
            raise ConfigError(
                f"chunk overlap_tokens must be in [0, {self.max_tokens}), got {self.overlap_tokens}"
            )

    def to_json(self) -> dict:
        return {**asdict(self), "splitter": SPLITTER_VERSION}


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) spans of sentences; a line break always ends a sentence."""
    spans: list[tuple[int, int]] = []
    for line in re.finditer(r"[^\n]+", text):
        base, body = line.start(), line.group()
        start = 0
        for m in _END.finditer(body):
            end = m.end()
            rest = body[end:]
            nxt = rest.lstrip()
            if not nxt or len(rest) == len(nxt):  # end of line, or no space after: not a boundary
                continue
            if not _STARTER.match(nxt):
                continue
            closed = m.group()[-1] not in ".!?…"  # a closing quote or bracket ends it for sure
            if not closed and _is_abbreviation(body[start:m.start() + 1]):
                continue
            _add(spans, body, base, start, end)
            start = end + (len(rest) - len(nxt))
        _add(spans, body, base, start, len(body))
    return spans


def _is_abbreviation(sentence_so_far: str) -> bool:
    word = re.search(r"([\w.]+)\.$", sentence_so_far)
    if not word:
        return False
    w = word.group(1).lower()
    return w in _ABBREV or (len(w) == 1 and w.isalpha())  # an initial: "J. Smith"


def _add(spans: list[tuple[int, int]], body: str, base: int, start: int, end: int) -> None:
    piece = body[start:end]
    lead = len(piece) - len(piece.lstrip())
    trail = len(piece) - len(piece.rstrip())
    if end - trail > start + lead:
        spans.append((base + start + lead, base + end - trail))


_COUNT_BATCH = 2048  # sentences tokenised per call

TokenCounter = Callable[[Sequence[str]], list[int]]
TokenOffsets = Callable[[str], list[tuple[int, int]]]


def chunk_document(
    doc: Document,
    count_tokens: TokenCounter,
    token_offsets: TokenOffsets,
    settings: ChunkingSettings = ChunkingSettings(),
) -> list[Chunk]:
    units = _units(doc.text, count_tokens, token_offsets, settings.max_tokens)
    chunks: list[Chunk] = []
    i = 0
    while i < len(units):
        j, total = i, 0
        while j < len(units) and (j == i or total + units[j][2] <= settings.max_tokens):
            total += units[j][2]
            j += 1
        start, end = units[i][0], units[j - 1][1]
        chunks.append(
            Chunk(
                doc_id=doc.doc_id,
                chunk_id=f"{doc.doc_id}#{len(chunks)}",
                start=start,
                end=end,
                text=doc.text[start:end],
                title=doc.title,
                metadata=doc.metadata,
            )
        )
        if j >= len(units):
            break
        # Step back over trailing sentences that fit in the overlap, but always move forward.
        back, overlap = j, 0
        while back - 1 > i and overlap + units[back - 1][2] <= settings.overlap_tokens:
            back -= 1
            overlap += units[back][2]
        i = back
    return chunks


def _units(
    text: str, count_tokens: TokenCounter, token_offsets: TokenOffsets, max_tokens: int
) -> list[tuple[int, int, int]]:
    """Sentences as (start, end, tokens); a sentence over max_tokens becomes several pieces."""
    spans = split_sentences(text)
    # In slices: tokenising every sentence of a 50 MB file at once held gigabytes of encodings.
    counts: list[int] = []
    for i in range(0, len(spans), _COUNT_BATCH):
        counts.extend(count_tokens([text[s:e] for s, e in spans[i:i + _COUNT_BATCH]]))
    units: list[tuple[int, int, int]] = []
    for (s, e), n in zip(spans, counts):
        if n <= max_tokens:
            units.append((s, e, n))
            continue
        offsets = token_offsets(text[s:e])
        for k in range(0, len(offsets), max_tokens):
            window = offsets[k:k + max_tokens]
            ps = s + window[0][0] if k else s
            pe = s + offsets[k + max_tokens][0] if k + max_tokens < len(offsets) else e
            piece = text[ps:pe]
            ps += len(piece) - len(piece.lstrip())
            pe -= len(piece) - len(piece.rstrip())
            if pe > ps:
                units.append((ps, pe, len(window)))
    return units
