from __future__ import annotations

import threading
from pathlib import Path

from src.domain.errors import PermanentError, ReelqueueError
from src.domain.sources import check_source


class InMemoryStorage:
    """Objects kept in a dict; presigned URLs are fake but carry key and expiry."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}
        self._mutex = threading.Lock()

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self._check(key)
        with self._mutex:
            self.objects[key] = (data, content_type)

    def upload(self, key: str, path: Path, *, content_type: str) -> int:
        data = Path(path).read_bytes()
        self.put_bytes(key, data, content_type)
        return len(data)

    def download(self, key: str, dest: Path) -> int:
        self._check(key)
        with self._mutex:
            if key not in self.objects:
                raise PermanentError(f"{key!r} is not in storage")
            data = self.objects[key][0]
        Path(dest).write_bytes(data)
        return len(data)

    def exists(self, key: str) -> bool:
        return key in self.objects

    def presigned_get(self, key: str, *, expires_s: int) -> str:
        self._check(key)
        return f"memory://{key}?expires={expires_s}"

    def presigned_put(self, key: str, *, content_type: str, expires_s: int) -> str:
        self._check(key)
        return f"memory://{key}?method=PUT&expires={expires_s}"

    @staticmethod
    def _check(key: str) -> None:
        try:
            check_source("key", key)
        except ReelqueueError as exc:
            raise ReelqueueError(f"invalid storage key {key!r}") from exc
        if "://" in key:
            raise ReelqueueError(f"invalid storage key {key!r}")
