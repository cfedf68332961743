"""One typed settings object, read from ``REELQUEUE_*`` environment variables.

Only entry points and the Django settings read it; core classes take explicit keyword
arguments. Every variable is listed in ``docs/configuration.md``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, get_type_hints

PREFIX = "REELQUEUE_"


@dataclass(frozen=True, kw_only=True)
class Settings:
    # where things live
    database_url: str = "sqlite:///var/reelqueue.sqlite3"
    redis_url: str = ""  # empty: idempotency and progress live in the database
    queue_backend: str = "sql"  # sql | sqs | memory
    storage_backend: str = "local"  # local | s3
    storage_root: str = "var/storage"
    # how providers (Luma's callbacks) and users (local storage's file links) reach the API; empty:
    # no callbacks (polling alone) and file links relative to the API's own address
    public_base_url: str = ""
    # where the API serves what workers link to (its URL conf, apps/jobs/urls.py): the signed
    # files of local storage, and Luma's callbacks (+ "<job id>/<callback token>")
    files_url_path: str = "/api/v1/files/"
    luma_callback_path: str = "/api/v1/webhooks/luma/"

    # SQS
    aws_region: str = "us-east-1"
    sqs_endpoint_url: str = ""
    sqs_queue_prefix: str = "reelqueue-"
    max_receive_count: int = 5
    visibility_timeout_s: int = 300

    # S3
    s3_bucket: str = "reelqueue"
    s3_endpoint_url: str = ""
    presign_expires_s: int = 900

    # jobs
    lock_ttl_ms: int = 5 * 60 * 1000  # renewed by the heartbeat; close to the visibility timeout
    progress_ttl_s: int = 24 * 3600
    max_attempts: int = 5
    retry_base_delay_s: float = 10.0
    retry_max_delay_s: float = 900.0
    path_policy: str = "use_default"  # use_default | reject
    idempotency_key_ttl_s: int = 24 * 3600  # how long a creating POST's Idempotency-Key replays
    max_source_bytes: int = 2 * 1024**3
    max_duration_s: float = 3 * 3600
    work_dir: str = ""  # temporary files; empty: the system's temp directory
    transcode_speed: str = "veryfast"  # the libx264 preset: ultrafast ... veryslow
    fetch_timeout_s: float = 30.0  # connect (at most 10 s) and read timeout for source URLs
    fetch_max_redirects: int = 3
    # tests and local development only, never from a request: comma-separated host names that
    # may be fetched over plain http, and CIDR networks whose addresses count as public
    fetch_allow_http_hosts: str = ""
    fetch_allowed_private_networks: str = ""

    # providers
    wan_model_dir: str = ""
    wan_i2v_model_dir: str = ""
    wan_num_inference_steps: int = 30
    wan_device: str = ""  # empty: cuda when available, else cpu
    wan_num_frames: int = 81  # when a job gives none; 4k+1 at 16 fps
    wan_cpu_offload: bool = True  # model CPU offload on the GPU (ignored on CPU)
    runway_api_key: str = field(default="", repr=False)
    runway_base_url: str = "https://api.dev.runwayml.com"
    luma_api_key: str = field(default="", repr=False)
    luma_base_url: str = "https://api.lumalabs.ai/dream-machine/v1"
    provider_timeout_s: float = 30.0  # polls, deletes and output downloads
    provider_create_timeout_s: float = 60.0  # a paid create (the official SDKs' 60 s)
    provider_quota_wait_s: float = 24 * 3600  # how long a job waits for a used-up provider quota

    # workers
    queue: str = ""  # empty: the worker kind's default (video, ai-gpu, ai-remote)
    worker_type: str = "remote"  # gpu | remote (AI workers)
    concurrency: int = 1
    prefetch: int = 0  # messages received ahead of free slots (0-10); 0 for long jobs
    path_concurrency: str = ""  # e.g. "cinema=1,fashion=4"
    shutdown_deadline_s: float = 60.0
    metrics_port: int = 0  # 0: no metrics server
    health_file: str = ""
    log_format: str = "json"  # json | text
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        environ = os.environ if environ is None else environ
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _convert(hints[f.name], raw, f.name)
        values.update(overrides)
        return cls(**values)


def _convert(kind: Any, raw: str, name: str) -> Any:
    try:
        if kind is bool:
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
    except ValueError:
        raise ValueError(f"{PREFIX}{name.upper()}={raw!r} is not a valid {kind.__name__}") from None
    return raw
