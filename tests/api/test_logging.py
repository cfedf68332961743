"""Secrets never reach the API's logs: gunicorn's access lines and Django's own records."""

import logging
from datetime import timedelta
from types import SimpleNamespace

from gunicorn.config import Config

from apps.reelqueue_api.logging import RedactingGunicornLogger, formatter

JOB = "0123456789abcdef0123456789abcdef"


def access_atoms(uri: str) -> dict:
    path, _, query = uri.partition("?")
    environ = {"REQUEST_METHOD": "POST", "RAW_URI": uri, "PATH_INFO": path, "QUERY_STRING": query,
               "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1"}
    resp = SimpleNamespace(status="200 OK", response_length=2, sent=2, headers=[])
    req = SimpleNamespace(headers=[], method="POST", uri=uri, path=path, query=query)
    return RedactingGunicornLogger(Config()).atoms(resp, req, environ, timedelta(milliseconds=5))


def test_an_access_line_for_a_luma_callback_hides_the_per_job_token():
    atoms = access_atoms(f"/api/v1/webhooks/luma/{JOB}/s3cret-callback-token")
    assert "s3cret-callback-token" not in " ".join(str(v) for v in atoms.values())
    assert JOB in atoms["r"]


def test_an_access_line_for_a_signed_file_url_hides_the_signature():
    atoms = access_atoms("/api/v1/files/outputs/x/video.mp4?expires=99&signature=abcdef123456")
    assert "abcdef123456" not in " ".join(str(v) for v in atoms.values())


def test_djangos_records_go_through_the_redacting_formatter(settings):
    path = f"/api/v1/webhooks/luma/{JOB}/tok3n-value"
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1,
                               "Internal Server Error: %s", (path,), None)
    line = formatter().format(record)
    assert "tok3n-value" not in line and JOB in line
