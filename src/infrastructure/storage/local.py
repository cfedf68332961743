"""Files in a local directory (embedded default), with HMAC-signed URLs served by the API."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from urllib.parse import quote, urlencode

from src.application.ports import Clock
from src.domain.errors import PermanentError
from src.infrastructure.clock import SystemClock
from src.infrastructure.storage.keys import InvalidStorageKey, check_expiry, check_key

SECRET_FILE = ".secret"  # not a valid key (keys start with a letter or digit), so never served


class LocalStorage:
    """``files_path``: where the API serves the files (``/api/v1/files/`` for reelqueue's API);
    a signed URL is ``public_base_url + files_path + key + ?expires=...&signature=...``."""

    def __init__(
        self, root: Path, *, public_base_url: str, files_path: str, secret: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.public_base_url = public_base_url.rstrip("/")
        self.files_path = "/" + files_path.strip("/") + "/"
        self.clock = clock or SystemClock()
        self._secret = (secret or _root_secret(self.root)).encode()

    def path(self, key: str) -> Path:
        """The file behind ``key``; refuses keys that leave the root (``..``, absolute, symlinks)."""
        check_key(key)
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise InvalidStorageKey(f"invalid storage key {key!r}: it leads outside the storage root")
        return path

    def upload(self, key: str, path: Path, *, content_type: str) -> int:
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=dest.parent, prefix=".upload-", delete=False) as tmp:
            try:
                with open(path, "rb") as source:
                    shutil.copyfileobj(source, tmp)
            except BaseException:
                os.unlink(tmp.name)
                raise
        os.replace(tmp.name, dest)  # readers see the whole file or none
        return dest.stat().st_size

    def download(self, key: str, dest: Path) -> int:
        source = self.path(key)
        if not source.is_file():
            raise PermanentError(f"{key!r} is not in storage")
        shutil.copyfile(source, dest)
        return Path(dest).stat().st_size

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def presigned_get(self, key: str, *, expires_s: int) -> str:
        return self._sign_url(key, "GET", expires_s)

    def presigned_put(self, key: str, *, content_type: str, expires_s: int) -> str:
        return self._sign_url(key, "PUT", expires_s)

    def verify(
        self, key: str, expires: int | str, signature: str, now: datetime, *, method: str = "GET"
    ) -> bool:
        """Whether a signed URL's ``expires`` and ``signature`` allow ``method`` on ``key`` at ``now``."""
        try:
            expires_at = int(expires)
            self.path(key)
        except (TypeError, ValueError, InvalidStorageKey):
            return False
        if not isinstance(signature, str) or not signature.isascii() or now.timestamp() > expires_at:
            return False
        return hmac.compare_digest(self._signature(key, method, expires_at), signature)

    def _sign_url(self, key: str, method: str, expires_s: int) -> str:
        self.path(key)
        check_expiry(expires_s)
        expires_at = int(self.clock.now().timestamp()) + expires_s
        query = {"expires": expires_at, "signature": self._signature(key, method, expires_at)}
        if method != "GET":
            query["method"] = method
        return f"{self.public_base_url}{self.files_path}{quote(key)}?{urlencode(query)}"

    def _signature(self, key: str, method: str, expires_at: int) -> str:
        message = f"{method.upper()}\n{key}\n{expires_at}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()


def _root_secret(root: Path) -> str:
    """The root's signing secret, created once: written aside, then linked into place atomically."""
    path = root / SECRET_FILE
    if not path.exists():
        with tempfile.NamedTemporaryFile("w", dir=root, prefix=".secret-", delete=False) as tmp:
            tmp.write(secrets.token_hex(32))
        os.chmod(tmp.name, 0o600)
        try:
            os.link(tmp.name, path)
        except FileExistsError:
            pass  # another process won the race; use its secret
        finally:
            os.unlink(tmp.name)
    return path.read_text().strip()
