"""Bad input at the API edge, sent as an attacker would, over real HTTP to the API under gunicorn.

Properties (hypothesis, a bounded number of examples each): any string in any URL field, any JSON
nesting, any query value, any upload framing -> never a 5xx, and a 4xx names what was wrong (the
field, query parameter or header; a ``detail`` for a body that is not JSON at all). Then the odd
encodings and huge numbers, on every field of every JSON request.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.jobs.files import MAX_UPLOAD_BYTES
from apps.jobs.pagination import MAX_LIMIT, MAX_OFFSET
from apps.jobs.parsers import MAX_JSON_BODY_BYTES, MAX_JSON_DEPTH
from tests.api import harness

EXAMPLES = settings(max_examples=30, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

VIDEO = {"source": "https://media.example.com/in.mp4"}
AI = {"model": "gen4_turbo", "mode": "i2v", "input_image": "https://media.example.com/in.png",
      "duration_s": 5}
T2V = {"model": "gen4.5", "mode": "t2v", "prompt": "a red fox in snow", "duration_s": 5}
# Every JSON request: (path, a valid body, how a field's error is named)
REQUESTS = {
    "video": ("/api/v1/video-jobs", VIDEO, "{}"),
    "ai": ("/api/v1/ai-jobs", AI, "{}"),
    "batch": ("/api/v1/ai-jobs/batch", {"items": [AI]}, "items[0].{}"),
}
URL_FIELDS = [("video", "source"), ("ai", "input_image"), ("batch", "input_image")]
VIDEO_FIELDS = ["source", "preset", "poster_offset_s"]
AI_FIELDS = ["model", "mode", "production_path", "prompt", "input_image", "duration_s", "ratio", "seed",
             "num_frames"]

any_text = st.text(st.characters(exclude_categories=()), max_size=40)  # NUL and lone surrogates too
url_like = st.builds(
    "{}://{}{}{}{}".format,
    st.sampled_from(["https", "http", "HTTPS", "ftp", "", "https:"]),
    st.sampled_from(["", "user@", "u:p@", ":@", "@"]),
    st.one_of(st.sampled_from(["media.example.com", "internal.example.com", "[::1", "::1]", "[::1]",
                               "[v1.x]", "[::ffff:10.0.0.1]", "127.0.0.1", "0x7f.1", "2130706433",
                               "exa\uff03mple.com", "xn--", "", "nowhere.invalid", "[", "]"]), any_text),
    st.sampled_from(["", ":443", ":0", ":99999", ":x", ":-1", ":", ":4430000000000000000"]),
    any_text.map(lambda rest: "/" + rest),
)


@pytest.fixture(autouse=True)
def _database() -> None:
    """Replaces the per-test emptied database: these tests only talk to the live API, as one user
    made for the module, and leave the tables as they found them (see ``token``)."""


@pytest.fixture(scope="module")
def token(live_api: Any, django_db_blocker: Any, api_database_url: str) -> Iterator[str]:
    from django.contrib.auth import get_user_model

    from apps.jobs.tokens import issue_token

    with django_db_blocker.unblock():
        user = get_user_model().objects.create_user(username="edge-prober")
        key = issue_token(user)
    yield str(key)
    with django_db_blocker.unblock():
        user.delete()
    harness.clear_job_tables(api_database_url)


def error_names(response: Any) -> set[str]:
    body = response.json()
    assert isinstance(body, dict) and body, body
    return set(body)


def field_name(kind: str, field: str) -> str:
    return REQUESTS[kind][2].format(field)


def with_field(kind: str, field: str, value: Any) -> dict[str, Any]:
    path, body, _ = REQUESTS[kind]
    if kind == "batch":
        return {"items": [{**body["items"][0], field: value}]}
    return {**body, field: value}


def post_json(live_api: Any, token: str, path: str, body: Any) -> Any:
    return live_api.call("POST", path, token=token, data=json.dumps(body),
                         headers={"Content-Type": "application/json"})


# --- URL fields ----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["https://[::1/x", "https://media.example.com:99999/x",
                                 "https://exa\uff03mple.com/x", "https://media.example.com/a b"])
def test_a_url_urllib_cannot_read_is_a_field_error_in_every_url_field(live_api, token, url):
    for kind, field in URL_FIELDS:
        response = post_json(live_api, token, REQUESTS[kind][0], with_field(kind, field, url))

        assert response.status_code == 400, (url, response.text)
        assert error_names(response) == {field_name(kind, field)}, response.text


@pytest.mark.parametrize(("kind", "field"), URL_FIELDS)
def test_any_string_in_a_url_field_is_accepted_or_a_field_error(live_api, token, kind, field):
    @EXAMPLES
    @given(value=st.one_of(url_like, any_text))
    def check(value: str) -> None:
        response = post_json(live_api, token, REQUESTS[kind][0], with_field(kind, field, value))

        assert response.status_code in (202, 400), (value, response.status_code, response.text)
        if response.status_code == 400:  # DRF names a batch item's field inside "items"
            assert error_names(response) <= {field_name(kind, field), "items"}, (value, response.text)

    check()


# --- JSON bodies ---------------------------------------------------------------------------------


def nested(depth: int, shape: str) -> str:
    return ("[" * depth + "1" + "]" * depth) if shape == "list" else ('{"a":' * depth + "1" + "}" * depth)


def test_a_deeply_nested_body_is_a_clear_400(live_api, token):
    at_limit = live_api.call("POST", "/api/v1/ai-jobs", token=token, data=nested(MAX_JSON_DEPTH, "list"),
                             headers={"Content-Type": "application/json"})
    assert at_limit.json() == {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}
    for depth in (MAX_JSON_DEPTH + 1, 10_000, 1_000_000):
        response = live_api.call("POST", "/api/v1/ai-jobs", token=token, data="[" * depth + "]" * depth,
                                 headers={"Content-Type": "application/json"})

        assert response.status_code == 400
        assert f"nested deeper than {MAX_JSON_DEPTH} levels" in response.json()["detail"]


def test_a_body_over_the_limit_is_refused_unread(live_api, token):
    padding = "x" * MAX_JSON_BODY_BYTES
    response = post_json(live_api, token, "/api/v1/ai-jobs", {**T2V, "ratio": padding})

    assert response.status_code == 413 and str(MAX_JSON_BODY_BYTES) in response.json()["detail"]


@pytest.mark.parametrize("kind", list(REQUESTS))
def test_any_nesting_anywhere_is_a_4xx_naming_the_field(live_api, token, kind):
    fields = VIDEO_FIELDS if kind == "video" else AI_FIELDS

    @EXAMPLES
    @given(depth=st.integers(0, 3 * MAX_JSON_DEPTH), shape=st.sampled_from(["list", "object"]),
           field=st.sampled_from([None, *fields]))
    def check(depth: int, shape: str, field: str | None) -> None:
        value = nested(depth, shape)
        if field is None:
            text = value
        else:
            body = with_field(kind, field, "__VALUE__")
            text = json.dumps(body).replace('"__VALUE__"', value)
        response = live_api.call("POST", REQUESTS[kind][0], token=token, data=text.encode(),
                                 headers={"Content-Type": "application/json"})

        assert 400 <= response.status_code < 500 or (response.status_code == 202 and depth == 0), text[:80]
        if response.status_code >= 400:
            names = error_names(response)
            if field is not None:
                assert names <= {field_name(kind, field), field, "items"}, response.text

    check()


# --- query parameters ----------------------------------------------------------------------------


def test_an_out_of_range_or_non_integer_limit_is_a_400_never_a_default(live_api, token):
    for value in ("-5", "0", str(MAX_LIMIT + 1), str(10**30), "1e9", "5.5", "", "ten", "nan"):
        response = live_api.call("GET", "/api/v1/jobs", token=token, params={"limit": value})

        assert response.status_code == 400, (value, response.text)
        assert error_names(response) == {"limit"}


def test_the_limit_and_offset_bounds_themselves_are_accepted(live_api, token):
    for params in ({"limit": "1"}, {"limit": str(MAX_LIMIT)}, {"offset": "0"}, {"offset": str(MAX_OFFSET)}):
        assert live_api.call("GET", "/api/v1/jobs", token=token, params=params).status_code == 200, params
    assert error_names(live_api.call("GET", "/api/v1/jobs", token=token,
                                     params={"offset": str(MAX_OFFSET + 1)})) == {"offset"}


QUERY_NAMES = ["limit", "offset", "status", "kind", "provider", "model", "production_path", "batch"]
query_value = st.one_of(st.sampled_from(["-5", "0", "201", "1000001", str(2**63), str(10**30), "1e9", "",
                                         "NaN", " 5", "5\x00", "0x10"]),
                        st.text(st.characters(codec="utf-8"), max_size=30),
                        st.integers(-(2**100), 2**100).map(str),
                        st.floats(allow_nan=True, allow_infinity=True).map(repr))


@EXAMPLES
@given(params=st.dictionaries(st.sampled_from(QUERY_NAMES), query_value, min_size=1, max_size=3))
def test_any_query_value_is_answered_or_a_400_naming_the_parameter(live_api, token, params):
    response = live_api.call("GET", "/api/v1/jobs", token=token, params=params)

    assert response.status_code in (200, 400), (params, response.text)
    if response.status_code == 400:
        assert error_names(response) <= set(params), (params, response.text)


# --- uploads (signed PUT URLs of local storage) --------------------------------------------------


def upload_request(live_api: Any, token: str, headers: dict[str, str]) -> tuple[str, bytes]:
    upload = live_api.call("POST", "/api/v1/uploads", token=token, json={"content_type": "image/png"}).json()
    parts = urlsplit(upload["url"])
    lines = [f"PUT {parts.path}?{parts.query} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: image/png",
             "Connection: close", *(f"{name}: {value}" for name, value in headers.items())]
    return upload["key"], ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunked(body: bytes) -> bytes:
    pieces = [body[i:i + 7] for i in range(0, len(body), 7)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def test_a_chunked_put_is_refused_with_411_and_nothing_is_stored(live_api, token):
    key, request = upload_request(live_api, token, {"Transfer-Encoding": "chunked"})

    answer = live_api.raw(request, body=chunked(b"\x89PNG image data"))

    assert answer.status == 411 and b"Content-Length" in answer.body
    assert live_api.stored(key) is None


def test_a_body_shorter_than_its_content_length_is_never_stored(live_api, token):
    key, request = upload_request(live_api, token, {"Content-Length": "1000"})

    answer = live_api.raw(request, body=b"\x89PNG only part of it")

    assert answer.status == 400 and b"nothing was stored" in answer.body
    assert live_api.stored(key) is None


def test_an_upload_announced_too_large_is_refused_with_413_unread(live_api, token):
    key, request = upload_request(live_api, token, {"Content-Length": str(MAX_UPLOAD_BYTES + 1)})

    answer = live_api.raw(request, body=b"\x89PNG")

    assert answer.status == 413 and live_api.stored(key) is None


FRAMINGS = ["exact", "short", "chunked", "no-length", "too-big", "zero", "garbage-length",
            "length-and-chunked"]


@EXAMPLES
@given(framing=st.sampled_from(FRAMINGS), body=st.binary(min_size=1, max_size=2048),
       missing=st.integers(1, 4096), garbage=st.sampled_from(["abc", "-1", "1e3", "+5", "0x10", "5, 5"]))
def test_any_upload_framing_is_stored_whole_or_refused(live_api, token, framing, body, missing, garbage):
    headers, sent = {
        "exact": ({"Content-Length": str(len(body))}, body),
        "short": ({"Content-Length": str(len(body) + missing)}, body),
        "chunked": ({"Transfer-Encoding": "chunked"}, chunked(body)),
        "no-length": ({}, body),
        "too-big": ({"Content-Length": str(MAX_UPLOAD_BYTES + missing)}, body),
        "zero": ({"Content-Length": "0"}, b""),
        "garbage-length": ({"Content-Length": garbage}, body),
        "length-and-chunked": ({"Content-Length": str(len(body)), "Transfer-Encoding": "chunked"},
                               chunked(body)),
    }[framing]
    key, request = upload_request(live_api, token, headers)

    answer = live_api.raw(request, body=sent)

    assert answer.status < 500, (framing, answer)
    if framing == "exact":
        assert answer.status == 201 and live_api.stored(key) == body
        return
    assert 400 <= answer.status < 500 and live_api.stored(key) is None, (framing, answer)
    if answer.headers.get("Content-Type") == "application/json":  # the API's answer, not gunicorn's
        assert set(json.loads(answer.body)) <= {"Content-Length", "Content-Type"}


# --- odd encodings and huge numbers ----------------------------------------------------------------


def post_raw(live_api: Any, token: str, path: str, data: bytes, content_type: str) -> Any:
    return live_api.call("POST", path, token=token, data=data, headers={"Content-Type": content_type})


def test_a_utf8_charset_is_accepted_and_any_other_is_a_clear_400(live_api, token):
    body = json.dumps(T2V).encode()
    for charset in ("utf-8", "UTF-8", '"utf-8"', "utf8"):
        response = post_raw(live_api, token, "/api/v1/ai-jobs", body, f"application/json; charset={charset}")
        assert response.status_code == 202, (charset, response.text)
    for charset in ("latin-1", "bogus", "utf-16", ""):
        response = post_raw(live_api, token, "/api/v1/ai-jobs", body, f"application/json; charset={charset}")
        assert response.status_code == 400 and "UTF-8" in response.json()["detail"], charset


def test_a_body_that_is_not_utf8_json_is_a_clear_400(live_api, token):
    text = json.dumps(T2V).replace("fox", "f\xf6x")
    for data in (text.encode("latin-1"), text.encode("utf-16"), b"\xef\xbb\xbf" + text.encode(),
                 b"\xff\xfe\xfd", b'{"model": "gen4.5", "prompt": "\xc3"}', text.encode()[:-1]):
        response = post_raw(live_api, token, "/api/v1/ai-jobs", data, "application/json")

        assert response.status_code == 400 and response.json()["detail"], data


def test_a_body_that_is_not_json_at_all_is_a_415(live_api, token):
    response = post_raw(live_api, token, "/api/v1/ai-jobs", b"model=gen4.5&mode=t2v",
                        "application/x-www-form-urlencoded")

    assert response.status_code == 415


ODD_LITERALS = ('"a\\u0000b"', '"\\ud800"', '"x\\udfff"', "1e400", "-1e400", "NaN", "Infinity", str(2**80),
                "9" * 5000)  # NUL, escaped lone surrogates, numbers out of every range: raw JSON literals


@pytest.mark.parametrize("kind", list(REQUESTS))
def test_odd_strings_and_huge_numbers_in_any_field_are_field_errors(live_api, token, kind):
    fields = VIDEO_FIELDS if kind == "video" else AI_FIELDS
    for field, literal in ((f, v) for f in fields for v in ODD_LITERALS):
        text = json.dumps(with_field(kind, field, "__VALUE__")).replace('"__VALUE__"', literal)
        response = post_raw(live_api, token, REQUESTS[kind][0], text.encode(), "application/json")

        assert response.status_code == 400, (field, literal, response.text)
        assert error_names(response) <= {field_name(kind, field), "items"}, (field, literal, response.text)
