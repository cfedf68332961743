from __future__ import annotations

from pathlib import Path
from typing import Protocol


class Storage(Protocol):
    def upload(self, key: str, path: Path, *, content_type: str) -> int:
        """Store the file at ``key``; returns its size in bytes."""
        ...

    def download(self, key: str, dest: Path) -> int:
        """Copy the object at ``key`` to ``dest``; returns its size in bytes."""
        ...

    def exists(self, key: str) -> bool:
        ...

    def presigned_get(self, key: str, *, expires_s: int) -> str:
        ...

    def presigned_put(self, key: str, *, content_type: str, expires_s: int) -> str:
        ...
