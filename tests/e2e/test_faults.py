"""The fault suite: the whole production profile as real processes, and one fault at a time.

One stack is shared by the module (starting one costs seconds of a 2-core machine): its own
PostgreSQL and Redis (``tests/e2e/services.py``: their own ports and data directories, so they
can be restarted), moto's server for S3, an :class:`SqsProxy` in front of moto for SQS (the API,
the workers and the reconciler all go through it, so it can go dark), fake Runway and Luma,
the API under gunicorn, two video workers, a remote-AI worker and ``cli reconcile --loop``.

Every case uses its own jobs and checks, for each of them, that nothing was lost (every job
succeeded) and nothing was done twice: exactly one "succeeded" outcome in all the workers' logs,
one provider task per AI job (the fakes' create counts, by a unique tag in the prompt), and the
outputs in S3. Visibility timeout and lock TTL are short (6 s) so redeliveries come quickly.
The last case scans every log line the run produced for secrets.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from src.infrastructure.media.samples import make_clip
from src.infrastructure.sqs.client import make_sqs_client
from src.infrastructure.storage.s3 import make_s3_client
from tests.e2e.services import OwnPostgres, OwnRedis
from tests.e2e.stack import REGION, Stack, ai_remote_worker, video_worker
from tests.fakes import FakeLuma, FakeRunway
from tests.fakes.sqs_proxy import SqsProxy

pytestmark = pytest.mark.slow

VISIBILITY_S = 6
SUCCEEDED = "job handled: ack (succeeded)"
WORKERS = ("video-a", "video-b", "ai-remote")


# --- the shared stack ------------------------------------------------------------------------------


class Faults:
    """The stack and every service behind it that a case may break."""

    def __init__(self, stack: Stack, pg: OwnPostgres, cache: OwnRedis, proxy: SqsProxy, moto: str,
                 runway: FakeRunway, luma: FakeLuma, clips: dict[str, Path]) -> None:
        self.stack, self.pg, self.cache, self.proxy, self.moto = stack, pg, cache, proxy, moto
        self.runway, self.luma, self.clips = runway, luma, clips
        self.sqs = make_sqs_client(region=REGION, endpoint_url=moto)  # straight to moto
        self.s3 = make_s3_client(region=REGION, endpoint_url=moto)
        self.token = stack.create_user(f"fault-{uuid.uuid4().hex[:6]}")
        self.secrets: set[str] = {runway.api_key, luma.api_key, stack.env["REELQUEUE_SECRET_KEY"], self.token}

    # queues

    def queue_url(self, queue: str) -> str:
        name = self.stack.env["REELQUEUE_SQS_QUEUE_PREFIX"] + queue
        return str(self.sqs.get_queue_url(QueueName=name)["QueueUrl"])

    def send_raw(self, queue: str, body: str) -> None:
        self.sqs.send_message(QueueUrl=self.queue_url(queue), MessageBody=body)

    def dead_letters(self, queue: str) -> list[tuple[str, str]]:
        """(body, reason) of every message in ``queue``'s DLQ; they become visible again at once."""
        url = self.queue_url(queue + "-dlq")
        found: dict[str, tuple[str, str]] = {}
        handles = []
        for _ in range(20):
            answer = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                              VisibilityTimeout=30, MessageAttributeNames=["All"])
            messages = answer.get("Messages", [])
            if not messages:
                break
            for m in messages:
                reason = m.get("MessageAttributes", {}).get("reason", {}).get("StringValue", "")
                found[m["MessageId"]] = (m["Body"], reason)
                handles.append(m["ReceiptHandle"])
        for handle in handles:
            self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
        return list(found.values())

    # jobs

    def video(self, clip: str = "small") -> str:
        key = self.stack.upload(self.token, self.clips[clip], "video/mp4")
        return str(self.stack.submit_video(self.token, key, preset="480p", poster_offset_s=0.5)["id"])

    def runway_job(self, tag: str) -> str:
        job = self.stack.submit_ai(self.token, model="gen4.5", mode="t2v", duration_s=5,
                                   prompt=f"a red fox in snow {tag}", production_path="cinema")
        return str(job["id"])

    def luma_job(self, tag: str) -> str:
        job = self.stack.submit_ai(self.token, model="ray-flash-2", mode="t2v", duration_s=5,
                                   prompt=f"a lighthouse at dusk {tag}")
        return str(job["id"])

    def wait(self, ids: list[str], timeout_s: float) -> dict[str, dict[str, Any]]:
        return self.stack.wait_terminal(ids, timeout_s=timeout_s, token=self.token)

    # logs

    def records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.stack.logs():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    def successes(self, job_id: str) -> int:
        return sum(1 for r in self.records() if r.get("job_id") == job_id and r.get("message") == SUCCEEDED)

    def worker_running(self, job_id: str) -> str | None:
        """The worker whose log says it started ``job_id`` last."""
        for name in WORKERS:
            for suffix in ("stderr", "stdout"):
                path = self.stack.log_dir / f"{name}.{suffix}.log"
                if path.exists() and f'"job_id": "{job_id}"' in path.read_text(errors="replace"):
                    return name
        return None

    # the checks every case makes

    def assert_done_once(self, final: dict[str, dict[str, Any]], *, tags: dict[str, str] | None = None,
                         provider: FakeRunway | FakeLuma | None = None) -> None:
        failed = {i: (v["status"], v.get("error")) for i, v in final.items() if v["status"] != "succeeded"}
        assert not failed, f"jobs not succeeded: {failed}"
        twice = {i: n for i in final if (n := self.successes(i)) != 1}
        assert not twice, f"jobs completed other than once (job: successes): {twice}"
        for job_id, view in final.items():
            roles = sorted(o["role"] for o in view["outputs"])
            assert roles in (["poster", "video"], ["video"]), (job_id, roles)
            for output in view["outputs"]:
                head = self.s3.head_object(Bucket=self.stack.env["REELQUEUE_S3_BUCKET"], Key=output["key"])
                assert head["ContentLength"] == output["size_bytes"] > 0
        if tags:
            assert provider is not None
            counts = {job_id: provider.create_count(containing=tag) for job_id, tag in tags.items()}
            assert all(n == 1 for n in counts.values()), f"provider tasks per job: {counts}"

    def assert_workers_alive(self) -> None:
        dead = [name for name in WORKERS if not self.stack.alive(name)]
        assert not dead, f"workers died: {dead}"


def tag() -> str:
    return f"[{uuid.uuid4().hex[:10]}]"


@pytest.fixture(scope="module")
def faults(moto_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faults]:
    root = tmp_path_factory.mktemp("faults")
    clips = {
        "small": make_clip(root / "small.mp4", width=160, height=96, duration_s=1.0),
        "long": make_clip(root / "long.mp4", width=640, height=360, duration_s=20.0),
    }
    keys = {"runway": f"rk_live_{secrets.token_hex(16)}", "luma": f"luma-{secrets.token_hex(16)}"}
    with OwnPostgres() as pg, OwnRedis(root=root / "redis") as cache, \
            FakeRunway(api_key=keys["runway"], generation_s=1.0, queue_s=0.1) as runway, \
            FakeLuma(api_key=keys["luma"], generation_s=1.0, queue_s=0.1) as luma:
        proxy = SqsProxy(moto_server)
        stack = Stack(
            database_url=pg.url, redis_url=cache.url, sqs_endpoint_url=proxy.url, s3_endpoint_url=moto_server,
            runway=runway, luma=luma, workdir=root / "stack",
            workers=(video_worker("video-a"), video_worker("video-b"), ai_remote_worker("ai-remote")),
            env={"REELQUEUE_VISIBILITY_TIMEOUT_S": str(VISIBILITY_S),
                 "REELQUEUE_LOCK_TTL_MS": str(VISIBILITY_S * 1000)},
        )
        try:
            stack.start()
            # the outbox's safety net: sends what the API could not (SQS down), 2 s after commit
            stack._spawn("reconciler", [
                sys.executable, "-m", "src.interfaces.cli",
                "reconcile", "--loop", "--interval-s", "1", "--grace-s", "2"], {})
            yield Faults(stack, pg, cache, proxy, moto_server, runway, luma, clips)
        finally:
            stack.close()
            proxy.stop()


# --- cases -------------------------------------------------------------------------------------------


def test_every_message_delivered_twice_is_processed_once(faults: Faults) -> None:
    tags = {}
    ids = []
    for _ in range(4):
        ids.append(faults.video())
    for _ in range(4):
        t = tag()
        job_id = faults.runway_job(t)
        tags[job_id] = t
        ids.append(job_id)
    for job_id in ids:  # the same message again, straight to SQS
        kind, queue = ("ai", "ai-remote") if job_id in tags else ("video", "video")
        faults.send_raw(queue, json.dumps({"v": 1, "kind": kind, "job_id": job_id}, separators=(",", ":")))
    final = faults.wait(ids, timeout_s=60)
    faults.assert_done_once(final, tags=tags, provider=faults.runway)
    videos = [i for i in ids if i not in tags]
    assert all(final[i]["attempts"] == 1 for i in videos), {i: final[i]["attempts"] for i in videos}
    faults.assert_workers_alive()


def test_runway_refusing_creates_for_its_daily_quota_and_failing_polls(faults: Faults) -> None:
    """Every 3rd create is refused with 429 (the daily quota: nothing created, Retry-After 1 s) and
    every 4th poll answers 502/503/504; tasks also sit in THROTTLED first. A refused job waits
    and is sent again without spending an attempt; a failed poll is retried; nothing is paid twice.
    Creates are never answered 5xx here: such an answer is an unknown outcome (the job fails
    rather than pay twice), which the integration tests cover."""
    faults.runway.fail_every(3, 429, method="POST", headers={"Retry-After": "1"})
    faults.runway.fail_every(4, 502, 503, 504, method="GET")
    faults.runway.throttled_s = 0.5
    before = len(faults.runway.requests)
    try:
        tags = {}
        for _ in range(8):
            t = tag()
            tags[faults.runway_job(t)] = t
        final = faults.wait(list(tags), timeout_s=90)
    finally:
        faults.runway.fail_every(0, method="POST")
        faults.runway.fail_every(0, method="GET")
        faults.runway.throttled_s = 0.0
    faults.assert_done_once(final, tags=tags, provider=faults.runway)
    assert all(view["attempts"] == 1 for view in final.values()), {i: v["attempts"] for i, v in final.items()}
    answered = [(method, status) for method, path, status in faults.runway.requests[before:]
                if path.startswith("/v1/")]
    assert ("POST", 429) in answered, "no create was refused"
    assert {502, 503, 504} & {status for method, status in answered if method == "GET"}, "no poll failed"
    assert not [status for method, status in answered if method == "POST" and status >= 500]
    faults.assert_workers_alive()


def test_worker_sigkilled_mid_job_is_redelivered_and_completed_once(faults: Faults) -> None:
    job_id = faults.video("long")
    deadline = time.monotonic() + 60
    while True:
        view = faults.stack.job(job_id, faults.token)
        if view["status"] == "processing" and view.get("stage") == "transcoding":
            break
        assert view["status"] in ("queued", "processing"), view
        assert time.monotonic() < deadline, f"the transcode never started: {view}"
        time.sleep(0.1)
    victim = faults.worker_running(job_id)
    assert victim in ("video-a", "video-b"), victim
    killed_at = time.monotonic()
    assert faults.stack.stop_worker(victim, signal.SIGKILL) == -signal.SIGKILL
    try:
        final = faults.wait([job_id], timeout_s=90)
    finally:
        faults.stack.start_worker(victim)
    assert time.monotonic() - killed_at >= VISIBILITY_S - 1  # it waited for the visibility timeout
    faults.assert_done_once(final)
    assert final[job_id]["attempts"] == 2, final[job_id]
    other = "video-b" if victim == "video-a" else "video-a"
    assert faults.worker_running(job_id) is not None and faults.stack.alive(other)


def test_malformed_messages_go_to_the_dead_letter_queue_with_reasons(faults: Faults) -> None:
    junk = bytes(range(256)).decode("latin-1")
    allowed = "".join(c for c in junk if c in "\t\n\r" or ord(c) >= 0x20)
    random_junk = "".join(allowed[b % len(allowed)] for b in os.urandom(200_000))
    mark = uuid.uuid4().hex
    bodies = {
        "video": [
            f"not json {mark}",
            json.dumps({"v": 99, "kind": "video", "job_id": mark}),
            json.dumps({"v": 1, "kind": "music", "job_id": mark}),
            json.dumps({"v": 1, "kind": "video", "job_id": mark}),  # no such job
            json.dumps([1, 2, mark]),
            json.dumps({"v": 1, "kind": "video", "job_id": mark * 3}),  # too long
            random_junk + mark,  # oversized binary junk (200 kB)
        ],
        "ai-remote": [
            f"{{broken {mark}",
            json.dumps({"v": 1, "kind": "ai", "job_id": mark}),  # no such job
            json.dumps({"v": 1, "kind": "video", "job_id": mark}),  # the wrong queue for its kind
        ],
    }
    for queue, items in bodies.items():
        for body in items:
            faults.send_raw(queue, body)
    deadline = time.monotonic() + 60
    while True:
        dead = {q: [(b, r) for b, r in faults.dead_letters(q) if mark in b] for q in bodies}
        if all(len(dead[q]) == len(bodies[q]) for q in bodies) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for queue, items in bodies.items():
        missing = [b[:60] for b in items if b not in {d for d, _ in dead[queue]}]
        assert not missing and len(dead[queue]) == len(items), f"{queue}: {missing} of {len(dead[queue])}"
        reasons = {b[:40]: r for b, r in dead[queue]}
        assert all(reasons.values()), f"dead letters without a reason: {reasons}"
    faults.assert_workers_alive()
    t = tag()
    ids = [faults.video(), faults.runway_job(t)]
    final = faults.wait(ids, timeout_s=60)
    faults.assert_done_once(final, tags={ids[1]: t}, provider=faults.runway)
    faults.assert_workers_alive()


def _started(faults: Faults, ids: list[str], count: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        views = {v["id"]: v for v in faults.stack.jobs(faults.token) if v["id"] in ids}
        if sum(1 for v in views.values() if v["status"] != "queued") >= count:
            return
        assert time.monotonic() < deadline, "jobs did not start"
        time.sleep(0.1)


def _mixed_running(faults: Faults) -> tuple[list[str], dict[str, str]]:
    """Four video and four Runway jobs, three of them started; their ids and Runway tags."""
    tags = {}
    ids = [faults.video("small") for _ in range(3)] + [faults.video("long")]
    for _ in range(4):
        t = tag()
        job_id = faults.runway_job(t)
        tags[job_id] = t
        ids.append(job_id)
    _started(faults, ids, 3)
    return ids, tags


def test_redis_restarted_mid_run(faults: Faults) -> None:
    ids, tags = _mixed_running(faults)
    faults.cache.stop()
    try:
        # while Redis is down the API still accepts and answers (throttle counters, progress)
        t = tag()
        during = faults.runway_job(t)
        tags[during] = t
        ids.append(during)
        status = faults.stack.job(during, faults.token)["status"]
        assert status in ("queued", "processing", "waiting_provider"), status
        time.sleep(2)
    finally:
        faults.cache.start()
    final = faults.wait(ids, timeout_s=120)
    faults.assert_done_once(final, tags=tags, provider=faults.runway)
    faults.assert_workers_alive()


def test_postgres_restarted_mid_run(faults: Faults) -> None:
    ids, tags = _mixed_running(faults)
    faults.pg.restart()
    final = faults.wait(ids, timeout_s=120)
    faults.assert_done_once(final, tags=tags, provider=faults.runway)
    faults.assert_workers_alive()
    # and the API is back for new work
    t = tag()
    more = faults.runway_job(t)
    faults.assert_done_once(faults.wait([more], timeout_s=60), tags={more: t}, provider=faults.runway)


def test_sqs_unreachable_for_30s_jobs_created_meanwhile_are_delivered(faults: Faults) -> None:
    outage_s = 30.0
    faults.proxy.stop()
    stopped = time.monotonic()
    try:
        with pytest.raises(requests.ConnectionError):
            requests.get(faults.proxy.url, timeout=2)
        tags = {}
        ids = []
        for _ in range(3):
            ids.append(faults.video())  # each answered 202 (submit_* checks it)
            t = tag()
            job_id = faults.runway_job(t)
            tags[job_id] = t
            ids.append(job_id)
        views = [faults.stack.job(i, faults.token) for i in ids]
        assert all(v["status"] == "queued" for v in views), [v["status"] for v in views]
        time.sleep(max(0.0, outage_s - (time.monotonic() - stopped)))
    finally:
        faults.proxy.start()
    final = faults.wait(ids, timeout_s=120)
    faults.assert_done_once(final, tags=tags, provider=faults.runway)
    faults.assert_workers_alive()
    assert faults.stack.alive("reconciler") and faults.stack.alive("api")


# --- security (last: its log scan covers every case of the run) ---------------------------------


def test_security_auth_isolation_ssrf_webhook_and_no_secret_in_logs(faults: Faults) -> None:
    stack, api = faults.stack, faults.stack.api_url
    anonymous = requests.get(f"{api}/jobs", timeout=10)
    assert anonymous.status_code == 401
    assert requests.post(f"{api}/video-jobs", json={"source": "https://example.com/a.mp4"},
                         timeout=10).status_code == 401
    bad_token = requests.get(f"{api}/jobs", headers={"Authorization": "Token nope"}, timeout=10)
    assert bad_token.status_code == 401

    mine = faults.video()
    other = stack.create_user(f"mallory-{uuid.uuid4().hex[:6]}")
    faults.secrets.add(other)
    assert stack.client(other).get(f"{api}/jobs/{mine}", timeout=10).status_code == 404
    assert stack.client(other).post(f"{api}/jobs/{mine}/cancel", timeout=10).status_code == 404
    assert mine not in {j["id"] for j in stack.jobs(other)}

    for url in ("https://127.0.0.1/x.mp4", "https://169.254.169.254/latest/meta-data/",
                "https://localhost/x.mp4", "https://[::1]/x.mp4", "http://example.com/x.mp4",
                "https://10.0.0.1/x.mp4", "https://user:pw@example.com/x.mp4"):
        answer = stack.client(faults.token).post(f"{api}/video-jobs", json={"source": url}, timeout=30)
        assert answer.status_code == 400 and "source" in answer.json(), (url, answer.status_code, answer.text)
        answer = stack.client(faults.token).post(f"{api}/ai-jobs", timeout=30, json={
            "model": "gen4_turbo", "mode": "i2v", "input_image": url.replace(".mp4", ".png"),
            "duration_s": 5})
        assert answer.status_code == 400 and "input_image" in answer.json(), (url, answer.text)

    # a Luma job: a wrong callback token changes nothing; the stack's API is on loopback, which Luma
    # could never reach, so the worker sends no callback_url and polling alone finishes the job
    t = tag()
    luma_id = faults.luma_job(t)
    deadline = time.monotonic() + 30
    while (before := stack.job(luma_id, faults.token))["status"] != "waiting_provider":
        assert before["status"] in ("queued", "processing"), before
        assert time.monotonic() < deadline, before
        time.sleep(0.05)
    for token in ("wrong", "x" * 32, ""):
        answer = requests.post(f"{api}/webhooks/luma/{luma_id}/{token}", json={"state": "completed"},
                               timeout=10)
        assert answer.status_code == 404, (token, answer.status_code)
    answer = requests.post(f"{api}/webhooks/luma/{uuid.uuid4().hex}/wrong", json={}, timeout=10)
    assert answer.status_code == 404
    after = stack.job(luma_id, faults.token)
    assert (after["status"], after["updated_at"], after["attempts"]) == \
        (before["status"], before["updated_at"], before["attempts"])
    final = faults.wait([luma_id, mine], timeout_s=60)
    faults.assert_done_once(final, tags={luma_id: t}, provider=faults.luma)
    assert not [url for url, _, _ in faults.luma.callbacks if luma_id in url], faults.luma.callbacks
    assert [b for b in faults.luma.create_bodies if t in str(b.get("prompt")) and "callback_url" in b] == []

    # presigned signatures handed out during the run: an upload grant and the outputs' URLs
    grant = stack.client(faults.token).post(f"{api}/uploads", json={"content_type": "image/png"}, timeout=10)
    signed = [grant.json()["url"]] + [o["url"] for v in final.values() for o in v["outputs"]]
    for url in signed:
        for part in url.split("?", 1)[1].split("&"):
            name, _, value = part.partition("=")
            if name.lower() in ("x-amz-signature", "signature", "x-amz-credential") and value:
                faults.secrets.add(value)
    callback_tokens = [url.rsplit("/", 1)[-1] for url, _, _ in faults.luma.callbacks]
    faults.secrets.update(callback_tokens)
    faults.secrets.update(stack.tokens.values())  # every API token the run created (staff included)
    lines = stack.logs()
    # the scan reads this test's own work (not whatever tests ran before it): the remote worker
    # logged the Luma job's submission, with its id
    assert any(luma_id in line and "submitted to luma" in line for line in lines), \
        "the logs hold nothing of this test's jobs: the scan would prove nothing"
    leaks = {s[:6] + "...": line[:200] for line in lines for s in faults.secrets if s and s in line}
    assert not leaks, f"secrets in the logs: {leaks}"
