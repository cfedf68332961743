"""Idempotency locks in Redis: ``SET key token NX PX ttl``; release and extend compare the token
atomically in a Lua script, so a worker never frees or renews a lock another worker now holds.
A crashed holder's lock simply expires.
"""

from __future__ import annotations

import secrets

import redis

from src.application.ports import Lock
from src.infrastructure.cache.errors import translated_errors

RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

EXTEND_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class RedisIdempotency:
    def __init__(self, client: redis.Redis, *, prefix: str = "reelqueue:lock:") -> None:
        self.client = client
        self.prefix = prefix
        self._release = client.register_script(RELEASE_LUA)
        self._extend = client.register_script(EXTEND_LUA)

    def acquire(self, key: str, *, ttl_ms: int) -> Lock | None:
        lock = Lock(key, secrets.token_hex(16))
        with translated_errors():
            taken = self.client.set(self.prefix + key, lock.token, nx=True, px=_positive(ttl_ms))
        return lock if taken else None

    def extend(self, lock: Lock, *, ttl_ms: int) -> bool:
        args: list[str | int] = [lock.token, _positive(ttl_ms)]
        with translated_errors():
            return bool(self._extend(keys=[self.prefix + lock.key], args=args) == 1)

    def release(self, lock: Lock) -> bool:
        with translated_errors():
            return bool(self._release(keys=[self.prefix + lock.key], args=[lock.token]) == 1)


def _positive(ttl_ms: int) -> int:
    if ttl_ms <= 0:
        raise ValueError("ttl_ms must be positive")
    return int(ttl_ms)
