"""Choosing the promptImage Runway can use: a URL as it is, a data URI, or an upload."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from src.domain.errors import PermanentError, TransientError
from src.infrastructure.inference.runway_inputs import (
    DATA_URI_MAX_CHARS,
    UPLOAD_MAX_BYTES,
    URL_IMAGE_MAX_BYTES,
    PromptImages,
    image_type,
    unfit_for_runway,
)
from src.infrastructure.media.fetcher import Probe
from src.infrastructure.memory import InMemoryStorage

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32
WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 32
URL = "https://cdn.example/look.png"


def fit(**headers: str) -> Probe:
    return Probe(status=200, headers={"content-type": "image/png", "content-length": "40", **headers})


class Web:
    """What the guarded fetcher would see and download, per URL."""

    def __init__(self, probe: Probe | Exception, body: bytes = PNG) -> None:
        self.answer, self.body = probe, body
        self.downloads: list[str] = []

    def probe(self, url: str) -> Probe:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def fetch(self, url: str, dest: Path, *, max_bytes: int) -> int:
        self.downloads.append(url)
        Path(dest).write_bytes(self.body)
        return len(self.body)


class Uploads:
    def __init__(self) -> None:
        self.files: list[tuple[str, bytes, str]] = []

    def __call__(self, filename: str, data: bytes, content_type: str) -> str:
        self.files.append((filename, data, content_type))
        return f"runway://ephemeral/{len(self.files)}/{filename}"


def images(web: Web | None = None, storage: InMemoryStorage | None = None,
           uploads: Uploads | None = None) -> PromptImages:
    return PromptImages(storage=storage or InMemoryStorage(), fetcher=web or Web(fit()),
                        upload=uploads or Uploads())


def inline(data: bytes, kind: str = "image/png") -> str:
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


@pytest.mark.parametrize(("data", "kind"), [(PNG, "image/png"), (JPEG, "image/jpeg"), (WEBP, "image/webp"),
                                            (b"GIF89a" + b"\x00" * 10, None), (b"", None)])
def test_only_the_image_types_runway_takes_are_recognised(data, kind):
    assert image_type(data) == kind


def test_a_url_runway_can_fetch_goes_as_it_is_without_a_download():
    web = Web(fit())

    assert images(web).prompt_image(URL) == URL
    assert web.downloads == []


@pytest.mark.parametrize(("url", "probe", "reason"), [
    (URL, Probe(status=403, headers={}), "HEAD answered 403"),
    (URL, Probe(status=302, headers={"location": URL}), "HEAD answered 302"),
    (URL, fit(**{"content-type": "application/octet-stream"}), "application/octet-stream"),
    (URL, Probe(status=200, headers={"content-length": "40"}), "Content-Type missing"),
    (URL, Probe(status=200, headers={"content-type": "image/png"}), "no Content-Length"),
    (URL, fit(**{"content-length": str(URL_IMAGE_MAX_BYTES + 1)}), "over"),
    (URL + "?" + "x" * 2048, fit(), "longer than 2048"),
    (URL.replace("https", "http"), fit(), "not https"),
])
def test_what_runway_would_refuse_is_named(url, probe, reason):
    assert reason in (unfit_for_runway(url, probe) or "")


def test_a_content_type_with_parameters_is_still_an_image():
    assert unfit_for_runway(URL, fit(**{"content-type": "image/jpeg; charset=binary"})) is None


@pytest.mark.parametrize("answer", [Probe(status=403, headers={}), TransientError("connection reset")])
def test_a_url_runway_could_not_fetch_is_downloaded_and_sent_inline(answer):
    web = Web(answer, body=JPEG)

    assert images(web).prompt_image(URL) == inline(JPEG, "image/jpeg")
    assert web.downloads == [URL]


def test_a_stored_image_goes_inline_while_the_data_uri_is_under_the_limit():
    storage = InMemoryStorage()
    storage.put_bytes("in/a.png", PNG)

    assert images(storage=storage).prompt_image("in/a.png") == inline(PNG)


def test_an_image_whose_data_uri_would_reach_the_limit_is_uploaded():
    most_bytes_inline = 3 * ((DATA_URI_MAX_CHARS - 1 - len("data:image/png;base64,")) // 4)
    just_inline = PNG + b"\x00" * (most_bytes_inline - len(PNG))
    too_big = just_inline + b"\x00"
    uploads = Uploads()
    chooser = images(uploads=uploads)

    assert chooser.inline_or_upload(just_inline).startswith("data:image/png;base64,")
    assert chooser.inline_or_upload(too_big) == "runway://ephemeral/1/input.png"
    assert uploads.files == [("input.png", too_big, "image/png")]


def test_an_image_over_the_upload_limit_is_refused():
    huge = PNG + b"\x00" * (UPLOAD_MAX_BYTES + 1 - len(PNG))

    with pytest.raises(PermanentError, match="limit"):
        images().inline_or_upload(huge)


@pytest.mark.parametrize("data", [b"<html>", b"GIF89a....", b""])
def test_anything_but_jpeg_png_or_webp_is_refused_before_runway_sees_it(data):
    with pytest.raises(PermanentError, match="JPEG, PNG or WebP"):
        images().inline_or_upload(data)


def test_a_missing_stored_image_is_permanent():
    with pytest.raises(PermanentError, match="not in storage"):
        images().prompt_image("in/gone.png")
