"""Admission control for answering: a fixed pool of answer workers and a bounded waiting line.

Answering is CPU-bound (one local model), so more requests at once only make every one slower.
A request is admitted while fewer than `workers + queue_size` are running or waiting; beyond that
the API answers 503 with Retry-After at once instead of stalling. Each admitted request has a
deadline (`timeout_s`, counted from admission); past it a waiting request is dropped from the line
and a running one is told to stop after its next token. The pool is separate from the web server's
own threads, so /api/health and static files never wait behind answers.
"""

from __future__ import annotations

import contextvars
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Ticket:
    """One admitted request: its place in line, its deadline and a stop flag for its worker."""

    pool: AnswerPool
    deadline: float
    stop: threading.Event = field(default_factory=threading.Event)
    started: bool = False
    future: Future | None = None

    def position(self) -> int:
        """0 when answering or about to start; n when n requests must start before it can."""
        return self.pool._position(self)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def cancel(self) -> None:
        """Give up on this request: leave the line, or stop the worker after its next token."""
        self.stop.set()
        self.pool._leave(self)

    # `with ticket:` holds the place for a block: leaving it (answered, failed, the client gone)
    # frees it. Cancelling a finished request changes nothing, so every way out may do it.
    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()


class AnswerPool:
    def __init__(self, workers: int, queue_size: int, timeout_s: float) -> None:
        self.workers = max(1, workers)
        self.queue_size = max(0, queue_size)
        self.timeout_s = timeout_s
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="rag-answer")
        self._lock = threading.Lock()
        self._waiting: list[Ticket] = []
        self._running = 0
        self._mean_s = 2.0  # running mean answer time, for Retry-After

    # -- admission ---------------------------------------------------------------------------
    def admit(self) -> Ticket | None:
        """A ticket, or None when the line is full (answer 503 with retry_after())."""
        with self._lock:
            now = time.monotonic()
            for stale in [t for t in self._waiting if t.deadline < now]:  # timed out, e.g. never started
                stale.stop.set()
                self._waiting.remove(stale)
                if stale.future is not None:
                    stale.future.cancel()
            if self._running + len(self._waiting) >= self.workers + self.queue_size:
                return None
            ticket = Ticket(self, time.monotonic() + self.timeout_s)
            self._waiting.append(ticket)
            return ticket

    def retry_after(self) -> int:
        """Seconds until a place is likely free: the line ahead divided among the workers."""
        with self._lock:
            ahead = self._running + len(self._waiting)
        return max(1, math.ceil(ahead / self.workers * self._mean_s))

    def run(self, ticket: Ticket, fn: Callable[[Ticket], Any]) -> Future:
        """Run fn(ticket) on a worker when its turn comes; the future gets its result."""

        def work() -> Any:
            with self._lock:
                if ticket.stop.is_set() or ticket not in self._waiting:
                    return None
                self._waiting.remove(ticket)
                ticket.started = True
                self._running += 1
            t0 = time.monotonic()
            try:
                return fn(ticket)
            finally:
                with self._lock:
                    self._running -= 1
                    self._mean_s = 0.8 * self._mean_s + 0.2 * (time.monotonic() - t0)

        # The worker runs in the caller's context (contextvars: e.g. which app's metrics it counts in).
        ticket.future = self._executor.submit(contextvars.copy_context().run, work)
        return ticket.future

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"running": self._running, "waiting": len(self._waiting), "workers": self.workers,
                    "queue_size": self.queue_size}

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- tickets -----------------------------------------------------------------------------
    def _position(self, ticket: Ticket) -> int:
        # Requests ahead in line beyond the free workers; 0: answering, or about to start.
        with self._lock:
            try:
                ahead = self._waiting.index(ticket)
            except ValueError:
                return 0
            return max(0, ahead + 1 - (self.workers - self._running))

    def _leave(self, ticket: Ticket) -> None:
        with self._lock:
            if ticket in self._waiting:
                self._waiting.remove(ticket)
        if ticket.future is not None:
            ticket.future.cancel()  # a no-op once running; the stop flag ends it then

