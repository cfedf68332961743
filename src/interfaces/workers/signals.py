"""SIGTERM / SIGINT: the first asks the worker to stop gracefully, the second exits at once.

The handler only sets a flag (through ``on_stop``) and writes with ``os.write``: a signal
handler runs between two bytecodes of the main thread, which may be holding any lock.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def stop_on_signals(
    on_stop: Callable[[], None], *, exit_now: Callable[[int], object] = os._exit
) -> Iterator[None]:
    received: list[int] = []

    def handle(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        if len(received) == 1:
            on_stop()  # the worker logs it when its loop notices
            return
        _say(f"second {signal.Signals(signum).name} received: exiting now\n")
        exit_now(128 + signum)

    previous = {sig: signal.signal(sig, handle) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _say(text: str) -> None:
    with contextlib.suppress(OSError):
        os.write(2, text.encode())
