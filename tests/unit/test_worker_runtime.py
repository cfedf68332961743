"""The consumer loop, run against the in-memory broker, repositories and locks."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest

from src.application.backoff import Backoff
from src.application.commands import SubmitAIJob, SubmitVideoJob
from src.application.handlers import ProcessAIJobHandler
from src.application.messages import JobMessage
from src.application.outcomes import Outcome
from src.domain.errors import Interrupted, ServiceUnavailable
from src.domain.jobs import JobKind
from src.domain.status import JobStatus
from src.infrastructure.memory import InMemoryConsumer
from src.infrastructure.observability.metrics import WorkerMetrics
from src.interfaces.workers.limits import parse_path_limits
from src.interfaces.workers.runtime import Worker
from src.interfaces.workers.signals import stop_on_signals
from src.interfaces.workers.wiring import ai_labels

# --- helpers -------------------------------------------------------------------------------------


def eventually(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


@contextmanager
def running(worker: Worker) -> Iterator[list[list[str]]]:
    result: list[list[str]] = []
    thread = threading.Thread(target=lambda: result.append(worker.run()), daemon=True)
    thread.start()
    try:
        yield result
    finally:
        worker.stop()
        thread.join(10)
        assert not thread.is_alive()


def make_worker(world, handlers, *, queue="video", **options) -> Worker:
    options = {"receive_wait_s": 0.02, "backoff": Backoff(base_s=0.01, max_s=0.05, rng=lambda: 1.0),
               "metrics": WorkerMetrics(), **options}
    return Worker(InMemoryConsumer(world.broker, queue), handlers, world.publisher, **options)


class GatedHandler:
    """Runs until the gate opens (ack) or the worker shuts down (release); counts overlaps."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.running: set[str] = set()
        self.max_running = 0
        self.done: list[str] = []
        self._mutex = threading.Lock()

    def handle(self, job_id: str, *, shutting_down: Callable[[], bool]) -> Outcome:
        with self._mutex:
            self.running.add(job_id)
            self.max_running = max(self.max_running, len(self.running))
        try:
            while not self.gate.wait(0.01):
                if shutting_down():
                    return Outcome.release("shutdown")
            self.done.append(job_id)
            return Outcome.ack("succeeded")
        finally:
            with self._mutex:
                self.running.discard(job_id)

    def renew_lock(self, job_id: str) -> bool:
        return True


class SlowGenerator:
    """A local generator that denoises until told to stop, checking between steps like Wan."""

    def __init__(self) -> None:
        self.started = threading.Event()

    def generate(self, job, *, workdir, on_progress, should_stop):
        self.started.set()
        step = 0
        while not should_stop():
            step += 1
            on_progress(min(step, 99))
            time.sleep(0.01)
        raise Interrupted(f"stopped after {step} steps")


def send_video(world, count: int = 1) -> list[str]:
    ids = []
    for _ in range(count):
        world.storage.put_bytes("in/clip.mp4", b"FAKEVIDEO 1920 1080 12.5")
        ids.append(world.service().submit_video(SubmitVideoJob(owner_id="u1", source="in/clip.mp4")).id)
    return ids


def send_ai(world, path: str, model: str = "wan_local") -> str:
    command = SubmitAIJob(owner_id="u1", model=model, mode="t2v", prompt="a cat", production_path=path)
    return world.service().submit_ai(command).id


def stored(world, queue: str):
    return list(world.broker.queues.get(queue, {}).values())


# --- concurrency ---------------------------------------------------------------------------------


def test_the_pool_never_runs_or_receives_more_messages_than_its_free_slots(world):
    send_video(world, 5)
    handler = GatedHandler()
    worker = make_worker(world, {JobKind.VIDEO: handler}, concurrency=2)
    with running(worker):
        eventually(lambda: len(handler.running) == 2)
        time.sleep(0.1)
        never_received = [m for m in stored(world, "video") if m.receive_count == 0]
        assert len(never_received) == 3
        handler.gate.set()
        eventually(lambda: world.broker.depth("video") == 0)
    assert handler.max_running == 2 and len(handler.done) == 5


class ReceiveCountingConsumer(InMemoryConsumer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.receives: list[int] = []

    def receive(self, *, max_messages, wait_s):
        got = super().receive(max_messages=max_messages, wait_s=wait_s)
        if got:
            self.receives.append(len(got))
        return got


def test_prefetch_receives_ahead_of_free_slots_but_runs_no_more_than_the_pool(world):
    send_video(world, 8)
    handler = GatedHandler()
    consumer = ReceiveCountingConsumer(world.broker, "video")
    worker = Worker(consumer, {JobKind.VIDEO: handler}, world.publisher, concurrency=2, prefetch=3,
                    receive_wait_s=0.02, metrics=WorkerMetrics())
    with running(worker):
        eventually(lambda: len(handler.running) == 2)
        time.sleep(0.1)
        assert consumer.receives == [5]  # two to run, three held
        assert len([m for m in stored(world, "video") if m.receive_count == 0]) == 3
        handler.gate.set()
        eventually(lambda: world.broker.depth("video") == 0)
    assert handler.max_running == 2 and len(handler.done) == 8
    assert consumer.receives == [5, 3]  # the held ones started without a receive of their own


def test_prefetched_messages_stay_invisible_while_held_and_go_back_at_once_on_shutdown(world):
    send_video(world, 3)
    handler = GatedHandler()
    worker = make_worker(world, {JobKind.VIDEO: handler}, concurrency=1, prefetch=2,
                         visibility_timeout_s=30, heartbeat_interval_s=0.02)
    with running(worker):
        eventually(lambda: len(handler.running) == 1)
        for _ in range(3):  # 75 s: past the visibility timeout of the held messages
            world.clock.advance(25)
            time.sleep(0.15)  # a few beats
            assert world.broker.receive("video", 10) == []
    # the running job handed back at its checkpoint, the two held ones without starting
    assert [m.receive_count for m in world.broker.receive("video", 10)] == [2, 2, 2]
    assert handler.done == []


def test_jobs_run_end_to_end_and_their_messages_are_deleted(world):
    ids = send_video(world, 3)
    worker = make_worker(world, {JobKind.VIDEO: world.video_handler()}, concurrency=3)
    with running(worker):
        eventually(lambda: world.broker.depth("video") == 0)
    assert {world.video_jobs.get(i).status for i in ids} == {JobStatus.SUCCEEDED}
    assert worker.metrics.value("reelqueue_jobs_succeeded_total", kind="video", provider="",
                                production_path="") == 3


def test_jobs_run_on_at_most_concurrency_threads_kept_for_the_workers_life(world):
    ids = send_video(world, 12)
    seen: set[int] = set()
    handler = world.video_handler()
    real_handle = handler.handle

    def handle(job_id, *, shutting_down):
        seen.add(threading.get_ident())
        return real_handle(job_id, shutting_down=shutting_down)

    handler.handle = handle
    worker = make_worker(world, {JobKind.VIDEO: handler}, concurrency=3)
    with running(worker):
        eventually(lambda: world.broker.depth("video") == 0)
        slots = [t for t in threading.enumerate() if t.name.startswith("job-slot-") and t.ident in seen]
    assert {world.video_jobs.get(i).status for i in ids} == {JobStatus.SUCCEEDED}
    assert 1 <= len(seen) <= 3 and len(slots) == len(seen)
    eventually(lambda: not any(t.is_alive() for t in slots))  # they end with the run


class CountingConsumer(InMemoryConsumer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ack_calls: list[int] = []

    def ack(self, messages) -> None:
        self.ack_calls.append(len(messages))
        super().ack(messages)


def test_acknowledgements_are_sent_in_batches_and_never_left_waiting(world):
    send_video(world, 12)
    consumer = CountingConsumer(world.broker, "video")
    options = {"receive_wait_s": 2.0, "metrics": WorkerMetrics(), "ack_linger_s": 0.3}
    worker = Worker(consumer, {JobKind.VIDEO: world.video_handler()}, world.publisher,
                    concurrency=1, **options)
    with running(worker):
        eventually(lambda: world.broker.depth("video") == 0, timeout_s=1.5)  # no long poll holds acks
    assert sum(consumer.ack_calls) == 12 and len(consumer.ack_calls) <= 4


# --- poison messages and outcomes ----------------------------------------------------------------


def test_a_job_finishing_during_a_long_poll_is_acked_after_the_linger_not_after_the_poll(world):
    send_video(world, 1)
    handler = GatedHandler()
    consumer = CountingConsumer(world.broker, "video")
    worker = Worker(consumer, {JobKind.VIDEO: handler}, world.publisher, concurrency=2,
                    receive_wait_s=3.0, ack_linger_s=0.05, metrics=WorkerMetrics())
    with running(worker):
        eventually(lambda: len(handler.running) == 1)
        time.sleep(0.1)  # the free slot's receive is now waiting on an empty queue
        handler.gate.set()
        eventually(lambda: world.broker.depth("video") == 0, timeout_s=1.0)  # the poll lasts 3 s
    assert consumer.ack_calls == [1]


def test_poison_messages_go_to_the_dead_letter_queue_with_a_reason_and_the_loop_keeps_going(world):
    world.broker.send("video", "not json")
    world.broker.send("video", '{"v": 99, "kind": "video", "job_id": "x"}')
    world.broker.send("video", JobMessage(kind=JobKind.VIDEO, job_id="nope", queue="video").encode())
    world.broker.send("video", JobMessage(kind=JobKind.AI, job_id="x", queue="video").encode())
    (good,) = send_video(world)
    worker = make_worker(world, {JobKind.VIDEO: world.video_handler()})
    with running(worker):
        eventually(lambda: world.video_jobs.get(good).status is JobStatus.SUCCEEDED)
        eventually(lambda: world.broker.depth("video") == 0)
    reasons = [reason for _, reason in world.broker.dead_letters("video")]
    assert reasons[0].startswith("body is not JSON")
    assert reasons[1] == "unknown message version 99"
    assert reasons[2] == "job nope does not exist"
    assert reasons[3] == "no handler for ai jobs on queue video"


def test_a_transient_failure_publishes_a_delayed_copy_and_deletes_the_original(world):
    world.fetcher.failures_left["https://cdn.example/a.mp4"] = 1
    world.fetcher.pages["https://cdn.example/a.mp4"] = b"FAKEVIDEO 640 360 3"
    job = world.service().submit_video(SubmitVideoJob(owner_id="u1", source="https://cdn.example/a.mp4"))
    worker = make_worker(world, {JobKind.VIDEO: world.video_handler()})
    with running(worker):
        eventually(lambda: world.video_jobs.get(job.id).status is JobStatus.QUEUED
                   and world.video_jobs.get(job.id).attempts == 1)
        eventually(lambda: [m.receive_count for m in stored(world, "video")] == [0])
    (copy,) = stored(world, "video")
    assert copy.visible_at >= world.clock.now() + timedelta(seconds=5)
    assert JobMessage.decode(copy.body, queue="video").job_id == job.id


def test_an_exception_escaping_a_handler_leaves_the_message_for_redelivery_and_backs_off(world):
    class DatabaseDown:
        def handle(self, job_id, *, shutting_down):
            raise ServiceUnavailable("database unreachable")

        def renew_lock(self, job_id):
            return True

    send_video(world)
    worker = make_worker(world, {JobKind.VIDEO: DatabaseDown()})
    with running(worker):
        eventually(lambda: worker.metrics.value("reelqueue_queue_errors_total", operation="handle") >= 1)
    (message,) = stored(world, "video")
    assert message.receive_count == 1  # not deleted, not dead-lettered: it comes back later
    assert worker.backoff.failures >= 1


# --- outages -------------------------------------------------------------------------------------


class FlakyConsumer(InMemoryConsumer):
    down = False

    def receive(self, *, max_messages, wait_s):
        if self.down:
            raise ServiceUnavailable("queue unreachable")
        return super().receive(max_messages=max_messages, wait_s=wait_s)


def test_a_queue_outage_makes_the_loop_back_off_and_resume_by_itself(world):
    consumer = FlakyConsumer(world.broker, "video")
    consumer.down = True
    worker = Worker(consumer, {JobKind.VIDEO: world.video_handler()}, world.publisher,
                    receive_wait_s=0.02, backoff=Backoff(base_s=0.01, max_s=0.04, rng=lambda: 1.0))
    with running(worker):
        eventually(lambda: worker.metrics.value("reelqueue_queue_errors_total", operation="receive") >= 4)
        assert worker.backoff.delay_s() == 0.04  # exponential, capped
        (job_id,) = send_video(world)
        consumer.down = False
        eventually(lambda: world.video_jobs.get(job_id).status is JobStatus.SUCCEEDED)
    assert worker.backoff.failures == 0


def test_backoff_grows_exponentially_with_jitter_and_resets_on_success():
    backoff = Backoff(base_s=1, max_s=8, rng=lambda: 0.0)
    delays = []
    for _ in range(5):
        backoff.failed()
        delays.append(backoff.delay_s())
    assert delays == [0.5, 1, 2, 4, 4]  # half the step at the lowest jitter, capped at 8
    backoff.succeeded()
    assert backoff.delay_s() == 0 and not backoff.pending


# --- heartbeat -----------------------------------------------------------------------------------


def test_the_heartbeat_keeps_a_long_jobs_message_invisible_and_its_lock_alive(world):
    generator = SlowGenerator()
    handler = ProcessAIJobHandler(storage=world.storage, local={"wan_local": generator},
                                  **{**world.base(world.ai_jobs), "lock_ttl_ms": 40_000})
    job_id = send_ai(world, "fashion")
    worker = make_worker(world, {JobKind.AI: handler}, queue="ai-gpu", visibility_timeout_s=30,
                         heartbeat_interval_s=0.02)
    with running(worker):
        assert generator.started.wait(5)
        for _ in range(4):  # 100 s in all: past both the visibility timeout and the lock TTL
            world.clock.advance(25)
            time.sleep(0.15)  # a few beats
            assert world.broker.receive("ai-gpu", 10) == []
            assert world.locks.is_held(f"job:{job_id}")
    assert not world.locks.is_held(f"job:{job_id}")


def test_renewing_the_lock_of_a_job_not_being_handled_says_so(world):
    assert world.video_handler().renew_lock("not-running") is False


# --- shutdown ------------------------------------------------------------------------------------


def test_on_shutdown_a_running_job_stops_at_a_checkpoint_and_its_message_comes_back(world):
    generator = SlowGenerator()
    handler = ProcessAIJobHandler(storage=world.storage, local={"wan_local": generator},
                                  **world.base(world.ai_jobs))
    job_id = send_ai(world, "fashion")
    worker = make_worker(world, {JobKind.AI: handler}, queue="ai-gpu")
    with running(worker) as result:
        assert generator.started.wait(5)
        eventually(lambda: world.progress.read(job_id) is not None)
    assert result == [[]]  # nothing abandoned
    job = world.ai_jobs.get(job_id)
    assert job.status is JobStatus.QUEUED and job.attempts == 1
    assert world.progress.read(job_id).percent > 0  # progress kept
    (message,) = stored(world, "ai-gpu")
    assert message.receive_count == 1 and message.visible_at <= world.clock.now()


def test_messages_received_after_a_stop_are_handed_back_without_starting(world):
    send_video(world, 2)
    handler = GatedHandler()
    worker = make_worker(world, {JobKind.VIDEO: handler}, concurrency=2)
    received = worker.receive(2)
    worker.stop()
    worker.dispatch(received)
    assert handler.running == set() and handler.done == []
    assert [m.receive_count for m in world.broker.receive("video", 10)] == [2, 2]


def test_jobs_still_running_at_the_deadline_are_reported_as_abandoned(world):
    class Stubborn(GatedHandler):
        def handle(self, job_id, *, shutting_down):
            self.gate.wait(5)
            return Outcome.ack("succeeded")

    (job_id,) = send_video(world)
    handler = Stubborn()
    worker = make_worker(world, {JobKind.VIDEO: handler}, shutdown_deadline_s=0.1)
    with running(worker) as result:
        eventually(lambda: worker.running_count() == 1)
    handler.gate.set()
    assert result == [[job_id]]


def test_the_first_signal_asks_for_a_stop_and_the_second_exits_at_once():
    stops, exits = [], []
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals(lambda: stops.append(1), exit_now=exits.append):
        os.kill(os.getpid(), signal.SIGTERM)
        eventually(lambda: stops == [1])
        assert exits == []
        os.kill(os.getpid(), signal.SIGINT)
        eventually(lambda: exits == [128 + signal.SIGINT])
    assert signal.getsignal(signal.SIGTERM) is before  # the previous handlers are back


# --- per-path limits -----------------------------------------------------------------------------


def test_a_path_at_its_limit_hands_its_messages_back_while_other_paths_keep_flowing(world):
    cinema = [send_ai(world, "cinema"), send_ai(world, "cinema")]
    fashion = send_ai(world, "fashion")
    handler = GatedHandler()
    worker = make_worker(world, {JobKind.AI: handler}, queue="ai-gpu", concurrency=3,
                         describe=ai_labels(world.ai_jobs), path_limits={"cinema": 1})
    with running(worker):
        eventually(lambda: fashion in handler.running and len(handler.running) == 2)
        eventually(lambda: worker.metrics.value("reelqueue_path_limit_deferrals_total",
                                                production_path="cinema") >= 1)
        assert len(set(cinema) & handler.running) == 1
        handler.gate.set()
        eventually(lambda: world.broker.depth("ai-gpu") == 0)
    assert sorted(handler.done) == sorted([*cinema, fashion])


def test_path_limits_are_parsed_and_checked():
    assert parse_path_limits("cinema=1, fashion=4") == {"cinema": 1, "fashion": 4}
    assert parse_path_limits("") == {}
    for bad in ("cinema", "opera=2", "cinema=x", "cinema=0"):
        with pytest.raises(ValueError):
            parse_path_limits(bad)


# --- heartbeat -----------------------------------------------------------------------------------


def _beat_with(world, renew_lock: Callable[[Worker], bool], caplog) -> str:
    from src.interfaces.workers.runtime import Delivery, kind_only

    send_video(world)
    (message,) = InMemoryConsumer(world.broker, "video").receive(max_messages=1, wait_s=0)

    class Handler:
        def renew_lock(self, job_id: str) -> bool:
            return renew_lock(worker)

    worker = make_worker(world, {JobKind.VIDEO: Handler()})
    job = JobMessage.decode(message.body, queue="video")
    worker._running.update({Delivery(message, job, kind_only(job)), Delivery(message, job, kind_only(job))})
    with caplog.at_level("WARNING", logger="src.interfaces.workers.runtime"):
        worker.extend_running()
    return caplog.text


def test_a_job_that_finishes_during_a_heartbeat_is_not_reported_as_a_lost_lock(world, caplog):
    def finished_meanwhile(worker: Worker) -> bool:
        worker._running.clear()  # both deliveries finished and released their locks mid-beat
        return False

    assert "could not renew" not in _beat_with(world, finished_meanwhile, caplog)


def test_a_running_job_whose_lock_cannot_be_renewed_is_reported(world, caplog):
    assert _beat_with(world, lambda worker: False, caplog).count("could not renew the job's lock") == 2
