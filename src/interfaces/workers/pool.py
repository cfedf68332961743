"""The job pool: at most ``concurrency`` jobs at once, on job threads fed through a queue.

The threads are kept for the worker's life (no thread start per job: a start waits for the new
thread to take the GIL). A slot is claimed before a message is looked at (its job loaded, its
path checked) and then either started or given back, so whoever dispatches (the loop, or a job
thread starting a prefetched message) never overfills the pool and never holds a lock while it
loads anything. Per-path limits (``cinema=1``) are counted here too.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager

from src.interfaces.workers.delivery import Delivery, ExtendMark, Handler
from src.interfaces.workers.limits import PathSlots

RunJob = Callable[[Delivery, Handler], None]


class JobPool:
    def __init__(self, *, concurrency: int, path_limits: Mapping[str, int], run: RunJob,
                 after: Callable[[], None]) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency
        self.paths = PathSlots(path_limits)
        self.running: set[Delivery] = set()
        self._run = run
        self._after = after  # called on the job thread after each job (start a prefetched one)
        self._claimed = 0
        self._settling = 0  # finished jobs whose outcome is being acted on
        self._changed = threading.Condition()
        self._extending = ExtendMark[Delivery](self._changed)  # the heartbeat's current extend
        self._slots: list[threading.Thread] = []
        self._ready: queue.SimpleQueue[tuple[Delivery, Handler] | None] = queue.SimpleQueue()

    def free(self, *, wait_s: float = 0) -> int:
        """Free slots, after waiting up to ``wait_s`` for one when none is."""
        with self._changed:
            if wait_s and not self._free():
                self._changed.wait(wait_s)
            return self._free()

    def claim(self) -> bool:
        with self._changed:
            if not self._free():
                return False
            self._claimed += 1
            return True

    def unclaim(self) -> None:
        with self._changed:
            self._claimed -= 1
            self._changed.notify_all()

    def start(self, delivery: Delivery, handler: Handler) -> None:
        """Run a job on a claimed slot; slot threads start as the first jobs arrive."""
        with self._changed:
            self._claimed -= 1
            self.running.add(delivery)
            slot = None
            if len(self._slots) < self.concurrency:
                name = f"job-slot-{len(self._slots) + 1}"
                slot = threading.Thread(target=self._slot, daemon=True, name=name)
                self._slots.append(slot)
        if slot is not None:
            slot.start()
        self._ready.put((delivery, handler))

    def finish(self, delivery: Delivery) -> None:
        """Take a job off the running set (its slot is free), once no extend of its message is
        on its way: an extend never lands after the message was released or acked. Its outcome
        is then acted on; :meth:`settled` says when that is done."""
        with self._changed:
            self._changed.wait_for(lambda: self._extending.item is not delivery)
            self.running.discard(delivery)
            self._settling += 1
            self._changed.notify_all()
        self.paths.give_back(delivery.labels.production_path)

    def settled(self) -> None:
        with self._changed:
            self._settling -= 1
            self._changed.notify_all()

    def extending(self, delivery: Delivery) -> AbstractContextManager[bool]:
        """Marks the job whose message the heartbeat extends now (the call goes out with no lock
        held); yields False when the job has finished: its message is settled."""
        return self._extending.hold(delivery, present=lambda: delivery in self.running)

    def snapshot(self) -> list[Delivery]:
        with self._changed:
            return list(self.running)

    def wait_until_idle(self, deadline_s: float, *, poll_s: float) -> None:
        with self._changed:
            while (self.running or self._settling) and time.monotonic() < deadline_s:
                self._changed.wait(min(poll_s, max(deadline_s - time.monotonic(), 0)))

    def close(self) -> None:
        """Idle slot threads end; one still running a job ends after it."""
        with self._changed:
            slots = len(self._slots)
        for _ in range(slots):
            self._ready.put(None)

    def _free(self) -> int:
        return max(self.concurrency - len(self.running) - self._claimed, 0)

    def _slot(self) -> None:
        while (item := self._ready.get()) is not None:
            self._run(*item)
            self._after()
