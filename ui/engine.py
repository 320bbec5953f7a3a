"""What ui/ needs of the engine, as a Protocol: rag.pipeline.Engine is one, and so is a test's fake.

The front ends only ask, stream, search, look up articles and report health; naming that here keeps
them typed without tying them to how the engine is built. Also the two things every server does
with its engine: start its event stream so that it is closed when the caller stops reading, and
load the index and models before the first visitor's question.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from rag.records import PUBLIC, Access, Answer, Event, Filters, Hit, Mode, Principal, Turn

if TYPE_CHECKING:
    from rag.config import Settings
    from rag.store.base import Store

log = logging.getLogger(__name__)


class RetrieverLike(Protocol):
    """The engine's retriever: its store (articles by id, the snapshot's version) and raw search."""

    store: Store

    def search(self, query: str, k: int = 5, *, mode: Mode | None = None, filters: Filters | None = None,
               candidates: int = 50, diversify: bool = True) -> list[Hit]: ...


class EngineLike(Protocol):
    """The engine as ui/ uses it."""

    settings: Settings

    @property
    def retriever(self) -> RetrieverLike: ...

    @property
    def generator(self) -> Any:
        """The model that drafts answers (warm_up calls its `load` when it has one)."""
        ...

    def search(self, query: str, k: int | None = None, *, mode: Mode | None = None,
               filters: Filters | None = None, principal: Principal = PUBLIC) -> list[Hit]: ...

    def ask(self, question: str, history: Sequence[Turn] = (), *, k: int | None = None,
            mode: Mode | None = None, principal: Principal = PUBLIC) -> Answer: ...

    def ask_stream(self, question: str, history: Sequence[Turn] = (), *, k: int | None = None,
                   mode: Mode | None = None, principal: Principal = PUBLIC) -> Iterator[Event]:
        """rag.records.Draft pieces, then exactly one rag.records.Final: all of it what `principal` may see."""
        ...

    def access(self, principal: Principal = PUBLIC) -> Access:
        """What `principal` may see now (for a search on the retriever itself)."""
        ...

    def denial(self, doc_id: str, principal: Principal = PUBLIC) -> str | None:
        """Why `principal` may not see that article now, or None (counted, never shown)."""
        ...

    def hidden_documents(self, principal: Principal = PUBLIC) -> frozenset[str]:
        """The articles `principal` may not see now: never listed, shown or counted for it."""
        ...

    def health(self, principal: Principal = PUBLIC) -> dict[str, Any]: ...


@contextlib.contextmanager
def answer_events(engine: EngineLike, question: str, history: Sequence[Turn] = (), *, k: int | None = None,
                  mode: Mode | None = None, principal: Principal = PUBLIC) -> Iterator[Iterator[Event]]:
    """engine.ask_stream, closed on leaving the block: a reader who goes away mid-answer releases the
    engine's generator (and the model it holds) at once rather than when it is collected."""
    stream = engine.ask_stream(question, history, k=k, mode=mode, principal=principal)
    try:
        yield stream
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()


def open_engine(settings: Settings) -> EngineLike:
    """The process's one Engine (imported here so that importing ui/ loads no models)."""
    from rag.pipeline import Engine

    return Engine(settings)


def warm_up(engine: EngineLike) -> None:
    """Load the index and models now rather than in the first question (best effort: a failure
    here reaches that question, which reports it)."""
    try:
        engine.search("warm up", 1)
        load = getattr(getattr(engine, "generator", None), "load", None)
        if callable(load):
            load()
        log.info("engine warmed up")
    except Exception as exc:
        log.warning("warm-up failed: %s", exc)


def warm_up_in_background(engine: EngineLike) -> threading.Thread:
    """warm_up in a daemon thread, so the server answers (health: "starting") while models load."""
    thread = threading.Thread(target=warm_up, args=(engine,), name="rag-warm-up", daemon=True)
    thread.start()
    return thread
