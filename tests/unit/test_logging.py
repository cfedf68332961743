"""Worker logs (JSON, redacted), metrics and the health probe."""

from __future__ import annotations

import json
import logging
import sys
import urllib.error
import urllib.request

import pytest

from src.config import Settings
from src.infrastructure.observability.health import Health, MetricsServer, metrics_app
from src.infrastructure.observability.logs import (
    REDACTED,
    JsonFormatter,
    Redactor,
    TextFormatter,
    secrets_of,
)
from src.infrastructure.observability.metrics import WorkerMetrics

SETTINGS = Settings(runway_api_key="key_runway_0123456789", luma_api_key="luma-secret-abcdef")


def record(message: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise RuntimeError(f"boom with {SETTINGS.luma_api_key}")
        except RuntimeError:
            exc_info = sys.exc_info()
    rec = logging.LogRecord("src.test", logging.WARNING, __file__, 1, message, args, exc_info)
    rec.__dict__.update(extra)
    return rec


def json_line(rec: logging.LogRecord) -> dict[str, object]:
    line = JsonFormatter(Redactor(secrets_of(SETTINGS))).format(rec)
    assert "\n" not in line
    return json.loads(line)


def test_a_json_line_carries_the_job_fields_given_as_extra():
    entry = json_line(record("job handled: %s", "ack", job_id="j1", kind="ai", provider="runway",
                             production_path="cinema", attempt=2, duration_ms=1234))
    assert entry["message"] == "job handled: ack" and entry["level"] == "WARNING"
    fields = ("job_id", "kind", "provider", "production_path", "attempt", "duration_ms")
    assert {k: entry[k] for k in fields} == {"job_id": "j1", "kind": "ai", "provider": "runway",
                                             "production_path": "cinema", "attempt": 2, "duration_ms": 1234}


def test_api_keys_from_the_settings_never_reach_the_log():
    entry = json_line(record("calling with %s", SETTINGS.runway_api_key, exc=True,
                             header=SETTINGS.luma_api_key))
    text = json.dumps(entry)
    assert SETTINGS.runway_api_key not in text and SETTINGS.luma_api_key not in text
    assert entry["message"] == f"calling with {REDACTED}" and entry["header"] == REDACTED
    assert "RuntimeError: boom with [REDACTED]" in entry["exc"]


@pytest.mark.parametrize("raw, expected", [
    ("headers={'Authorization': 'Bearer abc.def'}", "headers={'Authorization': 'Bearer [REDACTED]'}"),
    ("Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic [REDACTED]"),
    ('{"authorization": "tok123"}', '{"authorization": "[REDACTED]"}'),
    ("GET https://b.s3.amazonaws.com/k.mp4?X-Amz-Algorithm=AWS4&X-Amz-Signature=deadbeef&X-Amz-Expires=900",
     "GET https://b.s3.amazonaws.com/k.mp4?X-Amz-Algorithm=AWS4&X-Amz-Signature=[REDACTED]&X-Amz-Expires=900"),
    ("https://cdn.example/v.mp4?Expires=1&Signature=abc~def", "https://cdn.example/v.mp4?Expires=1&Signature=[REDACTED]"),
    ("https://x/?X-Amz-Security-Token=FQo123", "https://x/?X-Amz-Security-Token=[REDACTED]"),
    ("a plain line about job j1", "a plain line about job j1"),
])
def test_authorization_headers_and_presigned_signatures_are_redacted(raw, expected):
    assert Redactor()(raw) == expected


def test_the_text_format_is_redacted_too_and_shows_the_job_fields():
    formatter = TextFormatter(Redactor(secrets_of(SETTINGS)))
    line = formatter.format(record("key %s", SETTINGS.runway_api_key, job_id="j1"))
    assert SETTINGS.runway_api_key not in line and line.endswith("key [REDACTED] [job_id=j1]")


def test_metrics_and_healthz_are_served_on_the_metrics_port():
    metrics = WorkerMetrics()
    metrics.started.labels("ai", "runway", "cinema").inc()
    now = [0.0]
    health = Health(max_silence_s=60, monotonic=lambda: now[0])
    server = MetricsServer(metrics_app(metrics.registry, health), port=0, host="127.0.0.1").start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        body = urllib.request.urlopen(f"{base}/metrics", timeout=5).read().decode()
        sample = 'reelqueue_jobs_started_total{kind="ai",production_path="cinema",provider="runway"} 1.0'
        assert sample in body
        assert urllib.request.urlopen(f"{base}/healthz", timeout=5).status == 200
        now[0] = 61.0  # the loop stopped turning
        with pytest.raises(urllib.error.HTTPError) as stuck:
            urllib.request.urlopen(f"{base}/healthz", timeout=5)
        assert stuck.value.code == 503
    finally:
        server.close()


def test_the_health_file_is_touched_on_every_beat(tmp_path):
    path = tmp_path / "probe" / "healthy"
    Health(path=str(path)).beat()
    assert path.exists()
