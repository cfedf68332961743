"""The worker entry points' options: over REELQUEUE_* variables, checked before anything starts."""

from __future__ import annotations

import pytest

from src.config import Settings
from src.domain.jobs import JobKind
from src.interfaces.workers.process import parse_args


def test_options_win_over_variables_and_the_queue_follows_the_worker_type():
    settings = Settings.from_env({"REELQUEUE_CONCURRENCY": "2", "REELQUEUE_PREFETCH": "3"})
    parsed = parse_args(JobKind.AI, ["--concurrency", "4", "--worker-type", "gpu"], settings)
    assert (parsed.concurrency, parsed.prefetch, parsed.queue) == (4, 3, "ai-gpu")
    assert parse_args(JobKind.VIDEO, ["--prefetch", "9"], Settings()).prefetch == 9


@pytest.mark.parametrize("argv", [["--concurrency", "0"], ["--prefetch", "11"], ["--prefetch", "-1"]])
def test_out_of_range_options_are_refused_with_a_message(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_args(JobKind.VIDEO, argv, Settings())
    assert exit_.value.code == 2
    assert "must be" in capsys.readouterr().err
