"""The background outbox relay, against the in-memory outbox and broker."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest

from src.application.messages import JobMessage
from src.application.ports import OutboxEntry
from src.domain.errors import ServiceUnavailable
from src.domain.jobs import JobKind
from src.infrastructure.memory import InMemoryPublisher
from src.infrastructure.relay import BackgroundRelay


def wait_for(check: Callable[[], bool], *, within_s: float = 5.0) -> float:
    """Seconds it took until ``check()`` held; fails after ``within_s``."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < within_s, "not in time"
        time.sleep(0.002)
    return time.monotonic() - started


class CountingPublisher(InMemoryPublisher):
    """Counts publish requests (SQS bills per request) and their sizes."""

    def __init__(self, broker) -> None:
        super().__init__(broker)
        self.batches: list[int] = []

    def publish(self, messages, *, delay_s=0) -> None:
        super().publish(messages, delay_s=delay_s)
        self.batches.append(len(messages))


class FlakyOutbox:
    """The in-memory outbox whose ``mark_sent`` fails while ``down`` (the database is away)."""

    def __init__(self, outbox) -> None:
        self.outbox = outbox
        self.down = False

    def pending(self, *, limit, older_than=None):
        return self.outbox.pending(limit=limit, older_than=older_than)

    def mark_sent(self, entry_ids) -> None:
        if self.down:
            raise ServiceUnavailable("database away")
        self.outbox.mark_sent(entry_ids)


def commit(world, count: int, *, tag: str = "job") -> list[OutboxEntry]:
    """``count`` messages committed to the outbox, as the repository's ``add`` leaves them."""
    messages = [JobMessage(kind=JobKind.VIDEO, job_id=f"{tag}-{i}", queue="video") for i in range(count)]
    ids = world.outbox.add(messages)
    now = world.clock.now()
    return [OutboxEntry(id=i, message=m, created_at=now) for i, m in zip(ids, messages, strict=True)]


@pytest.fixture
def make_relay(world) -> Iterator[Callable[..., BackgroundRelay]]:
    relays: list[BackgroundRelay] = []

    def make(**options) -> BackgroundRelay:
        options = {"outbox": world.outbox, "publisher": world.publisher, "clock": world.clock,
                   "backoff_base_s": 0.01, "backoff_max_s": 0.05, "scan_interval_s": 3600,
                   "close_timeout_s": 2.0, **options}
        relays.append(BackgroundRelay(**options))
        return relays[-1]

    yield make
    for relay in relays:
        relay.close()


def test_handed_off_entries_are_sent_within_milliseconds_and_marked_sent(world, make_relay):
    relay = make_relay()

    relay.hand_off(commit(world, 1))

    assert wait_for(lambda: world.outbox.pending(limit=10) == []) < 0.5
    assert [json.loads(b)["job_id"] for b in world.broker.bodies("video")] == ["job-0"]


def test_entries_go_out_in_batches_of_at_most_ten(world, make_relay):
    world.publisher = CountingPublisher(world.broker)
    relay = make_relay()

    relay.hand_off(commit(world, 25))

    wait_for(lambda: world.outbox.pending(limit=100) == [])
    assert world.broker.depth("video") == 25
    assert max(world.publisher.batches) == 10 and sum(world.publisher.batches) == 25


def test_while_the_queue_is_down_entries_stay_pending_and_go_out_once_it_is_back(world, make_relay):
    world.publisher.down = True
    relay = make_relay()

    relay.hand_off(commit(world, 3))
    time.sleep(0.2)  # several failed attempts, backing off
    assert len(world.outbox.pending(limit=10)) == 3 and relay.backlog == 3
    world.publisher.down = False

    wait_for(lambda: world.outbox.pending(limit=10) == [])
    assert world.broker.depth("video") == 3 and relay.backlog == 0


def test_a_failed_mark_is_retried_without_sending_again(world, make_relay):
    outbox = FlakyOutbox(world.outbox)
    outbox.down = True
    relay = make_relay(outbox=outbox)

    relay.hand_off(commit(world, 2))
    wait_for(lambda: world.broker.depth("video") == 2)
    time.sleep(0.2)  # the mark keeps failing meanwhile
    outbox.down = False

    wait_for(lambda: world.outbox.pending(limit=10) == [])
    assert world.broker.depth("video") == 2


def test_closing_sends_what_is_waiting(world, make_relay):
    relay = make_relay()
    entries = commit(world, 30)

    relay.hand_off(entries)
    relay.close()

    assert world.broker.depth("video") == 30 and world.outbox.pending(limit=100) == []


def test_closing_with_the_queue_down_returns_at_once_and_leaves_the_entries_in_the_outbox(world, make_relay):
    world.publisher.down = True
    relay = make_relay(backoff_base_s=30, backoff_max_s=30)
    relay.hand_off(commit(world, 2))
    time.sleep(0.1)  # the first attempt failed: a long backoff begins

    started = time.monotonic()
    relay.close()

    assert time.monotonic() - started < 1.0
    assert len(world.outbox.pending(limit=10)) == 2  # the reconciler's to send


def test_a_relay_picks_up_old_pending_entries_another_process_left_behind(world, make_relay):
    commit(world, 2, tag="orphan")  # committed by a process that died before sending
    world.clock.advance(120)
    relay = make_relay(scan_interval_s=0.05, scan_grace_s=60)

    relay.hand_off(commit(world, 1, tag="fresh"))

    wait_for(lambda: world.outbox.pending(limit=10) == [])
    sent = sorted(json.loads(b)["job_id"] for b in world.broker.bodies("video"))
    assert sent == ["fresh-0", "orphan-0", "orphan-1"]


def test_a_fresh_pending_entry_is_not_taken_by_the_scan(world, make_relay):
    commit(world, 1, tag="elsewhere")  # another process is sending this one right now
    relay = make_relay(scan_interval_s=0.05, scan_grace_s=60)

    relay.hand_off(commit(world, 1, tag="mine"))
    time.sleep(0.2)  # a few scans

    assert world.broker.depth("video") == 1 and len(world.outbox.pending(limit=10)) == 1


def test_past_its_backlog_a_relay_leaves_new_entries_to_the_outbox_alone(world, make_relay):
    world.publisher.down = True
    relay = make_relay(max_backlog=3)

    relay.hand_off(commit(world, 5))

    assert relay.backlog == 3 and len(world.outbox.pending(limit=10)) == 5
    world.publisher.down = False
    wait_for(lambda: relay.backlog == 0)
    assert world.broker.depth("video") == 3
    wait_for(lambda: len(world.outbox.pending(limit=10)) == 2)  # the reconciler's
