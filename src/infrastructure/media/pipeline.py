"""Run a producing iterator in its own thread, a bounded queue ahead of its consumer."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
POLL_S = 0.1


class _End:
    """Put after the last item."""


_END = _End()


@dataclass(frozen=True)
class _Raised:
    error: BaseException


def prefetched(items: Iterator[T], *, depth: int) -> Iterator[T]:
    """Yield ``items`` while a worker thread computes up to ``depth`` of them ahead.

    An error in the worker is raised here; leaving the loop early stops the worker.
    """
    buffer: queue.Queue[T | _Raised | _End] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    worker = threading.Thread(target=_fill, args=(items, buffer, stop), name="reelqueue-prefetch",
                              daemon=True)
    worker.start()
    try:
        while not isinstance(item := buffer.get(), _End):
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        stop.set()
        worker.join()


def _fill(items: Iterator[T], buffer: queue.Queue[T | _Raised | _End], stop: threading.Event) -> None:
    try:
        for item in items:
            if not _put(buffer, item, stop):
                return
        _put(buffer, _END, stop)
    except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
        _put(buffer, _Raised(exc), stop)


def _put(buffer: queue.Queue[T | _Raised | _End], item: T | _Raised | _End, stop: threading.Event) -> bool:
    """Wait for room, unless the consumer has gone; False when it has."""
    while not stop.is_set():
        try:
            buffer.put(item, timeout=POLL_S)
            return True
        except queue.Full:
            continue
    return False
