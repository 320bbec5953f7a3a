"""The engine's one entry point: CLI, UI, API and evaluation all go through Engine."""

from __future__ import annotations

import threading
from pathlib import Path
import time
from typing import Iterable, Iterator, Sequence

from . import store
from .chunking import ChunkingSettings
from .config import Settings, load_settings
from .embedding import Embedder, make_embedder
from .index import IndexParams
from .ingest import IngestReport, ingest
from .citations import agrees, answer_located, not_found, refusal
from .conversation import focus, rewrites
from .decision import MODEL_PATH as DECISION_PATH, DecisionModel, features
from .generation import Generator, make_generator
from .nlp import Parser
from .question import Question, analyse
from .reader import MODEL_PATH, Evidence, ReaderModel, read
from .reading import MAX_REPLY_TOKENS, Located, Reading, is_none, locate, prompt_messages, windows
from .records import Answer, Hit, Turn
from .retrieval import Filters, Mode, Retriever


class Engine:
    """Holds the models and the index for a process; heavy loading happens on first use."""

    def __init__(self, settings: Settings | None = None, *, embedder: Embedder | None = None,
                 generator: Generator | None = None) -> None:
        self.settings = settings or load_settings()
        self._embedder = embedder
        self._injected_embedder = embedder is not None
        self._generator = generator
        self._retriever: Retriever | None = None
        self._reader: ReaderModel | None = None
        self._decision: DecisionModel | None = None
        self.parser = Parser(self.settings.spacy_model)
        self._lock = threading.RLock()

    # -- configuration -------------------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    self._embedder = self._make_embedder(follow_index=True)
        return self._embedder

    def _make_embedder(self, *, follow_index: bool) -> Embedder:
        """The configured backend; with "auto", the one that built the index (its queries must be
        embedded alike), else the one measured fastest on this CPU."""
        s = self.settings
        backend, cache = s.embedder_backend, Path(s.model_cache)
        built = self._indexed_embedder_id() if backend == "auto" and follow_index else None
        if built is not None:
            from .autotune import float32_backend
            from .embedding import backend_of

            backend = backend_of(built) or float32_backend(s.embedder, cache)
        return make_embedder(backend, s.embedder, cache_dir=cache, batch_size=s.embed_batch_size)

    def _indexed_embedder_id(self) -> str | None:
        """The embedder id the current index records, or None when there is none (or it is unreadable:
        opening it reports that with the file named)."""
        try:
            if self.settings.store_url:
                from .store.postgres import connect, read_meta, schema_version

                with connect(self.settings.store_url, autocommit=True) as conn:
                    return read_meta(conn).get("embedder") if schema_version(conn) else None
            if self.embedded_kind == "disk":
                from .store import disk

                if not disk.is_disk_store(self.index_dir):
                    return None
                db = disk.connect(self.index_dir)
                try:
                    live = disk.live_version(db)
                    return None if live is None else disk.version_row(db, live)["settings"].get("embedder")
                finally:
                    db.close()
            path = store.current_path(self.index_dir)
            return None if path is None else store.read_manifest(path).get("embedder", {}).get("id")
        except Exception:  # noqa: BLE001 - see the docstring
            return None

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            with self._lock:
                if self._generator is None:
                    s = self.settings
                    self._generator = make_generator(
                        s.generator_backend,
                        model=s.openai_model if s.generator_backend == "openai" else s.generator_model,
                        cache_dir=Path(s.model_cache), model_home=Path(s.model_home), quantize=s.generator_quantize,
                        base_url=s.openai_base_url, api_key=s.openai_api_key, requantize=s.gguf_requantize,
                        threads=s.generator_threads,
                    )
        return self._generator

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

    @property
    def embedded_kind(self) -> str:
        """"disk" or "folder": the configured embedded store, or with "auto" the one index_dir holds
        (the disk store when it holds none). Looked up each time: an ingest may create the index."""
        return store.embedded_kind(self.index_dir, self.settings.embedded_backend)

    # -- ingest --------------------------------------------------------------------------------
    def ingest(self, paths: Iterable[str | Path] | None = None, *, rebuild: bool = False,
               progress: bool = False) -> IngestReport:
        paths = list(paths) if paths else [self.settings.corpus_dir]
        if rebuild and self.settings.embedder_backend == "auto" and not self._injected_embedder:
            self._embedder = self._make_embedder(follow_index=False)  # everything is re-embedded: take this CPU's best
        if self.settings.store_url:
            return self._ingest_postgres(paths, rebuild=rebuild, progress=progress)
        with self._lock:
            report = ingest(paths, index_dir=self.index_dir, embedder=self.embedder, chunking=self.chunking,
                            params=self.index_params, rebuild=rebuild, progress=progress,
                            backend=self.embedded_kind)
            self._retriever = None  # the next query sees the new snapshot
        return report

    def _ingest_postgres(self, paths: list, **kw) -> IngestReport:
        from .store.pg_ingest import ingest_postgres

        s = self.settings
        return ingest_postgres(paths, url=s.store_url, embedder=self.embedder, chunking=self.chunking,
                               cache_dir=self.index_dir, max_prune_share=s.prune_max_share, hnsw_m=s.pg_hnsw_m,
                               hnsw_ef_construction=s.pg_hnsw_ef_construction, **kw)

    # -- retrieval -----------------------------------------------------------------------------
    def open_store(self) -> store.Store:
        """The configured store: PostgreSQL when RAG_STORE_URL is set, else the snapshot folder."""
        s = self.settings
        if s.store_url:
            from .store.postgres import PostgresStore

            return PostgresStore(s.store_url, embedder_id=self.embedder.id, chunking=self.chunking.to_json(),
                                 ef_search=s.pg_hnsw_ef_search, pool_size=s.store_pool_size)
        if self.embedded_kind == "disk":
            from .store.disk import DiskStore

            return DiskStore(self.index_dir, nprobe=s.disk_ivf_nprobe, embedder_id=self.embedder.id,
                             chunking=self.chunking.to_json(), lexical_max_df_share=s.disk_lexical_max_df)
        snap = store.load(self.index_dir, self.index_params)
        store.check_compatible(snap.manifest, embedder_id=self.embedder.id,
                               chunking=self.chunking.to_json(), where=self.index_dir)
        return store.EmbeddedStore(snap)

    @property
    def retriever(self) -> Retriever:
        if self._retriever is None:
            with self._lock:
                if self._retriever is None:
                    s = self.settings
                    self._retriever = Retriever(self.open_store(), self.embedder, mode=s.retrieval_mode,
                                                fusion=s.fusion, mmr_lambda=s.mmr_lambda, alpha=s.hybrid_alpha)
        return self._retriever

    def search(self, query: str, k: int | None = None, *, mode: Mode | None = None,
               filters: Filters | None = None) -> list[Hit]:
        return self.retriever.search(query, self.settings.top_k if k is None else k, mode=mode, filters=filters)

    def standalone_question(self, question: str, history: Sequence[Turn] = ()) -> str:
        return rewrites(question, history, self.parser)[0]

    @property
    def reader(self) -> ReaderModel:
        if self._reader is None:
            self._reader = ReaderModel.load(self.settings.reader_model or MODEL_PATH)
        return self._reader

    @property
    def threshold(self) -> float:
        t = self.settings.refusal_threshold
        return self.reader.threshold if t is None else t

    def read(self, question: str, history: Sequence[Turn] = (), *, k: int | None = None,
             mode: Mode | None = None, model: ReaderModel | None | bool = True, limit: int = 4):
        """(standalone question, hits, analysed question, evidence ranked by probability).

        A follow-up's rewrites come most salient antecedent first; the first that the evidence
        answers (above the refusal threshold) is kept, else the best-scoring one. `model=None`
        gives first-stage scores and keeps the evidence of every rewrite (for fitting)."""
        reader = self.reader if model is True else model or None
        best = None
        pooled = []
        for standalone in rewrites(question, history, self.parser):
            hits = self.search(standalone, k, mode=mode)
            q = analyse(focus(standalone)[0], self.parser)
            evidence = read(q, hits, self.embedder, self.parser, reader, limit=limit) if hits else []
            pooled += evidence
            score = evidence[0].score if evidence else -1.0
            if best is None or score > best[-1]:
                best = (standalone, hits, q, evidence, score)
            if reader is not None and score >= self.threshold:
                best = (standalone, hits, q, evidence, score)
                break
        if reader is None:
            return best[0], best[1], best[2], pooled
        return best[:4]

    @property
    def decision(self) -> DecisionModel:
        if self._decision is None:
            self._decision = DecisionModel.load(self.settings.decision_model or DECISION_PATH)
        return self._decision

    @property
    def answer_threshold(self) -> float:
        t = self.settings.answer_threshold
        return self.decision.threshold if t is None else t

    # -- answering -----------------------------------------------------------------------------
    def ask(self, question: str, history: Sequence[Turn] = (), *, k: int | None = None,
            mode: Mode | None = None) -> Answer:
        answer = None
        for item in self.ask_stream(question, history, k=k, mode=mode):
            if isinstance(item, Answer):
                answer = item
        assert answer is not None
        return answer

    def ask_stream(self, question: str, history: Sequence[Turn] = (), *, k: int | None = None,
                   mode: Mode | None = None) -> Iterator[str | Answer]:
        """Draft text pieces as the model writes them, then the checked Answer (always last)."""
        t0 = time.perf_counter()
        standalone, hits, q, evidence = self.read(question, history, k=k, mode=mode, limit=8)
        retrieve_s = time.perf_counter() - t0
        ttft, done, sure = 0.0, [], None
        if not _relevant(evidence):
            verdict = not_found(q.text, "retrieval found nothing that matches the question")
        else:
            for item in self.readings(q, evidence):
                if isinstance(item, Reading):
                    done.append(item)
                    continue
                if not ttft and item.strip():
                    ttft = time.perf_counter() - t0
                yield item
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
        yield Answer(
            question=question, standalone_question=standalone, text=verdict.text, refused=verdict.refused,
            citations=verdict.citations, hits=tuple(hits), status=verdict.status, closest=verdict.closest,
            confidence=chosen.probability if chosen else 0.0,
            candidate=chosen.answer.text if chosen and chosen.answer else "",
            decision=chosen.features if chosen else {}, prompt_tokens=chosen.prompt_tokens if chosen else 0,
            reply="\n".join(r.reply for r in done),
            timings={"retrieve_s": retrieve_s, "ttft_s": ttft or total, "total_s": total},
        )

    def readings(self, q: Question, evidence: Sequence[Evidence], *, until_sure: bool = True) -> Iterator[str | Reading]:
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
                              answer_located(found) if found is not None else None,
                              self.generator.count_tokens("\n".join(m["content"] for m in messages)))
            yield reading
            if until_sure and self._sure(reading):
                return

    def _sure(self, reading: Reading) -> bool:
        return reading.answer is not None and reading.probability >= self.answer_threshold

    def _find(self, reply: str, q, wins) -> Located | None:  # noqa: ANN001
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

    def health(self) -> dict:
        st = self.retriever.store
        return {**st.counts(), "embedder": self.embedder.id, "generator": self.generator.id, "index": st.version}


def _relevant(evidence: Sequence[Evidence]) -> bool:
    """Whether retrieval found anything that matches the question: a sentence close in meaning, one
    sharing a good part of its words, or a passage naming what it names (a question that names
    nothing, "What was the cause of death?", always counts: it leans on its conversation). Only when
    nothing does is the archive said not to hold it."""
    return any(ev.features.get("dense", 0.0) >= 0.3 or ev.features.get("lex_ctx", 0.0) >= 0.3
               or ev.features.get("names_ctx", 0.0) > 0 for ev in evidence)
