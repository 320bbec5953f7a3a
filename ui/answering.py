"""The one answering path of the HTTP faces: the JSON API (/api/ask and its event stream) and the
OpenAI-compatible endpoint (/v1/chat/completions, plain and streamed).

A request is admitted to the AnswerPool (ui.admission) or refused at once (503, Retry-After); its
question runs on a pool worker, and the waiting request follows it as a stream of progress events:
a Waiting tick when a heartbeat interval passed with nothing new (its place in line; 0 once it is
being answered), every Draft the engine writes, then exactly one end: the engine's Final, Failed
or TimedOut. Each face turns those into its own wire format; a face that wants only the answer
calls `answer`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TypeAlias

from rag.config import Settings
from rag.records import PUBLIC, Answer, Draft, Event, Final, Principal

from .admission import AnswerPool, Ticket
from .engine import EngineLike, answer_events
from .schemas import AskRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    workers: int = 2
    queue_size: int = 32
    timeout_s: float = 120.0
    heartbeat_s: float = 2.0

    @classmethod
    def from_settings(cls, settings: Settings | None) -> Limits:
        if settings is None:
            return cls()
        return cls(settings.answer_workers, settings.answer_queue_size, settings.answer_timeout_s,
                   settings.stream_heartbeat_s)


@dataclass(frozen=True)
class Waiting:
    """A heartbeat passed with nothing new: `position` requests must start before this one (0: it
    is being answered, or about to be)."""

    position: int


@dataclass(frozen=True)
class Failed:
    """The engine raised `error`, or ended without an answer (NoAnswer). The traceback is in the
    server log; a face tells its client a plain sentence (ui.errors)."""

    error: Exception


@dataclass(frozen=True)
class TimedOut:
    """No answer by the deadline; `started`: the question was being answered (else still in line)."""

    started: bool
    timeout_s: float

    @property
    def message(self) -> str:
        return f"no answer within {self.timeout_s:g} s"


class NoAnswer(RuntimeError):
    """The engine's stream ended without its Final event."""


# What Answering.progress yields: Waiting and Draft any number of times, then one Final, Failed or TimedOut.
Progress: TypeAlias = Waiting | Draft | Final | Failed | TimedOut


BUSY = "the server is busy answering other questions"


class Answering:
    """The engine behind one line of answer workers, shared by every face that answers over HTTP."""

    def __init__(self, engine: EngineLike, limits: Limits | None = None) -> None:
        self.engine = engine
        self.limits = limits or Limits()
        self.pool = AnswerPool(self.limits.workers, self.limits.queue_size, self.limits.timeout_s)
        self.on_answer: Callable[[Answer], object] | None = None  # told each final answer (ui/metrics.py)

    def admit(self) -> Ticket | None:
        """A place in line, or None when the line is full (answer 503 with retry_after())."""
        return self.pool.admit()

    def retry_after(self) -> int:
        return self.pool.retry_after()

    async def progress(self, ticket: Ticket, req: AskRequest, principal: Principal = PUBLIC) -> AsyncIterator[Progress]:
        """Answer `req` on a pool worker when the ticket's turn comes; see the module's docstring for
        the events. The caller holds the ticket (`with ticket:`), so a client that leaves frees it."""
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[Event | Failed] = asyncio.Queue()

        def put(item: Event | Failed) -> None:
            loop.call_soon_threadsafe(inbox.put_nowait, item)

        def work(ticket: Ticket) -> None:
            try:
                with answer_events(self.engine, req.question, req.turns(), k=req.k, mode=req.mode,
                                   principal=principal) as events:
                    for event in events:
                        if ticket.stop.is_set():
                            return  # given up: the stream is closed on the way out
                        put(event)
                        if isinstance(event, Final):
                            if self.on_answer is not None:
                                self.on_answer(event.answer)
                            return
                put(Failed(NoAnswer("the engine produced no answer")))
            except Exception as exc:
                log.exception("answering failed")
                put(Failed(exc))

        self.pool.run(ticket, work)
        while True:
            wait = min(self.limits.heartbeat_s, ticket.remaining())
            if wait <= 0:
                yield TimedOut(ticket.started, self.limits.timeout_s)
                return
            try:
                item = await asyncio.wait_for(inbox.get(), wait)
            except TimeoutError:
                yield Waiting(ticket.position())
                continue
            yield item
            if not isinstance(item, Draft):
                return

    async def answer(self, ticket: Ticket, req: AskRequest, principal: Principal = PUBLIC
                     ) -> Answer | Failed | TimedOut:
        """The answer alone, or why there is none. Holds the ticket until then."""
        with ticket:
            async for event in self.progress(ticket, req, principal):
                match event:
                    case Final(answer):
                        return answer
                    case Failed() | TimedOut():
                        return event
        raise AssertionError("Answering.progress ended without an end event")
