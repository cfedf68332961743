"""A job is accepted even when its queue is down, and delivered once the queue is back.

With SQS the job and its outbox entry commit together and the API process's relay thread sends
the message right after: the request never waits for SQS. With the SQL lease queue the message
is the queue row itself, committed with the job (see test_submit.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from apps.jobs import services
from src.application.enqueue import Reconciler
from src.infrastructure.sqs.queues import QueueDirectory
from tests.fakes.sqs_proxy import SqsProxy

T2V = {"model": "gen4.5", "mode": "t2v", "prompt": "storm over the sea", "duration_s": 5}


def reconcile(adapters: Any) -> int:
    return Reconciler(outbox=adapters.outbox, publisher=adapters.publisher, clock=adapters.clock,
                      grace_s=0).run_once()


def eventually(check: Callable[[], bool], *, within_s: float = 30.0) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.05)


def pending_job_ids() -> list[str]:
    return [entry.message.job_id for entry in services.adapters().outbox.pending(limit=10)]


@pytest.fixture
def sqs_queues(sqs_client: Any, unique_name: str) -> QueueDirectory:
    directory = QueueDirectory(sqs_client, prefix=f"{unique_name}-", max_receive_count=5,
                               visibility_timeout_s=30)
    directory.ensure(["video", "ai-gpu", "ai-remote"])
    return directory


@pytest.fixture
def sqs_proxy(moto_server: str) -> Iterator[SqsProxy]:
    """SQS (moto) behind a proxy that a test can take down and bring back."""
    proxy = SqsProxy(moto_server)
    yield proxy
    proxy.stop()


@pytest.fixture
def use_sqs(settings: Any, sqs_queues: QueueDirectory) -> Callable[[str], None]:
    def use(endpoint_url: str) -> None:
        settings.REELQUEUE = replace(settings.REELQUEUE, queue_backend="sqs", sqs_endpoint_url=endpoint_url,
                                     aws_region="us-east-1", sqs_queue_prefix=sqs_queues.prefix)

    return use


def received_job_ids(sqs_client: Any, queue_url: str) -> list[str]:
    answer = sqs_client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    return [json.loads(m["Body"])["job_id"] for m in answer.get("Messages", [])]


def test_with_sqs_up_the_message_is_sent_right_after_commit(
    api, use_sqs, moto_server, sqs_client, sqs_queues
):
    use_sqs(moto_server)
    source = {"source": "https://media.example.com/v.mp4"}

    job_id = api.post("/api/v1/video-jobs", source, format="json").json()["id"]

    assert received_job_ids(sqs_client, sqs_queues.url("video")) == [job_id]
    eventually(lambda: pending_job_ids() == [], within_s=5)


def test_a_job_created_while_sqs_is_unreachable_is_accepted_at_once_and_delivered_once_sqs_is_back(
    api, use_sqs, sqs_proxy, sqs_client, sqs_queues
):
    use_sqs(sqs_proxy.url)
    sqs_proxy.stop()

    started = time.monotonic()
    response = api.post("/api/v1/ai-jobs", T2V, format="json")

    assert response.status_code == 202 and time.monotonic() - started < 2  # never waits for SQS
    job_id = response.json()["id"]
    assert pending_job_ids() == [job_id]
    sqs_proxy.start()
    eventually(lambda: pending_job_ids() == [])  # the relay, on its own, once SQS answers again
    assert received_job_ids(sqs_client, sqs_queues.url("ai-remote")) == [job_id]


def test_messages_a_stopping_api_process_could_not_send_stay_in_the_outbox_for_the_reconciler(
    api, use_sqs, sqs_proxy, sqs_client, sqs_queues
):
    use_sqs(sqs_proxy.url)
    sqs_proxy.stop()
    job_id = api.post("/api/v1/ai-jobs", T2V, format="json").json()["id"]

    services.reset()  # the process ends: its relay gives up within its deadline

    assert pending_job_ids() == [job_id]
    sqs_proxy.start()
    reconcile(services.adapters())  # (a send the stopped relay still had in flight may win the race)
    assert set(received_job_ids(sqs_client, sqs_queues.url("ai-remote"))) == {job_id}
    assert pending_job_ids() == []
