"""Settings refuse mistakes: every wrong ``REELQUEUE_*`` variable is named, with its value (never a
secret's) and what is allowed, in one error raised before anything starts."""

from __future__ import annotations

import re
from dataclasses import fields

import pytest

from src.config import Process, Settings, SettingsError
from src.domain.jobs import JobKind
from src.domain.paths import UnknownPathPolicy
from src.interfaces.workers.process import load_settings

KEY = {"REELQUEUE_RUNWAY_API_KEY": "key_runway_0123456789abcdef"}

# (variable, wrong value, other variables it needs to be read, what the message must say is allowed)
WRONG = [
    ("DATABASE_URL", "postgres//db.example.com", {}, ["sqlite:///<file>", "postgresql+psycopg2://"]),
    ("REDIS_URL", "redis://cache.example.com:63x9/0", {}, ["redis://", "rediss://", "unix://"]),
    ("QUEUE_BACKEND", "sqss", {}, ["sql, sqs, memory"]),
    ("STORAGE_BACKEND", "disk", {}, ["local, s3"]),
    ("STORAGE_ROOT", " ", {}, ["needs a directory"]),
    ("PUBLIC_BASE_URL", "jobs.example.com", {}, ["https://<host>"]),
    ("FILES_URL_PATH", "api/v1/files?x=1", {}, ["not a URL path", "/<segment>/<segment>/"]),
    ("LUMA_CALLBACK_PATH", "/api/../webhooks/luma/", {}, ["not a URL path"]),
    ("AWS_REGION", "us-east", {"REELQUEUE_QUEUE_BACKEND": "sqs"}, ["us-east-1"]),
    ("SQS_ENDPOINT_URL", "localhost:4566", {}, ["https://<host>"]),
    ("SQS_QUEUE_PREFIX", "reel queue.", {}, ["letters, digits, '-' and '_'", "at most 67"]),
    ("MAX_RECEIVE_COUNT", "0", {}, ["between 1 and 1000"]),
    ("VISIBILITY_TIMEOUT_S", "-5", {}, ["between 1 and 43200"]),
    ("S3_BUCKET", "My_Bucket", {"REELQUEUE_STORAGE_BACKEND": "s3", "REELQUEUE_AWS_REGION": "us-east-1"},
     ["3-63 lowercase letters, digits, '.' and '-'"]),
    ("S3_ENDPOINT_URL", "ftp://files.example.com", {}, ["https://<host>"]),
    ("PRESIGN_EXPIRES_S", "604801", {}, ["between 1 and 604800"]),
    ("LOCK_TTL_MS", "0", {}, ["greater than 0"]),
    ("PROGRESS_TTL_S", "-1", {}, ["greater than 0"]),
    ("MAX_ATTEMPTS", "0", {}, ["at least 1"]),
    ("RETRY_BASE_DELAY_S", "0", {}, ["greater than 0"]),
    ("RETRY_MAX_DELAY_S", "-3", {}, ["greater than 0"]),
    ("PATH_POLICY", "fallback", {}, ["use_default, reject"]),
    ("IDEMPOTENCY_KEY_TTL_S", "0", {}, ["greater than 0"]),
    ("MAX_SOURCE_BYTES", "2GB", {}, ["not a whole number"]),
    ("MAX_DURATION_S", "nan", {}, ["not a finite number"]),
    ("WORK_DIR", "", {"REELQUEUE_MAX_DURATION_S": "0"}, None),  # free text: any directory
    ("TRANSCODE_SPEED", "turbo", {}, ["ultrafast, superfast, veryfast, faster, fast, medium, slow, "
                                      "slower, veryslow"]),
    ("FETCH_TIMEOUT_S", "0", {}, ["greater than 0"]),
    ("FETCH_MAX_REDIRECTS", "-1", {}, ["at least 0"]),
    ("FETCH_ALLOW_HTTP_HOSTS", "http://media.local/", {}, ["comma-separated host names"]),
    ("FETCH_ALLOWED_PRIVATE_NETWORKS", "127.0.0.0/8,10.0.0.1/8", {}, ["10.0.0.1/8", "CIDR networks"]),
    ("WAN_MODEL_DIR", "", {"REELQUEUE_WORKER_TYPE": "gpu"}, ["at least one Wan model directory"]),
    ("WAN_I2V_MODEL_DIR", "", {"REELQUEUE_WORKER_TYPE": "gpu"}, ["at least one Wan model directory"]),
    ("WAN_NUM_INFERENCE_STEPS", "0", {}, ["at least 1"]),
    ("WAN_DEVICE", "gpu", {}, ["cpu, cuda or cuda:<index>"]),
    ("WAN_NUM_FRAMES", "80", {}, ["4k+1"]),
    ("WAN_CPU_OFFLOAD", "maybe", {}, ["1, true, yes, on or 0, false, no, off"]),
    ("RUNWAY_API_KEY", "", {"REELQUEUE_WORKER_TYPE": "remote"}, ["at least one provider key"]),
    ("RUNWAY_BASE_URL", "api.dev.runwayml.com", {}, ["https://<host>"]),
    ("LUMA_API_KEY", "", {"REELQUEUE_WORKER_TYPE": "remote"}, ["at least one provider key"]),
    ("LUMA_BASE_URL", "", {}, ["https://<host>"]),
    ("PROVIDER_TIMEOUT_S", "0", {}, ["greater than 0"]),
    ("PROVIDER_CREATE_TIMEOUT_S", "-60", {}, ["greater than 0"]),
    ("PROVIDER_QUOTA_WAIT_S", "-1", {}, ["at least 0"]),
    ("QUEUE", "ai_gpu", {}, ["(empty), video, ai-gpu, ai-remote"]),
    ("WORKER_TYPE", "cpu", {}, ["gpu, remote"]),
    ("CONCURRENCY", "0", {}, ["at least 1"]),
    ("PREFETCH", "11", {}, ["between 0 and 10"]),
    ("PATH_CONCURRENCY", "opera=2", {}, ["fashion, beauty, eats, cinema, cartoon", "<path>=<n>"]),
    ("SHUTDOWN_DEADLINE_S", "0", {}, ["greater than 0"]),
    ("METRICS_PORT", "70000", {}, ["between 0 and 65535"]),
    ("HEALTH_FILE", "", {"REELQUEUE_METRICS_PORT": "-1"}, None),  # free text: any file
    ("LOG_FORMAT", "yaml", {}, ["json, text"]),
    ("LOG_LEVEL", "verbose", {}, ["DEBUG, INFO, WARNING, ERROR, CRITICAL"]),
]


def refusal(environ: dict[str, str], process: Process = Process.ANY) -> SettingsError:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(environ, process=process)
    return refused.value


def test_every_setting_has_a_wrong_value_below():
    assert sorted(name for name, *_ in WRONG) == sorted(f.name.upper() for f in fields(Settings))


@pytest.mark.parametrize(("name", "value", "context", "allowed"), WRONG, ids=[case[0] for case in WRONG])
def test_a_wrong_value_is_refused_with_its_name_and_what_is_allowed(name, value, context, allowed):
    error = refusal({**context, f"REELQUEUE_{name}": value}, Process.AI_WORKER)

    about = [problem for problem in error.problems if re.search(rf"REELQUEUE_{name}\b", problem)]
    if allowed is None:  # free text: never refused itself; the error is the other variable's
        assert about == []
        return
    assert any(all(words in line for words in allowed) for line in about), error.problems


def test_every_problem_is_reported_at_once():
    error = refusal({"REELQUEUE_QUEUE_BACKEND": "sqss", "REELQUEUE_CONCURRENCY": "many",
                     "REELQUEUE_PREFETCH": "12", "REELQUEUE_LOG_FORMAT": "xml"})

    assert sorted(p.split("=")[0] for p in error.problems) == [
        "REELQUEUE_CONCURRENCY", "REELQUEUE_LOG_FORMAT", "REELQUEUE_PREFETCH", "REELQUEUE_QUEUE_BACKEND"]
    assert str(error).startswith("4 setting(s) refused")


def test_good_values_are_read_typed_and_closed_sets_ignore_case_and_spaces():
    settings = Settings.from_env({"REELQUEUE_QUEUE_BACKEND": " SQS ", "REELQUEUE_AWS_REGION": "eu-west-3",
                                  "REELQUEUE_LOG_LEVEL": "debug", "REELQUEUE_WAN_CPU_OFFLOAD": "off",
                                  "REELQUEUE_RETRY_BASE_DELAY_S": "2.5", "REELQUEUE_PREFETCH": "10",
                                  "REELQUEUE_PATH_CONCURRENCY": "cinema=1, fashion=4",
                                  "REELQUEUE_REDIS_URL": "redis://:pw@cache:6379/2"})

    assert (settings.queue_backend, settings.log_level, settings.wan_cpu_offload) == ("sqs", "DEBUG", False)
    assert (settings.retry_base_delay_s, settings.prefetch) == (2.5, 10)


def test_the_defaults_start_the_api_and_the_video_worker():
    assert Settings.from_env({}, process=Process.API) == Settings()
    assert Settings.from_env({}, process=Process.VIDEO_WORKER) == Settings()


def test_the_path_policies_are_the_domains():
    error = refusal({"REELQUEUE_PATH_POLICY": "maybe"})
    assert all(policy.value in error.problems[0] for policy in UnknownPathPolicy)


# --- values that must never show --------------------------------------------------------------------


def test_a_key_is_never_shown_in_the_message():
    secret = "key_runway_0123456789abcdef"
    error = refusal({"REELQUEUE_RUNWAY_API_KEY": secret, "REELQUEUE_LUMA_BASE_URL": "nope"})
    assert secret not in str(error)


@pytest.mark.parametrize(("name", "url"), [
    ("DATABASE_URL", "postgresql+psycopg2://jobs:hunter2hunter2@db.example.com:5x32/jobs"),
    ("DATABASE_URL", "mysql://jobs:hunter2hunter2@db.example.com/jobs"),
    ("REDIS_URL", "redis://:hunter2hunter2@cache.example.com:port/0"),
    ("DATABASE_URL", "postgresql+psycopg2://jobs:hunter2@hunter2@db.example.com:5x32/jobs"),
])
def test_a_password_in_a_url_is_masked(name, url):
    error = refusal({f"REELQUEUE_{name}": url})
    assert "hunter2" not in str(error) and "***@" in str(error) and f"REELQUEUE_{name}" in str(error)


def test_a_password_in_a_query_is_masked():
    error = refusal({"REELQUEUE_DATABASE_URL": "oracle://db.example.com/jobs?user=jobs&password=hunter2"})
    assert "hunter2" not in str(error) and "password=***" in str(error)


# --- rules between settings, and per process --------------------------------------------------------


def test_sqs_needs_a_region():
    error = refusal({"REELQUEUE_QUEUE_BACKEND": "sqs"})
    assert "REELQUEUE_AWS_REGION is empty: REELQUEUE_QUEUE_BACKEND=sqs needs" in str(error)


def test_s3_storage_needs_a_bucket_and_a_region():
    error = refusal({"REELQUEUE_STORAGE_BACKEND": "s3"})
    assert "REELQUEUE_S3_BUCKET is empty: REELQUEUE_STORAGE_BACKEND=s3 needs a bucket" in str(error)
    assert "REELQUEUE_AWS_REGION is empty: REELQUEUE_STORAGE_BACKEND=s3 needs" in str(error)
    assert Settings.from_env({"REELQUEUE_STORAGE_BACKEND": "s3", "REELQUEUE_S3_BUCKET": "rq-media",
                              "REELQUEUE_AWS_REGION": "us-east-1"}).s3_bucket == "rq-media"


def test_the_longest_retry_delay_is_not_shorter_than_the_first():
    error = refusal({"REELQUEUE_RETRY_BASE_DELAY_S": "60", "REELQUEUE_RETRY_MAX_DELAY_S": "30"})
    assert "REELQUEUE_RETRY_MAX_DELAY_S=30: must be at least REELQUEUE_RETRY_BASE_DELAY_S (60)" in str(error)


def test_a_remote_ai_worker_needs_a_provider_key_and_one_is_enough():
    assert "at least one provider key" in str(refusal({}, Process.AI_WORKER))
    for name in ("REELQUEUE_RUNWAY_API_KEY", "REELQUEUE_LUMA_API_KEY"):
        settings = Settings.from_env({name: "a-key-of-twenty-chars"}, process=Process.AI_WORKER)
        assert settings.worker_type == "remote"


def test_a_gpu_ai_worker_needs_a_wan_model_directory():
    error = refusal({"REELQUEUE_WORKER_TYPE": "gpu", **KEY}, Process.AI_WORKER)
    assert "REELQUEUE_WORKER_TYPE=gpu worker needs at least one Wan model directory" in str(error)
    assert Settings.from_env({"REELQUEUE_WORKER_TYPE": "gpu", "REELQUEUE_WAN_I2V_MODEL_DIR": "/models/i2v"},
                             process=Process.AI_WORKER).wan_i2v_model_dir == "/models/i2v"


@pytest.mark.parametrize(("process", "environ", "allowed"), [
    (Process.VIDEO_WORKER, {"REELQUEUE_QUEUE": "ai-gpu"}, "allowed: (empty) or video"),
    (Process.AI_WORKER, {"REELQUEUE_QUEUE": "video", **KEY}, "allowed: (empty) or ai-remote"),
    (Process.AI_WORKER, {"REELQUEUE_QUEUE": "ai-remote", "REELQUEUE_WORKER_TYPE": "gpu",
                         "REELQUEUE_WAN_MODEL_DIR": "/models/t2v"}, "allowed: (empty) or ai-gpu"),
])
def test_a_worker_only_consumes_the_queue_of_its_jobs(process, environ, allowed):
    error = refusal(environ, process)
    assert error.problems[0].startswith("REELQUEUE_QUEUE=") and allowed in error.problems[0]


def test_the_api_refuses_a_queue_and_a_database_it_cannot_share_with_workers():
    error = refusal({"REELQUEUE_QUEUE_BACKEND": "memory", "REELQUEUE_DATABASE_URL": "sqlite://"}, Process.API)
    assert [p.split("=")[0] for p in error.problems] == ["REELQUEUE_QUEUE_BACKEND", "REELQUEUE_DATABASE_URL"]
    assert "allowed: sql, sqs" in error.problems[0] and "SQLite file" in error.problems[1]
    assert Settings.from_env({"REELQUEUE_QUEUE_BACKEND": "memory"}).queue_backend == "memory"  # tests


# --- the worker's options and variables, checked together -------------------------------------------


def test_a_worker_checks_its_options_with_its_variables_in_one_pass():
    with pytest.raises(SettingsError) as refused:
        load_settings(JobKind.AI, ["--worker-type", "gpu"], {"REELQUEUE_CONCURRENCY": "zero", **KEY})

    assert [p.split("=")[0].split(" ")[0] for p in refused.value.problems] == [
        "REELQUEUE_CONCURRENCY", "REELQUEUE_WAN_MODEL_DIR"]


def test_a_wrong_option_is_named_as_the_option():
    with pytest.raises(SettingsError) as refused:
        load_settings(JobKind.VIDEO, ["--queue", "ai-gpu"], {"REELQUEUE_QUEUE": "video"})

    assert refused.value.problems == ["--queue='ai-gpu': this worker runs video jobs only; "
                                      "allowed: (empty) or video"]


def test_an_option_can_repair_a_worker_and_the_queue_follows_its_type():
    settings = load_settings(JobKind.AI, ["--worker-type", "remote"],
                             {"REELQUEUE_WORKER_TYPE": "gpu", **KEY})
    assert (settings.worker_type, settings.queue) == ("remote", "ai-remote")


def test_an_unknown_option_value_stops_the_worker_with_status_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        load_settings(JobKind.VIDEO, ["--log-level", "loud"], {})
    assert exit_.value.code == 2 and "--log-level" in capsys.readouterr().err
