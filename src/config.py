"""One typed settings object, read from ``REELQUEUE_*`` environment variables.

Only entry points and the Django settings read it; core classes take explicit keyword
arguments. Every variable is listed in ``docs/configuration.md``.

:meth:`Settings.from_env` checks every variable and the rules between them in one pass and
raises one :class:`SettingsError` naming each wrong variable, its value (never a secret) and
what is allowed: a typo stops the process at start-up instead of falling back to a default.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any, Literal, get_args, get_origin, get_type_hints
from urllib.parse import SplitResult, urlsplit

from src.application.queue_limits import (
    MAX_QUEUE_NAME_CHARS,
    MAX_RECEIVE,
    MAX_RECEIVE_COUNT,
    MAX_VISIBILITY_TIMEOUT_S,
)
from src.domain.errors import ReelqueueError
from src.domain.paths import parse_path_limits

PREFIX = "REELQUEUE_"
MASK = "***"

QueueBackend = Literal["sql", "sqs", "memory"]
StorageBackend = Literal["local", "s3"]
PathPolicy = Literal["use_default", "reject"]  # src.domain.paths.UnknownPathPolicy
TranscodeSpeed = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                         "slower", "veryslow"]  # libx264's presets
WorkerType = Literal["gpu", "remote"]
QueueName = Literal["", "video", "ai-gpu", "ai-remote"]
LogFormat = Literal["json", "text"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
SQS_MAX_RECEIVE_COUNT = MAX_RECEIVE_COUNT  # RedrivePolicy maxReceiveCount: 1 to 1,000
SQS_MAX_VISIBILITY_TIMEOUT_S = MAX_VISIBILITY_TIMEOUT_S  # VisibilityTimeout: 0 to 43,200 seconds
SQS_MAX_QUEUE_NAME = MAX_QUEUE_NAME_CHARS  # letters, digits, hyphens and underscores
SQS_LONGEST_SUFFIX = "ai-remote-dlq"  # the longest name the prefix is put before
S3_MAX_PRESIGN_S = 7 * 24 * 3600  # a SigV4 presigned URL lives at most 7 days
MAX_PREFETCH = MAX_RECEIVE  # one SQS receive returns at most 10 messages
MAX_PORT = 65535


class SettingsError(ReelqueueError):
    """Settings a process cannot start with; ``problems`` has one line per wrong variable."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  {problem}" for problem in self.problems)
        super().__init__(f"{len(self.problems)} setting(s) refused, nothing started:\n{lines}")


class Process(str, Enum):
    """Which process reads the settings: each adds its own rules to the shared ones."""

    ANY = "any"  # the operator CLI, a library user: only the rules every process shares
    API = "api"
    VIDEO_WORKER = "video-worker"
    AI_WORKER = "ai-worker"


@dataclass(frozen=True, kw_only=True)
class Settings:
    # where things live
    database_url: str = "sqlite:///var/reelqueue.sqlite3"
    redis_url: str = ""  # empty: idempotency and progress live in the database
    queue_backend: QueueBackend = "sql"
    storage_backend: StorageBackend = "local"
    storage_root: str = "var/storage"
    # how providers (Luma's callbacks) and users (local storage's file links) reach the API; empty:
    # no callbacks (polling alone) and file links relative to the API's own address
    public_base_url: str = ""
    # where the API serves what workers link to (its URL conf, apps/jobs/urls.py): the signed
    # files of local storage, and Luma's callbacks (+ "<job id>/<callback token>")
    files_url_path: str = "/api/v1/files/"
    luma_callback_path: str = "/api/v1/webhooks/luma/"

    # SQS (and the region of S3)
    aws_region: str = ""  # required by the sqs queue and s3 storage
    sqs_endpoint_url: str = ""
    sqs_queue_prefix: str = "reelqueue-"
    max_receive_count: int = 5
    visibility_timeout_s: int = 300

    # S3
    s3_bucket: str = ""  # required by s3 storage
    s3_endpoint_url: str = ""
    presign_expires_s: int = 900

    # jobs
    lock_ttl_ms: int = 5 * 60 * 1000  # renewed by the heartbeat; close to the visibility timeout
    progress_ttl_s: int = 24 * 3600
    max_attempts: int = 5
    retry_base_delay_s: float = 10.0
    retry_max_delay_s: float = 900.0
    path_policy: PathPolicy = "use_default"
    idempotency_key_ttl_s: int = 24 * 3600  # how long a creating POST's Idempotency-Key replays
    max_source_bytes: int = 2 * 1024**3
    max_duration_s: float = 3 * 3600
    work_dir: str = ""  # temporary files; empty: the system's temp directory
    transcode_speed: TranscodeSpeed = "veryfast"
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
    queue: QueueName = ""  # empty: the worker kind's default (video, ai-gpu, ai-remote)
    worker_type: WorkerType = "remote"  # AI workers
    concurrency: int = 1
    prefetch: int = 0  # messages received ahead of free slots (0-10); 0 for long jobs
    path_concurrency: str = ""  # e.g. "cinema=1,fashion=4"
    shutdown_deadline_s: float = 60.0
    metrics_port: int = 0  # 0: no metrics server
    health_file: str = ""
    log_format: LogFormat = "json"
    log_level: LogLevel = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, process: Process = Process.ANY,
                 **overrides: Any) -> Settings:
        """Read, convert and check every variable; ``overrides`` (command-line options) win over
        variables. Raises :class:`SettingsError` listing every problem at once."""
        environ = os.environ if environ is None else environ
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        problems: list[str] = []
        for f in fields(cls):
            raw = environ.get(variable(f.name))
            if raw is None:
                continue
            try:
                values[f.name] = _convert(hints[f.name], raw)
            except ValueError as exc:
                problems.append(f"{variable(f.name)}={shown(f.name, raw)}: {exc}")
        values.update(overrides)
        settings = cls(**values)
        problems += settings.problems(process)  # a value that did not convert kept its good default
        if problems:
            raise SettingsError(problems)
        return settings

    def problems(self, process: Process = Process.ANY) -> list[str]:
        """Every rule these settings break, one line each (empty: good to start ``process``)."""
        found = []
        for name, check in FIELD_RULES.items():
            reason = check(getattr(self, name))
            if reason:
                found.append(f"{variable(name)}={shown(name, getattr(self, name))}: {reason}")
        for rule in (*SHARED_RULES, *PROCESS_RULES.get(process, ())):
            found += rule(self)
        return found


def variable(name: str) -> str:
    return PREFIX + name.upper()


def shown(name: str, value: object) -> str:
    """A value as an error message may show it: keys masked, URL passwords masked."""
    text = str(value)
    if name.endswith("_api_key"):
        return repr(MASK if text else "")
    return repr(_mask_password(text))


def _mask_password(text: str) -> str:
    text = re.sub(r"(://[^/@:]*:)[^/]*@", rf"\g<1>{MASK}@", text)  # user:password@host
    return re.sub(r"(?i)(password=)[^&]*", rf"\g<1>{MASK}", text)  # ?password=...


# --- conversion ----------------------------------------------------------------------------------


def _convert(kind: Any, raw: str) -> Any:
    """``raw`` as the field's type; raises ValueError saying what is allowed."""
    text = raw.strip()
    if get_origin(kind) is Literal:
        return _choice(get_args(kind), text)
    if kind is bool:
        return _flag(text)
    if kind is int:
        return _whole_number(text)
    if kind is float:
        return _number(text)
    return raw


def _choice(allowed: tuple[str, ...], text: str) -> str:
    for value in allowed:
        if text.lower() == value.lower():
            return value
    raise ValueError(f"not one of the allowed values: {_listed(allowed)}")


def _listed(allowed: Sequence[str]) -> str:
    return ", ".join("(empty)" if not value else value for value in allowed)


def _flag(text: str) -> bool:
    if text.lower() in TRUE:
        return True
    if text.lower() in FALSE:
        return False
    raise ValueError(f"not a yes/no value; allowed: {', '.join(TRUE)} or {', '.join(FALSE)}")


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError("not a whole number") from None


def _number(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise ValueError("not a number") from None
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


# --- one rule per field --------------------------------------------------------------------------

Check = Callable[[Any], str | None]


def _allowed(kind: Any) -> Check:
    allowed = get_args(kind)
    return lambda value: None if value in allowed else f"not one of the allowed values: {_listed(allowed)}"


def _at_least(low: float) -> Check:
    return lambda value: None if value >= low else f"must be at least {low:g}"


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _between(low: int, high: int) -> Check:
    return lambda value: None if low <= value <= high else f"must be between {low} and {high}"


def _database_url(value: str) -> str | None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    allowed = ("sqlite:///<file> or postgresql+psycopg2://<user>:<password>@<host>:<port>/<name> "
               "(postgresql+psycopg://... for psycopg 3)")
    try:
        backend = make_url(value).get_backend_name()
    except (ArgumentError, ValueError):
        return f"not a database URL; allowed: {allowed}"
    if backend not in ("sqlite", "postgresql"):
        return f"unsupported database {backend!r}; allowed: {allowed}"
    return None


def _redis_url(value: str) -> str | None:
    if not value:
        return None
    allowed = "empty (no Redis), redis://[:<password>@]<host>[:<port>][/<db>], rediss://... or unix://<path>"
    parts = _split(value)
    if parts is None or parts.scheme not in ("redis", "rediss", "unix"):
        return f"not a Redis URL; allowed: {allowed}"
    if parts.scheme == "unix":
        return None if parts.path else f"a unix URL needs a socket path; allowed: {allowed}"
    if not parts.hostname or not re.fullmatch(r"/?\d*", parts.path):
        return f"not a Redis URL (a host and an optional database number); allowed: {allowed}"
    return None


def _split(value: str) -> SplitResult | None:
    """``value`` split into URL parts, or None when it is malformed (a port that is no number)."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return None
    return parts


def _http_url(value: str) -> str | None:
    parts = _split(value)
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an http(s) URL; allowed: https://<host>[:<port>][/<path>]"
    if parts.query or parts.fragment:
        return "must not carry a query or a fragment; allowed: https://<host>[:<port>][/<path>]"
    return None


def _optional_http_url(value: str) -> str | None:
    return _http_url(value) if value else None


def _url_path(value: str) -> str | None:
    if re.fullmatch(r"(/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)+/?", value):
        return None
    return "not a URL path; allowed: /<segment>/<segment>/ (letters, digits, '.', '-', '_', '~')"


def _queue_prefix(value: str) -> str | None:
    longest = SQS_MAX_QUEUE_NAME - len(SQS_LONGEST_SUFFIX)
    if re.fullmatch(rf"[A-Za-z0-9_-]{{0,{longest}}}", value):
        return None
    return (f"SQS queue names take letters, digits, '-' and '_' only, at most {SQS_MAX_QUEUE_NAME} "
            f"characters: allowed is a prefix of at most {longest} such characters")


def _aws_region(value: str) -> str | None:
    if not value or re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d+", value):
        return None
    return "not an AWS region; allowed: a region name such as us-east-1 or eu-west-3"


def _s3_bucket(value: str) -> str | None:
    if not value or (re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", value) and ".." not in value):
        return None
    return "not an S3 bucket name; allowed: 3-63 lowercase letters, digits, '.' and '-', starting " \
           "and ending with a letter or digit"


def _host_list(value: str) -> str | None:
    bad = [host for host in _csv(value) if not re.fullmatch(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]", host)]
    return f"not host names: {', '.join(bad)}; allowed: comma-separated host names" if bad else None


def _network_list(value: str) -> str | None:
    bad = []
    for network in _csv(value):
        try:
            ipaddress.ip_network(network)
        except ValueError:
            bad.append(network)
    if not bad:
        return None
    return f"not networks: {', '.join(bad)}; allowed: comma-separated CIDR networks such as 127.0.0.0/8"


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _wan_device(value: str) -> str | None:
    if re.fullmatch(r"|cpu|cuda(:\d+)?", value):
        return None
    return "not a device; allowed: (empty: cuda when available), cpu, cuda or cuda:<index>"


def _wan_num_frames(value: int) -> str | None:
    return None if value >= 1 and value % 4 == 1 else "must be 4k+1 (for example 5, 33, 81)"


def _path_concurrency(value: str) -> str | None:
    try:
        parse_path_limits(value)
    except ValueError as exc:
        return f"{exc}; allowed: comma-separated <path>=<n> (n at least 1), e.g. cinema=1,fashion=4"
    return None


def _not_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


FIELD_RULES: dict[str, Check] = {
    "database_url": _database_url,
    "redis_url": _redis_url,
    "queue_backend": _allowed(QueueBackend),
    "storage_backend": _allowed(StorageBackend),
    "public_base_url": _optional_http_url,
    "files_url_path": _url_path,
    "luma_callback_path": _url_path,
    "aws_region": _aws_region,
    "sqs_endpoint_url": _optional_http_url,
    "sqs_queue_prefix": _queue_prefix,
    "max_receive_count": _between(1, SQS_MAX_RECEIVE_COUNT),
    "visibility_timeout_s": _between(1, SQS_MAX_VISIBILITY_TIMEOUT_S),
    "s3_bucket": _s3_bucket,
    "s3_endpoint_url": _optional_http_url,
    "presign_expires_s": _between(1, S3_MAX_PRESIGN_S),
    "lock_ttl_ms": _positive,
    "progress_ttl_s": _positive,
    "max_attempts": _at_least(1),
    "retry_base_delay_s": _positive,
    "retry_max_delay_s": _positive,
    "path_policy": _allowed(PathPolicy),
    "idempotency_key_ttl_s": _positive,
    "max_source_bytes": _positive,
    "max_duration_s": _positive,
    "transcode_speed": _allowed(TranscodeSpeed),
    "fetch_timeout_s": _positive,
    "fetch_max_redirects": _at_least(0),
    "fetch_allow_http_hosts": _host_list,
    "fetch_allowed_private_networks": _network_list,
    "wan_num_inference_steps": _at_least(1),
    "wan_device": _wan_device,
    "wan_num_frames": _wan_num_frames,
    "runway_base_url": _http_url,
    "luma_base_url": _http_url,
    "provider_timeout_s": _positive,
    "provider_create_timeout_s": _positive,
    "provider_quota_wait_s": _at_least(0),
    "queue": _allowed(QueueName),
    "worker_type": _allowed(WorkerType),
    "concurrency": _at_least(1),
    "prefetch": _between(0, MAX_PREFETCH),
    "path_concurrency": _path_concurrency,
    "shutdown_deadline_s": _positive,
    "metrics_port": _between(0, MAX_PORT),
    "log_format": _allowed(LogFormat),
    "log_level": _allowed(LogLevel),
}


# --- rules between fields, and per process -------------------------------------------------------

Rule = Callable[[Settings], list[str]]


def _companions(settings: Settings) -> list[str]:
    """A backend's required companion settings."""
    found = []
    if settings.queue_backend == "sqs" and not settings.aws_region:
        found.append(f"{variable('aws_region')} is empty: {variable('queue_backend')}=sqs needs the "
                     "queues' region, e.g. us-east-1")
    if settings.storage_backend == "s3" and not settings.aws_region:
        found.append(f"{variable('aws_region')} is empty: {variable('storage_backend')}=s3 needs the "
                     "bucket's region, e.g. us-east-1")
    if settings.storage_backend == "s3" and not settings.s3_bucket:
        found.append(f"{variable('s3_bucket')} is empty: {variable('storage_backend')}=s3 needs a bucket "
                     "name (3-63 lowercase letters, digits, '.' and '-')")
    if settings.storage_backend == "local" and not settings.storage_root.strip():
        found.append(f"{variable('storage_root')} is empty: {variable('storage_backend')}=local needs "
                     "a directory")
    return found


def _retry_delays(settings: Settings) -> list[str]:
    if settings.retry_max_delay_s <= 0 or settings.retry_max_delay_s >= settings.retry_base_delay_s:
        return []  # a delay of 0 or less is its own rule's
    return [f"{variable('retry_max_delay_s')}={settings.retry_max_delay_s:g}: must be at least "
            f"{variable('retry_base_delay_s')} ({settings.retry_base_delay_s:g})"]


def _api(settings: Settings) -> list[str]:
    found = []
    if settings.queue_backend == "memory":
        found.append(f"{variable('queue_backend')}='memory': the API cannot share an in-process queue "
                     "with workers; allowed: sql, sqs")
    if _in_memory_sqlite(settings.database_url):
        found.append(f"{variable('database_url')}={shown('database_url', settings.database_url)}: the "
                     "API needs a SQLite file (sqlite:///<file>) or postgresql+psycopg2://..., not an "
                     "in-memory database")
    return found


def _in_memory_sqlite(url: str) -> bool:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return False  # reported by the database_url rule
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def _worker_queue(expected: Callable[[Settings], str]) -> Rule:
    def check(settings: Settings) -> list[str]:
        want = expected(settings)
        if settings.queue in ("", want):
            return []
        return [f"{variable('queue')}={settings.queue!r}: this worker runs {want} jobs only; "
                f"allowed: (empty) or {want}"]

    return check


def _ai_queue(settings: Settings) -> str:
    return "ai-gpu" if settings.worker_type == "gpu" else "ai-remote"


def _ai_providers(settings: Settings) -> list[str]:
    """An AI worker must wire at least one provider."""
    if settings.worker_type == "remote" and not (settings.runway_api_key or settings.luma_api_key):
        return [f"{variable('runway_api_key')} and {variable('luma_api_key')} are both empty: a "
                f"{variable('worker_type')}=remote worker needs at least one provider key"]
    if settings.worker_type == "gpu" and not (settings.wan_model_dir or settings.wan_i2v_model_dir):
        return [f"{variable('wan_model_dir')} and {variable('wan_i2v_model_dir')} are both empty: a "
                f"{variable('worker_type')}=gpu worker needs at least one Wan model directory"]
    return []


SHARED_RULES: tuple[Rule, ...] = (_companions, _retry_delays)
PROCESS_RULES: dict[Process, tuple[Rule, ...]] = {
    Process.API: (_api,),
    Process.VIDEO_WORKER: (_worker_queue(lambda _settings: "video"),),
    Process.AI_WORKER: (_worker_queue(_ai_queue), _ai_providers),
}
