"""The engine's one entry point: CLI, UI, API and evaluation all go through Engine."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from . import store
from .chunking import ChunkingSettings
from .citations import agrees, answer_located, not_found, refusal
from .config import Settings, load_settings
from .conversation import Rewrite, rewrites
from .decision import MODEL_PATH as DECISION_PATH
from .decision import DecisionModel, features
from .embedding import Embedder
from .generation import Generator
from .index import IndexParams
from .ingest import IngestReport, ingest
from .models import make_embedder, make_generator
from .nlp import Parser
from .question import Question, analyse
from .reader import MODEL_PATH, Evidence, ReaderModel, read
from .reading import MAX_REPLY_TOKENS, Located, Reading, is_none, locate, prompt_messages, windows
from .records import PUBLIC, Access, Answer, Draft, Event, Filters, Final, Hit, Mode, Principal, Turn
from .retrieval import Retriever


class Engine:
    """Holds the models and the index for a process; heavy loading happens on first use."""

    def __init__(self, settings: Settings | None = None, *, embedder: Embedder | None = None,
                 generator: Generator | None = None, clock: Callable[[], datetime] | None = None) -> None:
        self.settings = settings or load_settings()
        # What "now" is for embargoes; injectable so that tests can pass an embargo's time.
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self._embedder = embedder
        self._injected_embedder = embedder is not None
        self._generator = generator
        self._retriever: Retriever | None = None
        self.parser = Parser(self.settings.spacy_model)
        self._lock = threading.RLock()

    # -- configuration -------------------------------------------------------------------------
    def _once(self, name: str, make: Callable[[], Any]) -> Any:
        """The attribute `name`, made on first use; under the lock, so two threads never load one model twice."""
        value = getattr(self, name)
        if value is None:
            with self._lock:
                value = getattr(self, name)
                if value is None:
                    value = make()
                    setattr(self, name, value)
        return value

    @property
    def embedder(self) -> Embedder:
        return self._once("_embedder", lambda: self._make_embedder(follow_index=True))

    def _make_embedder(self, *, follow_index: bool) -> Embedder:
        """The configured backend; with "auto", the one that built the index (its queries must be
        embedded alike), else the one measured fastest on this CPU."""
        s = self.settings
        backend, cache = s.embedder_backend, Path(s.model_cache)
        built = store.indexed_embedder(s) if backend == "auto" and follow_index else None
        return make_embedder(backend, s.embedder, cache_dir=cache, batch_size=s.embed_batch_size, index_embedder=built)

    @property
    def generator(self) -> Generator:
        return self._once("_generator", self._make_generator)

    def _make_generator(self) -> Generator:
        s = self.settings
        return make_generator(
            s.generator_backend,
            model=s.openai_model if s.generator_backend == "openai" else s.generator_model,
            cache_dir=Path(s.model_cache), model_home=Path(s.model_home), quantize=s.generator_quantize,
            base_url=s.openai_base_url, api_key=s.openai_api_key, requantize=s.gguf_requantize,
            threads=s.generator_threads,
        )

    @property
    def chunking(self) -> ChunkingSettings:
        return ChunkingSettings(self.settings.chunk_tokens, self.settings.chunk_overlap)

    @property
    def index_params(self) -> IndexParams:
        s = self.settings
        return IndexParams(kind="auto", ann_threshold=s.ann_threshold, ann_kind=s.ann_kind, hnsw_m=s.hnsw_m,
                           hnsw_ef_construction=s.hnsw_ef_construction, hnsw_ef_search=s.hnsw_ef_search,
                           ivf_nprobe=s.ivf_nprobe)

    @property
    def index_dir(self) -> Path:
        return Path(self.settings.index_dir)

    # -- ingest --------------------------------------------------------------------------------
    def ingest(self, paths: Iterable[str | Path] | None = None, *, rebuild: bool = False, progress: bool = False,
               prune: bool = False, force: bool = False, notify: Callable[[str], None] | None = None) -> IngestReport:
        """Add or update the articles in `paths` (default: the corpus folder) in the configured store,
        by the rules of rag/ingest.py; the next query sees the new version."""
        s = self.settings
        paths = list(paths) if paths else [s.corpus_dir]
        if rebuild and s.embedder_backend == "auto" and not self._injected_embedder:
            self._embedder = self._make_embedder(follow_index=False)  # everything is re-embedded: take this CPU's best
        with self._lock:
            report = ingest(paths, store.open_writer(s, params=self.index_params), embedder=self.embedder,
                            chunking=self.chunking, rebuild=rebuild, progress=progress, prune=prune, force=force,
                            max_prune_share=s.prune_max_share, notify=notify)
            if store.backend(s) != "postgres":  # PostgreSQL's rows are live already: its pool stays
                self._retriever = None  # the next query sees the new version
        return report

    # -- retrieval -----------------------------------------------------------------------------
    def open_store(self) -> store.Store:
        return store.open_store(self.settings, embedder_id=self.embedder.id, chunking=self.chunking,
                                params=self.index_params)

    @property
    def retriever(self) -> Retriever:
        s = self.settings
        return self._once("_retriever", lambda: Retriever(self.open_store(), self.embedder, mode=s.retrieval_mode,
                                                          fusion=s.fusion, mmr_lambda=s.mmr_lambda,
                                                          alpha=s.hybrid_alpha))

    def access(self, principal: Principal = PUBLIC) -> Access:
        """What `principal` may see now; fixed for one request (one search, one answer)."""
        return Access.of(principal, self.clock())

    def search(self, query: str, k: int | None = None, *, mode: Mode | None = None,
               filters: Filters | None = None, principal: Principal = PUBLIC, access: Access | None = None
               ) -> list[Hit]:
        """The best hits `principal` may see (or `access`, when a request fixed it already): the
        store hides the rest before ranking."""
        scoped = replace(filters or Filters(), access=access or self.access(principal))
        return self.retriever.search(query, self.settings.top_k if k is None else k, mode=mode, filters=scoped)

    def denial(self, doc_id: str, principal: Principal = PUBLIC) -> str | None:
        """Why `principal` may not see the article now ("embargo", "desk", "retracted"), or None."""
        return self.retriever.store.ruled().denial(doc_id, self.access(principal))

    def hidden_documents(self, principal: Principal = PUBLIC) -> frozenset[str]:
        """The ids of the indexed articles `principal` may not see now (never shown to it)."""
        return self.retriever.store.ruled().hidden_documents(self.access(principal))

    def standalone_question(self, question: str, history: Sequence[Turn] = ()) -> str:
        """The follow-up's most likely standalone form, as searched and shown (Rewrite.text)."""
        return rewrites(question, history, self.parser)[0].text

    # The two fitted models, loaded on first use; a threshold set in the settings overrides the fitted one.
    @cached_property
    def reader(self) -> ReaderModel:
        return ReaderModel.load(self.settings.reader_model or MODEL_PATH)

    @cached_property
    def decision(self) -> DecisionModel:
        return DecisionModel.load(self.settings.decision_model or DECISION_PATH)

    @property
    def threshold(self) -> float:
        """The reader's: evidence above it answers the question well enough to stop trying rewrites."""
        return _either(self.settings.refusal_threshold, self.reader.threshold)

    @property
    def answer_threshold(self) -> float:
        """The decision's: a reading at or above it is answered, else refused."""
        return _either(self.settings.answer_threshold, self.decision.threshold)

    def read(self, question: str, history: Sequence[Turn] = (), *, k: int | None = None,
             mode: Mode | None = None, limit: int = 4, principal: Principal = PUBLIC,
             access: Access | None = None) -> Findings:
        """What retrieval and the reader model find for the question (its evidence ranked by probability).

        A follow-up's rewrites come most salient antecedent first; the first that the evidence
        answers (above the refusal threshold) is kept, else the best-scoring one."""
        best = None
        access = access or self.access(principal)
        for found in self._per_rewrite(question, history, k=k, mode=mode, model=self.reader, limit=limit,
                                       access=access):
            if found.score >= self.threshold:
                return found
            if best is None or found.score > best.score:
                best = found
        assert best is not None  # there is always at least one rewrite: the question itself
        return best

    def first_stage(self, question: str, history: Sequence[Turn] = (), *, k: int | None = None,
                    mode: Mode | None = None, limit: int = 4) -> tuple[Evidence, ...]:
        """The evidence of every rewrite, with first-stage scores (no reader model): the rows the
        reader model is fitted on (eval/fit_reader.py)."""
        return tuple(ev for found in self._per_rewrite(question, history, k=k, mode=mode, model=None, limit=limit,
                                                       access=self.access())
                     for ev in found.evidence)

    def _per_rewrite(self, question: str, history: Sequence[Turn], *, k: int | None, mode: Mode | None,
                     model: ReaderModel | None, limit: int, access: Access) -> Iterator[Findings]:
        for rewrite in rewrites(question, history, self.parser):
            hits = tuple(self.search(rewrite.text, k, mode=mode, access=access))  # the earlier turn helps retrieval...
            q = analyse(rewrite.question, self.parser)  # ...but is no part of what is asked
            evidence = read(q, hits, self.embedder, self.parser, model, limit=limit) if hits else []
            yield Findings(rewrite, hits, q, tuple(evidence))

    # -- answering -----------------------------------------------------------------------------
    def ask(self, question: str, history: Sequence[Turn] = (), *, k: int | None = None,
            mode: Mode | None = None, principal: Principal = PUBLIC) -> Answer:
        *_, last = self.ask_stream(question, history, k=k, mode=mode, principal=principal)
        assert isinstance(last, Final)
        return last.answer

    def ask_stream(self, question: str, history: Sequence[Turn] = (), *, k: int | None = None,
                   mode: Mode | None = None, principal: Principal = PUBLIC) -> Iterator[Event]:
        """Draft pieces as the model writes them, then the checked answer (Final, always last).
        Everything it reads, quotes or names is what `principal` may see when the question arrives."""
        t0 = time.perf_counter()
        found = self.read(question, history, k=k, mode=mode, limit=8, access=self.access(principal))
        hits, q, evidence = found.hits, found.question, found.evidence
        if q.latest:
            evidence = newest_first(evidence)
        retrieve_s = time.perf_counter() - t0
        ttft, done, sure = 0.0, [], None
        if not relevant(evidence):
            verdict = not_found(q.text, "retrieval found nothing that matches the question")
        else:
            for item in self.readings(q, evidence):
                if isinstance(item, Reading):
                    done.append(item)
                    continue
                if not ttft and item.strip():
                    ttft = time.perf_counter() - t0
                yield Draft(item)
            sure = next((r for r in done if self._sure(r)), None)
            if sure is not None:
                verdict = sure.answer
            else:
                best = max(done, key=lambda r: r.probability)
                why = "the model's reply is not in the passages" if best.answer is None else \
                    f"confidence {best.probability:.2f} below {self.answer_threshold:.2f}"
                verdict = refusal(q.text, hits, why, evidence)
        # What the answer rests on, or for a refusal the best reply that fell short (for the report).
        chosen = sure or max(done, key=lambda r: r.probability, default=None)
        total = time.perf_counter() - t0
        yield Final(Answer(
            question=question, standalone_question=found.rewrite.text, text=verdict.text, refused=verdict.refused,
            citations=verdict.citations, hits=hits, status=verdict.status, closest=verdict.closest,
            confidence=chosen.probability if chosen else 0.0,
            candidate=chosen.answer.text if chosen and chosen.answer else "",
            decision=chosen.features if chosen else {}, prompt_tokens=chosen.prompt_tokens if chosen else 0,
            reply="\n".join(r.reply for r in done),
            timings={"retrieve_s": retrieve_s, "ttft_s": ttft or total, "total_s": total},
        ))

    def readings(self, q: Question, evidence: Sequence[Evidence], *,
                 until_sure: bool = True) -> Iterator[str | Reading]:
        """The model reads the best window; while the decision is not sure of its reply, it reads
        again with one window more (up to RAG_READER_WINDOWS). Everything before the question is the
        previous prompt's, so llama.cpp computes only the new window and the question. Yields the
        draft pieces (a new line for each new reading) and, after each reading, its Reading."""
        wins = windows(evidence, self.settings.reader_windows)
        for n in range(1, len(wins) + 1):
            if n > 1:
                yield "\n"
            messages = prompt_messages(q.text, wins[:n])
            pieces: list[str] = []
            logprobs: list[float] = []
            for tok in self.generator.stream_scored(messages, max_new_tokens=MAX_REPLY_TOKENS, stop=("\n",)):
                if tok.logprob is not None:
                    logprobs.append(tok.logprob)
                if tok.text:
                    pieces.append(tok.text)
                    yield tok.text
            reply = "".join(pieces)
            found = None if is_none(reply) else self._find(reply, q, wins[:n])
            x = features(q, logprobs, found, evidence, wins[:n], self.parser)
            reading = Reading(n, reply, found, x, self.decision.probability(x),
                              answer_located(found, as_of=q.latest) if found is not None else None,
                              self.generator.count_tokens("\n".join(m["content"] for m in messages)))
            yield reading
            if until_sure and self._sure(reading):
                return

    def _sure(self, reading: Reading) -> bool:
        return reading.answer is not None and reading.probability >= self.answer_threshold

    def _find(self, reply: str, q, wins) -> Located | None:
        """The reply in the windows; a sentence in the model's own words only where the verifier
        finds it agrees with the sentence a window is centred on."""
        found = locate(reply, wins)
        if found is not None:
            return found
        for w in wins:
            ev = w.evidence
            if agrees(reply, q, ev, self.parser):
                sentence = next((s for s in w.sentences if s.start == ev.start), w.sentences[0])
                return Located(w, reply.strip(), sentence, "checked")
        return None

    def health(self, principal: Principal = PUBLIC) -> dict:
        """Counts of what `principal` may see, the models and the index version."""
        st = self.retriever.store
        counts = st.ruled().visible_counts(st.counts(), self.access(principal))
        return {**counts, "embedder": self.embedder.id, "generator": self.generator.id, "index": st.version}


@dataclass(frozen=True)
class Findings:
    """What Engine.read finds for a question: the standalone form kept, what it retrieved, the
    question as analysed, and the evidence the reader model ranked (most probable first)."""

    rewrite: Rewrite
    hits: tuple[Hit, ...]
    question: Question
    evidence: tuple[Evidence, ...]

    @property
    def score(self) -> float:
        return self.evidence[0].score if self.evidence else -1.0


def _either(setting: float | None, fitted: float) -> float:
    return fitted if setting is None else setting


# A question about the current state reads the newest of the evidence that is close to the best.
NEWEST_WITHIN = 0.5  # share of the best evidence score


def newest_first(evidence: Sequence[Evidence]) -> tuple[Evidence, ...]:
    """Evidence scoring at least NEWEST_WITHIN of the best, newest article first (stable: same-day
    evidence keeps the reader's order); then the rest, as ranked."""
    if not evidence:
        return tuple(evidence)
    floor = NEWEST_WITHIN * max(ev.score for ev in evidence)
    close = [ev for ev in evidence if ev.score >= floor]
    rest = [ev for ev in evidence if ev.score < floor]
    return (*sorted(close, key=lambda ev: ev.hit.chunk.date, reverse=True), *rest)


def relevant(evidence: Sequence[Evidence]) -> bool:
    """Whether retrieval found anything that matches the question: a sentence close in meaning, one
    sharing a good part of its words, or a passage naming what it names (a question that names
    nothing, "What was the cause of death?", always counts: it leans on its conversation). Only when
    nothing does is the archive said not to hold it."""
    return any(ev.features.get("dense", 0.0) >= 0.3 or ev.features.get("lex_ctx", 0.0) >= 0.3
               or ev.features.get("names_ctx", 0.0) > 0 for ev in evidence)
