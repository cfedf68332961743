"""The one exponential-backoff formula (src/application/backoff.py) and its users."""

import random

import pytest

from src.application.backoff import Backoff, ExponentialBackoff, Jitter
from src.application.handlers.ai import TASK_ID_SAVE_BACKOFF
from src.application.retry import RetryPolicy
from src.infrastructure.inference.http import READ_BACKOFF, read_retry_delay_s


def test_the_step_doubles_from_the_base_and_stops_at_the_cap():
    backoff = ExponentialBackoff(base_s=0.5, max_s=5, jitter=Jitter.NONE)
    assert [backoff.delay_s(n) for n in range(1, 7)] == [0.5, 1, 2, 4, 5, 5]


def test_no_failure_yet_counts_as_the_first():
    backoff = ExponentialBackoff(base_s=2, max_s=60, jitter=Jitter.NONE)
    assert backoff.delay_s(0) == backoff.delay_s(-3) == backoff.delay_s(1) == 2


@pytest.mark.parametrize("draw, expected", [(0.0, 4.0), (0.5, 6.0), (0.999, 7.996)])
def test_equal_jitter_draws_between_half_the_step_and_the_step(draw, expected):
    backoff = ExponentialBackoff(base_s=1, max_s=60, jitter=Jitter.EQUAL, rng=lambda: draw)
    assert backoff.delay_s(4) == pytest.approx(expected)  # step 8 s


@pytest.mark.parametrize("draw, expected", [(0.0, 0.0), (0.25, 2.0), (0.999, 7.992)])
def test_full_jitter_draws_between_zero_and_the_step(draw, expected):
    backoff = ExponentialBackoff(base_s=1, max_s=60, jitter=Jitter.FULL, rng=lambda: draw)
    assert backoff.delay_s(4) == pytest.approx(expected)


def test_a_seeded_generator_gives_the_same_waits_every_time():
    def waits(seed):
        backoff = ExponentialBackoff(base_s=1, max_s=30, rng=random.Random(seed).random)
        return [backoff.delay_s(n) for n in range(1, 8)]

    assert waits(7) == waits(7)
    steps = [1, 2, 4, 8, 16, 30, 30]
    assert all(step / 2 <= wait <= step for wait, step in zip(waits(7), steps, strict=True))


def test_jittered_waits_never_exceed_the_cap():
    backoff = ExponentialBackoff(base_s=3, max_s=10, jitter=Jitter.FULL, rng=random.Random(1).random)
    assert max(backoff.delay_s(n) for n in range(1, 50)) <= 10


def test_an_outage_backoff_grows_with_the_streak_and_a_success_resets_it():
    backoff = Backoff(base_s=1, max_s=8, rng=lambda: 0.0)
    assert backoff.delay_s() == 0 and not backoff.pending
    for _ in range(5):
        backoff.failed()
    assert backoff.pending and backoff.delay_s() == 4  # step 8, equal jitter drew the bottom
    backoff.succeeded()
    assert backoff.delay_s() == 0 and not backoff.pending


def test_the_retry_policy_waits_whole_seconds_within_the_sqs_delay_cap():
    policy = RetryPolicy(base_delay_s=10, max_delay_s=900, rng=lambda: 0.5)
    assert [policy.delay_s(n) for n in (1, 2, 3, 7, 20)] == [7, 15, 30, 480, 675]
    assert policy.delay_s(1, at_least_s=120) == 120
    assert RetryPolicy(base_delay_s=0.1, rng=lambda: 0.0).delay_s(1) == 1  # never under a second


def test_a_provider_read_retry_follows_retry_after_within_the_cap_else_the_backoff():
    steady = ExponentialBackoff(base_s=0.5, max_s=8, jitter=Jitter.FULL, rng=lambda: 0.5)
    assert read_retry_delay_s(steady, 1, retry_after_s=3) == 3
    assert read_retry_delay_s(steady, 1, retry_after_s=60) == 8
    assert read_retry_delay_s(steady, 3, retry_after_s=None) == 1.0  # step 2 s, half drawn
    assert READ_BACKOFF.base_s == 0.5 and READ_BACKOFF.max_s == 8 and READ_BACKOFF.jitter is Jitter.FULL


def test_recording_a_task_id_retries_after_doubling_waits_up_to_five_seconds():
    waits = [TASK_ID_SAVE_BACKOFF.delay_s(n) for n in range(1, 9)]
    assert waits == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]
