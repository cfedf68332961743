"""One contract for storage, run against the fake, a local directory and S3 (moto's server)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests

from src.application.ports import Storage
from src.domain.errors import PermanentError, ReelqueueError
from src.infrastructure.memory import FakeClock, InMemoryStorage
from src.infrastructure.storage.local import LocalStorage

BAD_KEYS = ["../outside", "a/../../outside", "/etc/passwd", "", "https://example.com/x", ".secret"]
PUBLIC_BASE_URL = "http://testserver"
FILES_PATH = "/api/v1/files/"


@dataclass
class StorageRig:
    storage: Storage
    fetch: Callable[[str], bytes]  # GET a presigned URL
    put: Callable[[str, bytes, str], None]  # PUT bytes to a presigned URL


def memory_rig() -> StorageRig:
    storage = InMemoryStorage()

    def key_of(url: str) -> str:
        return urlsplit(url).netloc + urlsplit(url).path

    return StorageRig(
        storage=storage,
        fetch=lambda url: storage.objects[key_of(url)][0],
        put=lambda url, data, content_type: storage.put_bytes(key_of(url), data, content_type),
    )


def local_rig(root: Path, clock: FakeClock | None = None) -> StorageRig:
    """What the API's file view will do: check the signature, then read or write the file."""
    storage = LocalStorage(root, public_base_url=PUBLIC_BASE_URL, files_path=FILES_PATH, clock=clock)

    def signed(url: str, method: str) -> Path:
        parts = urlsplit(url)
        key = unquote(parts.path.removeprefix(FILES_PATH))
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        now = (clock or storage.clock).now()
        assert storage.verify(key, query["expires"], query["signature"], now, method=method)
        return storage.path(key)

    def put(url: str, data: bytes, content_type: str) -> None:
        path = signed(url, "PUT")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    return StorageRig(storage=storage, fetch=lambda url: signed(url, "GET").read_bytes(), put=put)


def s3_rig(client: Any) -> StorageRig:
    from src.infrastructure.storage.s3 import S3Storage

    storage = S3Storage(client, bucket="reelqueue-contract")
    storage.ensure_bucket()

    def fetch(url: str) -> bytes:
        response = requests.get(url, timeout=10)
        response.raise_for_status()
        return response.content

    def put(url: str, data: bytes, content_type: str) -> None:
        requests.put(url, data=data, headers={"Content-Type": content_type}, timeout=10).raise_for_status()

    return StorageRig(storage=storage, fetch=fetch, put=put)


@pytest.fixture(params=["memory", "local", "s3"])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> StorageRig:
    if request.param == "memory":
        return memory_rig()
    if request.param == "local":
        return local_rig(tmp_path / "storage")
    return s3_rig(request.getfixturevalue("s3_client"))


@pytest.fixture
def key() -> str:
    return f"outputs/{uuid.uuid4().hex}/video.mp4"


@pytest.fixture
def video_file(tmp_path: Path) -> Path:
    path = tmp_path / "video.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    return path


def test_an_uploaded_file_downloads_with_the_same_bytes(
    rig: StorageRig, key: str, video_file: Path, tmp_path: Path
) -> None:
    size = rig.storage.upload(key, video_file, content_type="video/mp4")
    copy = tmp_path / "copy.mp4"

    assert rig.storage.download(key, copy) == size == video_file.stat().st_size
    assert copy.read_bytes() == video_file.read_bytes()


def test_exists_tells_stored_keys_from_missing_ones(rig: StorageRig, key: str, video_file: Path) -> None:
    rig.storage.upload(key, video_file, content_type="video/mp4")

    assert rig.storage.exists(key)
    assert not rig.storage.exists(key + ".missing")


def test_downloading_a_missing_key_is_a_permanent_error(rig: StorageRig, key: str, tmp_path: Path) -> None:
    with pytest.raises(PermanentError):
        rig.storage.download(key, tmp_path / "nothing.mp4")


def test_a_presigned_get_url_serves_the_bytes(rig: StorageRig, key: str, video_file: Path) -> None:
    rig.storage.upload(key, video_file, content_type="video/mp4")

    url = rig.storage.presigned_get(key, expires_s=60)

    assert rig.fetch(url) == video_file.read_bytes()


def test_bytes_put_to_a_presigned_put_url_can_be_downloaded(
    rig: StorageRig, key: str, tmp_path: Path
) -> None:
    url = rig.storage.presigned_put(key, content_type="image/png", expires_s=60)
    rig.put(url, b"\x89PNG poster", "image/png")
    copy = tmp_path / "poster.png"

    assert rig.storage.exists(key)
    assert rig.storage.download(key, copy) == len(b"\x89PNG poster")
    assert copy.read_bytes() == b"\x89PNG poster"


@pytest.mark.parametrize("bad_key", BAD_KEYS)
def test_keys_that_could_escape_are_refused(
    rig: StorageRig, bad_key: str, video_file: Path, tmp_path: Path
) -> None:
    with pytest.raises(ReelqueueError):
        rig.storage.upload(bad_key, video_file, content_type="video/mp4")
    with pytest.raises(ReelqueueError):
        rig.storage.download(bad_key, tmp_path / "out")
    with pytest.raises(ReelqueueError):
        rig.storage.presigned_get(bad_key, expires_s=60)
    with pytest.raises(ReelqueueError):
        rig.storage.presigned_put(bad_key, content_type="video/mp4", expires_s=60)


# --- what only one adapter can show --------------------------------------------------------------


def test_s3_keeps_the_content_type_of_an_upload(s3_client: Any, key: str, video_file: Path) -> None:
    storage = s3_rig(s3_client).storage
    storage.upload(key, video_file, content_type="video/mp4")

    head = s3_client.head_object(Bucket="reelqueue-contract", Key=key)

    assert head["ContentType"] == "video/mp4"


def test_local_storage_refuses_a_symlink_that_leads_outside_its_root(
    tmp_path: Path, video_file: Path
) -> None:
    root, outside = tmp_path / "storage", tmp_path / "outside"
    outside.mkdir()
    storage = LocalStorage(root, public_base_url=PUBLIC_BASE_URL, files_path=FILES_PATH)
    (root / "linked").symlink_to(outside, target_is_directory=True)

    with pytest.raises(ReelqueueError, match="outside the storage root"):
        storage.upload("linked/escape.mp4", video_file, content_type="video/mp4")
    assert not (outside / "escape.mp4").exists()


def test_local_signed_urls_point_where_the_api_serves_files(tmp_path: Path) -> None:
    clock = FakeClock()
    storage = LocalStorage(tmp_path / "storage", public_base_url="https://jobs.example.com/",
                           files_path="video-api/files", clock=clock)

    url = urlsplit(storage.presigned_get("outputs/a.mp4", expires_s=60))
    query = {name: values[0] for name, values in parse_qs(url.query).items()}

    assert (url.scheme, url.netloc) == ("https", "jobs.example.com")
    assert url.path == "/video-api/files/outputs/a.mp4"
    assert storage.verify("outputs/a.mp4", query["expires"], query["signature"], clock.now())


def test_local_signed_urls_expire_and_cannot_be_reused_for_other_keys_or_methods(tmp_path: Path) -> None:
    clock = FakeClock()
    storage = LocalStorage(tmp_path / "storage", public_base_url=PUBLIC_BASE_URL, files_path=FILES_PATH,
                           clock=clock)
    url = storage.presigned_get("outputs/a.mp4", expires_s=60)
    query = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
    expires, signature = query["expires"], query["signature"]

    assert url.startswith(f"{PUBLIC_BASE_URL}/api/v1/files/outputs/a.mp4?expires=")
    assert storage.verify("outputs/a.mp4", expires, signature, clock.now())
    assert not storage.verify("outputs/a.mp4", expires, signature, clock.now() + timedelta(seconds=61))
    assert not storage.verify("outputs/b.mp4", expires, signature, clock.now())
    assert not storage.verify("outputs/a.mp4", expires, signature, clock.now(), method="PUT")
    assert not storage.verify("outputs/a.mp4", str(int(expires) + 3600), signature, clock.now())


def test_local_storage_creates_its_signing_secret_once_per_root(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    first = LocalStorage(root, public_base_url=PUBLIC_BASE_URL, files_path=FILES_PATH, clock=FakeClock())
    second = LocalStorage(root, public_base_url=PUBLIC_BASE_URL, files_path=FILES_PATH, clock=FakeClock())
    other = LocalStorage(tmp_path / "other", public_base_url=PUBLIC_BASE_URL, files_path=FILES_PATH,
                         clock=FakeClock())

    url = first.presigned_get("a.mp4", expires_s=60)

    assert second.presigned_get("a.mp4", expires_s=60) == url
    assert other.presigned_get("a.mp4", expires_s=60) != url
    assert (root / ".secret").stat().st_mode & 0o077 == 0
