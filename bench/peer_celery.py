"""Celery's side of the SQS drain benchmark; runs with ``bench/.venv-peers``'s interpreter only.

    BENCH_SQS_ENDPOINT=http://127.0.0.1:PORT BENCH_CELERY_QUEUE=name \
        python -m bench.peer_celery enqueue 500            # pre-queue no-op tasks
    ... python -m celery -A bench.peer_celery worker -c 4  # drain them

Celery's defaults are kept (prefork pool, prefetch multiplier 4, ack on receipt, SQS long
polling) but one: kombu's ``polling_interval`` is 0.1 s instead of 1 s. With the default, a
worker whose prefetch is full counts the skipped poll as empty and sleeps a whole second, which
caps concurrency 1 at ~4 jobs/s here; kombu documents lowering it (0 made more requests).
What a no-op benchmark does not need is off (results, events, remote control, gossip, mingle,
heartbeats). The queue is predefined, so kombu creates and lists nothing.
"""

from __future__ import annotations

import os
import sys

from celery import Celery

ENDPOINT = os.environ.get("BENCH_SQS_ENDPOINT", "http://127.0.0.1:5000")
QUEUE = os.environ.get("BENCH_CELERY_QUEUE", "bench-celery")
ACCOUNT = "123456789012"  # moto's default account

app = Celery("bench_peer", broker=f"sqs://testing:testing@{ENDPOINT.removeprefix('http://')}")
app.conf.update(
    broker_transport_options={
        "region": "us-east-1",
        "is_secure": False,
        "polling_interval": float(os.environ.get("BENCH_CELERY_POLLING_INTERVAL", "0.1")),
        "predefined_queues": {QUEUE: {"url": f"{ENDPOINT}/{ACCOUNT}/{QUEUE}",
                                      "access_key_id": "testing", "secret_access_key": "testing"}},
    },
    broker_connection_retry_on_startup=True,
    task_default_queue=QUEUE,
    task_ignore_result=True,
    worker_enable_remote_control=False,
    worker_send_task_events=False,
)


@app.task(name="bench.noop")
def noop(job_id: str) -> None:
    return None


def enqueue(count: int) -> None:
    for i in range(count):
        noop.delay(str(i))


if __name__ == "__main__":
    if sys.argv[1:2] == ["enqueue"]:
        enqueue(int(sys.argv[2]))
