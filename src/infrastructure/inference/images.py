"""Input images for local image-to-video: from our storage by key, or from an https URL."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from src.application.ports import Storage
from src.domain.errors import PermanentError
from src.domain.sources import is_url
from src.infrastructure.inference.http import OutputDownloader

if TYPE_CHECKING:
    from PIL.Image import Image

MAX_IMAGE_BYTES = 50 * 1024 * 1024


class StorageImageFetcher:
    """``fetch(source)`` -> an RGB PIL image; a storage key or an https URL (never plain http)."""

    def __init__(self, storage: Storage, *, timeout_s: float = 30.0) -> None:
        self.storage = storage
        self.downloader = OutputDownloader(provider="input image", trusted_base_url="",
                                           timeout_s=timeout_s, max_bytes=MAX_IMAGE_BYTES)

    def __call__(self, source: str) -> Image:
        with tempfile.TemporaryDirectory(prefix="reelqueue-image-") as tmp:
            path = Path(tmp) / "image"
            if is_url(source):
                self.downloader.download(source, path)
            else:
                self.storage.download(source, path)
            return _decode(path, source)


def _decode(path: Path, source: str) -> Image:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise PermanentError(f"input image {source!r} is not a readable image") from exc
