"""Prometheus metrics of a worker process (prometheus-client), on a registry of its own."""

from __future__ import annotations

from enum import Enum

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from src.application.outcomes import Action, Ending, Outcome

JOB_LABELS = ("kind", "provider", "production_path")
# Video transcodes and Wan generations run for minutes to tens of minutes.
DURATION_BUCKETS_S = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, float("inf"))
RECEIVE_BUCKETS_S = (0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 20, 30, float("inf"))


class Handled(str, Enum):
    """What the worker did with a delivery: the handler's action, or ``error`` when it raised."""

    ACK = Action.ACK.value
    RETRY_LATER = Action.RETRY_LATER.value
    RELEASE = Action.RELEASE.value
    ERROR = "error"

    @classmethod
    def of(cls, outcome: Outcome | None) -> Handled:
        return cls.ERROR if outcome is None else cls(outcome.action.value)


class Failure(str, Enum):
    """Why a delivery counts as failed: the job failed for good, or its handler raised."""

    PERMANENT = Ending.FAILED.value
    EXHAUSTED = Ending.EXHAUSTED.value
    ERROR = "error"  # the message is left for redelivery


class DeadLetter(str, Enum):
    """Why a message went to the dead-letter queue."""

    UNDECODABLE = "undecodable"  # not a job message this version reads
    NO_JOB = "job_not_found"
    NO_HANDLER = "no_handler"  # a kind this worker does not run (a routing mistake)


JobLabelValues = tuple[str, str, str]  # kind, provider, production_path


class WorkerMetrics:
    """What a worker counts. ``registry`` is private so several workers can live in one test run."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.started = Counter("reelqueue_jobs_started", "Job deliveries started", JOB_LABELS, registry=r)
        self.succeeded = Counter("reelqueue_jobs_succeeded", "Deliveries that ended the job successfully",
                                 JOB_LABELS, registry=r)
        self.failed = Counter("reelqueue_jobs_failed", "Deliveries that ended in an error",
                              (*JOB_LABELS, "reason"), registry=r)  # a Failure
        self.outcomes = Counter("reelqueue_job_outcomes", "What the worker did with each delivery",
                                (*JOB_LABELS, "action"), registry=r)  # a Handled
        self.duration = Histogram("reelqueue_job_duration_seconds", "Time spent handling one delivery",
                                  JOB_LABELS, buckets=DURATION_BUCKETS_S, registry=r)
        self.in_flight = Gauge("reelqueue_jobs_in_flight", "Deliveries being handled now", registry=r)
        self.receive_latency = Histogram("reelqueue_receive_seconds", "Time one receive call took",
                                         buckets=RECEIVE_BUCKETS_S, registry=r)
        self.queue_errors = Counter("reelqueue_queue_errors", "Failed queue or service operations",
                                    ("operation",), registry=r)
        self.dead_lettered = Counter("reelqueue_messages_dead_lettered", "Messages moved to the DLQ",
                                     ("reason",), registry=r)  # a DeadLetter
        self.path_deferrals = Counter("reelqueue_path_limit_deferrals",
                                      "Messages handed back because their path was at its limit",
                                      ("production_path",), registry=r)

    def handled(self, job: JobLabelValues, outcome: Outcome | None, *, duration_s: float) -> None:
        """Count one finished delivery by its typed outcome (never by its reason text)."""
        self.duration.labels(*job).observe(duration_s)
        self.outcomes.labels(*job, Handled.of(outcome).value).inc()
        failure = _failure(outcome)
        if failure is not None:
            self.failed.labels(*job, failure.value).inc()
        elif outcome is not None and outcome.ending is Ending.SUCCEEDED:
            self.succeeded.labels(*job).inc()

    def value(self, name: str, **labels: str) -> float:
        """The current value of a sample (inspection, for tests and the CLI)."""
        got = self.registry.get_sample_value(name, labels)
        return 0.0 if got is None else got


def _failure(outcome: Outcome | None) -> Failure | None:
    if outcome is None:
        return Failure.ERROR
    if outcome.ending is Ending.FAILED:
        return Failure.PERMANENT
    if outcome.ending is Ending.EXHAUSTED:
        return Failure.EXHAUSTED
    return None
