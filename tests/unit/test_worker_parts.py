"""The worker loop's parts: no lock held across a call to the broker, a database or a lock
store; metrics counted by typed outcomes, never by reason text."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from src.application.backoff import Backoff
from src.application.messages import JobMessage
from src.application.outcomes import Ending, Outcome
from src.domain.jobs import JobKind
from src.infrastructure.memory import InMemoryConsumer
from src.infrastructure.observability.metrics import WorkerMetrics
from src.interfaces.workers.runtime import JobLabels, Worker
from tests.unit.test_worker_runtime import GatedHandler, eventually, running, send_video

LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()), threading.Condition)


def locks_of(worker: Worker) -> list[object]:
    """Every lock the worker and its parts keep (the worker's attributes, and theirs)."""
    parts = [worker, *(v for v in vars(worker).values() if hasattr(v, "__dict__"))]
    return [lock for part in parts for lock in vars(part).values() if isinstance(lock, LOCK_TYPES)]


class LockProbe:
    """Checks, from another thread, that every lock of the worker can be taken while a call is
    on its way: a lock held by the calling thread blocks the probe until it times out."""

    def __init__(self) -> None:
        self.worker: Worker | None = None
        self.checked: dict[str, int] = {}
        self.held: list[str] = []

    def check(self, call: str) -> None:
        if self.worker is None:
            return
        locks = locks_of(self.worker)

        def probe() -> None:
            for lock in locks:
                if not lock.acquire(timeout=1.0):  # type: ignore[attr-defined]
                    self.held.append(f"{call}: {lock!r}")
                    continue
                lock.release()  # type: ignore[attr-defined]

        thread = threading.Thread(target=probe)
        thread.start()
        thread.join()
        self.checked[call] = self.checked.get(call, 0) + 1


class ProbingConsumer(InMemoryConsumer):
    def __init__(self, probe: LockProbe, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.probe = probe

    def receive(self, *, max_messages, wait_s):
        self.probe.check("receive")
        return super().receive(max_messages=max_messages, wait_s=wait_s)

    def ack(self, messages) -> None:
        self.probe.check("ack")
        super().ack(messages)

    def release(self, message) -> None:
        self.probe.check("release")
        super().release(message)

    def extend(self, message, *, visibility_timeout_s) -> None:
        self.probe.check("extend")
        super().extend(message, visibility_timeout_s=visibility_timeout_s)

    def dead_letter(self, message, *, reason) -> None:
        self.probe.check("dead_letter")
        super().dead_letter(message, reason=reason)


class ProbingHandler(GatedHandler):
    def __init__(self, probe: LockProbe) -> None:
        super().__init__()
        self.probe = probe

    def renew_lock(self, job_id: str) -> bool:
        self.probe.check("renew_lock")
        return True


def test_no_lock_of_the_worker_is_held_while_it_calls_the_broker_a_database_or_the_lock_store(world):
    world.broker.send("video", "not json")
    send_video(world, 5)
    probe = LockProbe()
    handler = ProbingHandler(probe)

    def describe(message: JobMessage) -> JobLabels:  # loads the job from the database
        probe.check("describe")
        return JobLabels(kind=message.kind.value, production_path="cinema")

    worker = Worker(ProbingConsumer(probe, world.broker, "video"), {JobKind.VIDEO: handler},
                    world.publisher, concurrency=2, prefetch=2, describe=describe,
                    path_limits={"cinema": 1}, receive_wait_s=0.02, heartbeat_interval_s=0.02,
                    ack_linger_s=0.05, metrics=WorkerMetrics(),
                    backoff=Backoff(base_s=0.01, max_s=0.05, rng=lambda: 1.0))
    probe.worker = worker
    assert locks_of(worker)  # the probe sees the parts' locks
    with running(worker):
        eventually(lambda: {"extend", "renew_lock", "release", "describe", "dead_letter"}
                   <= set(probe.checked), timeout_s=10)
        handler.gate.set()
        eventually(lambda: world.broker.depth("video") == 0, timeout_s=15)
    assert handler.max_running == 1 and len(handler.done) == 5  # the path limit held
    assert {"receive", "ack"} <= set(probe.checked)
    assert probe.held == []


# --- metrics ---------------------------------------------------------------------------------------


class Scripted:
    """Answers each delivery with the next outcome of a script."""

    def __init__(self, *outcomes: Outcome) -> None:
        self.outcomes = list(outcomes)

    def handle(self, job_id: str, *, shutting_down: Callable[[], bool]) -> Outcome:
        return self.outcomes.pop(0)

    def renew_lock(self, job_id: str) -> bool:
        return True


@contextmanager
def worker_for(world, handler, **options) -> Iterator[Worker]:
    worker = Worker(InMemoryConsumer(world.broker, "video"), {JobKind.VIDEO: handler}, world.publisher,
                    receive_wait_s=0.02, metrics=WorkerMetrics(), ack_linger_s=0.01, **options)
    with running(worker):
        yield worker


def failed(worker: Worker, reason: str) -> float:
    return worker.metrics.value("reelqueue_jobs_failed_total", kind="video", provider="",
                                production_path="", reason=reason)


def test_failures_are_counted_by_their_typed_kind_never_by_the_reason_text(world):
    send_video(world, 3)
    handler = Scripted(Outcome.retry_later(1, "failed to reach the CDN, retrying"),
                       Outcome.failed(Ending.FAILED), Outcome.failed(Ending.EXHAUSTED))
    with worker_for(world, handler) as worker:
        eventually(lambda: not handler.outcomes)
        eventually(lambda: failed(worker, "attempts exhausted") == 1)
    assert failed(worker, "failed permanently") == 1
    assert failed(worker, "failed to reach the CDN, retrying") == 0  # a retry is no failure
    actions = {a: worker.metrics.value("reelqueue_job_outcomes_total", kind="video", provider="",
                                       production_path="", action=a) for a in ("ack", "retry_later")}
    assert actions == {"ack": 2, "retry_later": 1}


def test_only_a_typed_success_counts_as_succeeded(world):
    send_video(world, 2)
    handler = Scripted(Outcome.succeeded(), Outcome.ack("succeeded"))  # the second: a duplicate's text
    with worker_for(world, handler) as worker:
        eventually(lambda: world.broker.depth("video") == 0)
    assert worker.metrics.value("reelqueue_jobs_succeeded_total", kind="video", provider="",
                                production_path="") == 1


def test_dead_lettered_messages_are_counted_by_a_fixed_set_of_reasons(world):
    world.broker.send("video", "not json")
    world.broker.send("video", '{"v": 99, "kind": "video", "job_id": "x"}')
    world.broker.send("video", JobMessage(kind=JobKind.VIDEO, job_id="nope", queue="video").encode())
    world.broker.send("video", JobMessage(kind=JobKind.AI, job_id="x", queue="video").encode())
    with worker_for(world, world.video_handler()) as worker:
        eventually(lambda: len(world.broker.dead_letters("video")) == 4)
        time.sleep(0.05)
    counted = {reason: worker.metrics.value("reelqueue_messages_dead_lettered_total", reason=reason)
               for reason in ("undecodable", "job_not_found", "no_handler")}
    assert counted == {"undecodable": 2, "job_not_found": 1, "no_handler": 1}
    assert worker.metrics.value("reelqueue_messages_dead_lettered_total",
                                reason="job nope does not exist") == 0
