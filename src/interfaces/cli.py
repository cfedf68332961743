"""``python -m src.interfaces.cli``: operator commands, no Django needed.

    migrate                               bring the database schema up to date
    ensure-queues                         create the SQS queues and their dead-letter queues
    reconcile [--loop --interval-s N]     send outbox messages that never left
    dlq list|redrive|purge --queue Q      the dead-letter queue of Q
    requeue JOB_ID                        send a stuck (processing/waiting) job's message again
    smoke runway|luma [--yes]             one real, paid generation with the configured key
    purge-idempotency-keys                delete expired Idempotency-Key answers
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from src import bootstrap
from src.application.enqueue import Reconciler
from src.application.ports import QueueAdmin
from src.config import Settings, SettingsError
from src.domain.errors import JobNotFound, ReelqueueError
from src.infrastructure.observability.logs import configure_logging, secrets_of
from src.interfaces.smoke import SmokeAborted, run_smoke
from src.interfaces.workers.signals import stop_on_signals

log = logging.getLogger(__name__)

QUEUES = ("video", "ai-gpu", "ai-remote")
EXIT_BAD_SETTINGS = 2  # a REELQUEUE_* variable is wrong: nothing ran


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m src.interfaces.cli",
                                   description="reelqueue operator commands (settings: REELQUEUE_*)")
    commands = root.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="bring the database schema up to date")
    commands.add_parser("ensure-queues", help="create the SQS queues and dead-letter queues (idempotent)")
    reconcile = commands.add_parser("reconcile", help="send outbox messages that were never sent")
    reconcile.add_argument("--loop", action="store_true", help="keep going until SIGTERM/SIGINT")
    reconcile.add_argument("--interval-s", type=float, default=30.0, help="pause between rounds (--loop)")
    reconcile.add_argument("--grace-s", type=float, default=30.0,
                           help="only messages older than this (a publisher may still be sending newer ones)")
    dlq = commands.add_parser("dlq", help="inspect or empty a dead-letter queue")
    dlq.add_argument("action", choices=("list", "redrive", "purge"))
    dlq.add_argument("--queue", required=True, choices=QUEUES)
    requeue = commands.add_parser("requeue", help="publish a stuck job's message again")
    requeue.add_argument("job_id")
    smoke = commands.add_parser(
        "smoke", help="submit the cheapest real job with the configured key, poll it, save the video "
                      "(spends money)")
    smoke.add_argument("provider", choices=("runway", "luma"))
    smoke.add_argument("--yes", action="store_true", help="do not ask before spending money")
    smoke.add_argument("--output", type=Path, default=None,
                       help="where to save the video (default: ./smoke-PROVIDER-TASK.mp4)")
    smoke.add_argument("--poll-s", type=float, default=5.0, help="pause between status checks")
    smoke.add_argument("--timeout-s", type=float, default=600.0, help="give up polling after this")
    commands.add_parser("purge-idempotency-keys", help="delete expired Idempotency-Key answers")
    return root


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None,
         stdin: TextIO | None = None) -> int:
    args = parser().parse_args(argv)
    out = out or sys.stdout
    args.stdin = stdin or sys.stdin
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    configure_logging(log_format="text", log_level=settings.log_level, secrets=secrets_of(settings))
    try:
        return COMMANDS[args.command](settings, args, out)
    except SmokeAborted as exc:
        print(f"aborted: {exc}", file=sys.stderr)
        return 2
    except (ReelqueueError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def migrate(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    from src.infrastructure.db.migrations import upgrade

    upgrade(settings.database_url)
    print("database is up to date", file=out)
    return 0


def ensure_queues(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    if settings.queue_backend != "sqs":
        print(f"nothing to create: the {settings.queue_backend} queue needs no setup", file=out)
        return 0
    bootstrap.ensure_sqs_queues(settings, QUEUES)
    print(f"queues ready: {', '.join(QUEUES)} (each with a dead-letter queue)", file=out)
    return 0


def reconcile(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    with _adapters(settings) as adapters:
        reconciler = Reconciler(outbox=adapters.outbox, publisher=adapters.publisher,
                                clock=adapters.clock, grace_s=args.grace_s)
        if not args.loop:
            print(f"sent {reconciler.run_once()} message(s)", file=out)
            return 0
        _loop(lambda: _reconcile_round(reconciler), interval_s=args.interval_s)
    return 0


def _reconcile_round(reconciler: Reconciler) -> None:
    try:
        sent = reconciler.run_once()
    except ReelqueueError as exc:
        log.warning("reconcile round failed, trying again next round: %s", exc)
        return
    if sent:
        log.info("sent %d outbox message(s)", sent)


def _loop(step: Callable[[], None], *, interval_s: float) -> None:
    """Run ``step`` every ``interval_s`` until SIGTERM/SIGINT (a second one exits at once)."""
    stopped: list[bool] = []
    with stop_on_signals(lambda: stopped.append(True)):
        while not stopped:
            step()
            end_s = time.monotonic() + interval_s
            while not stopped and time.monotonic() < end_s:
                time.sleep(0.2)


def dlq(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    with _adapters(settings) as adapters:
        return run_dlq(bootstrap.queue_admin(adapters), args.action, args.queue, out=out)


def run_dlq(admin: QueueAdmin, action: str, queue: str, *, out: TextIO) -> int:
    """``dlq list|redrive|purge`` on any queue backend."""
    if action == "list":
        for letter in admin.dead_letters(queue):
            line = {"id": letter.message_id, "reason": letter.reason, "body": letter.body}
            print(json.dumps(line), file=out)
    elif action == "redrive":
        print(f"moved {admin.redrive(queue)} message(s) back to {queue}", file=out)
    else:
        print(f"deleted {admin.purge_dead(queue)} dead letter(s) of {queue}", file=out)
    return 0


def requeue(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    with _adapters(settings) as adapters:
        status = requeue_job(adapters, args.job_id)
    print(f"job {args.job_id} ({status}): message sent", file=out)
    return 0


def smoke(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    return run_smoke(settings, args.provider, out=out, stdin=args.stdin, yes=args.yes,
                     output=args.output, poll_s=args.poll_s, timeout_s=args.timeout_s)


def requeue_job(adapters: bootstrap.Adapters, job_id: str) -> str:
    """A job stuck in processing goes back to queued; queued and waiting jobs keep their state
    and get a new message (:meth:`JobService.requeue`)."""
    return bootstrap.job_service(adapters).requeue(_find(adapters, job_id)).status.value


def _find(adapters: bootstrap.Adapters, job_id: str) -> Any:
    for repo in (adapters.video_jobs, adapters.ai_jobs):
        try:
            return repo.get(job_id)
        except JobNotFound:
            continue
    raise JobNotFound(job_id)


def purge_idempotency_keys(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    with _adapters(settings) as adapters:
        purged = bootstrap.idempotent_requests(adapters).purge()
    print(f"{purged} expired idempotency key(s) deleted", file=out)
    return 0


@contextmanager
def _adapters(settings: Settings) -> Iterator[bootstrap.Adapters]:
    adapters = bootstrap.build(settings)
    try:
        yield adapters
    finally:
        adapters.close()


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace, TextIO], int]] = {
    "migrate": migrate, "ensure-queues": ensure_queues, "reconcile": reconcile, "dlq": dlq,
    "requeue": requeue, "smoke": smoke, "purge-idempotency-keys": purge_idempotency_keys,
}


if __name__ == "__main__":
    sys.exit(main())
