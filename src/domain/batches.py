"""A batch: many AI jobs submitted together; its status is derived from theirs."""

from __future__ import annotations

from collections.abc import Iterable

from src.domain.status import JobStatus


def batch_status(statuses: Iterable[JobStatus]) -> str:
    """``succeeded`` when all did; ``running`` while any runs; ``queued`` while none started;
    ``failed`` / ``cancelled`` / ``partial`` once all ended otherwise."""
    found = set(statuses)
    if not found:
        return "empty"
    if found == {JobStatus.SUCCEEDED}:
        return "succeeded"
    if found & {JobStatus.PROCESSING, JobStatus.WAITING_PROVIDER}:
        return "running"
    if JobStatus.QUEUED in found:
        return "running" if found - {JobStatus.QUEUED} else "queued"
    if found == {JobStatus.FAILED}:
        return "failed"
    if found == {JobStatus.CANCELLED}:
        return "cancelled"
    return "partial"
