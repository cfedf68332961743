"""A job submitted while the queue is down is still accepted, and delivered once the queue is back."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from apps.jobs import services
from src.application.enqueue import Reconciler
from src.infrastructure.memory import InMemoryBroker, InMemoryPublisher
from src.infrastructure.sqs.queues import QueueDirectory
from tests.fixtures.moto import free_port

T2V = {"model": "gen4.5", "mode": "t2v", "prompt": "storm over the sea", "duration_s": 5}


def reconcile(adapters: Any) -> int:
    return Reconciler(outbox=adapters.outbox, publisher=adapters.publisher, clock=adapters.clock,
                      grace_s=0).run_once()


def test_with_the_publisher_down_the_job_is_accepted_and_the_reconciler_sends_it(api, library):
    broker = InMemoryBroker(library.clock)
    library.publisher = InMemoryPublisher(broker)
    library.publisher.down = True

    response = api.post("/api/v1/ai-jobs", T2V, format="json")

    assert response.status_code == 202
    assert [e.message.job_id for e in library.outbox.pending(limit=10)] == [response.json()["id"]]
    library.publisher.down = False
    assert reconcile(library) == 1
    assert [json.loads(b)["job_id"] for b in broker.bodies("ai-remote")] == [response.json()["id"]]
    assert library.outbox.pending(limit=10) == []


def test_a_job_created_while_sqs_is_unreachable_is_delivered_once_sqs_is_back(
    api, settings, moto_server, sqs_client, unique_name
):
    prefix = f"{unique_name}-"
    offline = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings.REELQUEUE = replace(settings.REELQUEUE, queue_backend="sqs", sqs_endpoint_url=offline,
                                 sqs_queue_prefix=prefix)

    response = api.post("/api/v1/ai-jobs", T2V, format="json")

    assert response.status_code == 202
    job_id = response.json()["id"]
    assert [e.message.job_id for e in services.adapters().outbox.pending(limit=10)] == [job_id]

    settings.REELQUEUE = replace(settings.REELQUEUE, sqs_endpoint_url=moto_server)
    directory = QueueDirectory(sqs_client, prefix=prefix, max_receive_count=5, visibility_timeout_s=30)
    directory.ensure(["video", "ai-gpu", "ai-remote"])
    assert reconcile(services.adapters()) == 1

    received = sqs_client.receive_message(QueueUrl=directory.url("ai-remote"), WaitTimeSeconds=1)
    assert [json.loads(m["Body"]) for m in received["Messages"]] == [{"v": 1, "kind": "ai", "job_id": job_id}]
    assert services.adapters().outbox.pending(limit=10) == []


def test_with_sqs_up_the_message_is_sent_right_after_commit(
    api, settings, moto_server, sqs_client, unique_name
):
    prefix = f"{unique_name}-"
    directory = QueueDirectory(sqs_client, prefix=prefix, max_receive_count=5, visibility_timeout_s=30)
    directory.ensure(["video", "ai-gpu", "ai-remote"])
    settings.REELQUEUE = replace(settings.REELQUEUE, queue_backend="sqs", sqs_endpoint_url=moto_server,
                                 sqs_queue_prefix=prefix)

    source = {"source": "https://media.example.com/v.mp4"}
    job_id = api.post("/api/v1/video-jobs", source, format="json").json()["id"]

    received = sqs_client.receive_message(QueueUrl=directory.url("video"), WaitTimeSeconds=1)
    assert [json.loads(m["Body"])["job_id"] for m in received["Messages"]] == [job_id]
    assert services.adapters().outbox.pending(limit=10) == []
