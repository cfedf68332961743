"""Live progress in Redis: one hash per job (stage, percent, message, updated_at) with a TTL.

Write-behind: the database gets only the final state. Within a stage percent never goes
backwards (checked atomically in Lua). Recording is best effort: while Redis is unreachable
the job still runs, and one warning says so.
"""

from __future__ import annotations

import logging
from datetime import datetime

import redis

from src.application.ports import Clock, Progress
from src.infrastructure.clock import SystemClock

log = logging.getLogger(__name__)

RECORD_LUA = """
local current = redis.call('HMGET', KEYS[1], 'stage', 'percent')
if current[1] == ARGV[1] and tonumber(ARGV[2]) < tonumber(current[2]) then
  return 0
end
redis.call('HSET', KEYS[1], 'stage', ARGV[1], 'percent', ARGV[2], 'message', ARGV[3],
           'updated_at', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""


class RedisProgress:
    def __init__(
        self, client: redis.Redis, *, ttl_s: float, prefix: str = "reelqueue:progress:",
        clock: Clock | None = None,
    ) -> None:
        self.client = client
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.prefix = prefix
        self.clock = clock or SystemClock()
        self._record = client.register_script(RECORD_LUA)
        self._degraded = False

    def record(self, job_id: str, *, stage: str, percent: float, message: str = "") -> None:
        percent = max(0.0, min(100.0, float(percent)))
        args: list[str | int] = [stage, repr(percent), message, self.clock.now().isoformat(), self.ttl_ms]
        try:
            self._record(keys=[self.prefix + job_id], args=args)
        except redis.RedisError as exc:
            self._warn_once(exc)
            return
        self._degraded = False

    def read(self, job_id: str) -> Progress | None:
        try:
            fields = self.client.hgetall(self.prefix + job_id)
        except redis.RedisError as exc:
            self._warn_once(exc)
            return None
        return _progress(fields) if fields else None

    def flush(self, job_id: str) -> Progress | None:
        return self.read(job_id)

    def _warn_once(self, exc: Exception) -> None:
        if not self._degraded:
            log.warning("Redis is unreachable; progress is not recorded until it is back: %s", exc)
        self._degraded = True


def _progress(fields: dict[bytes | str, bytes | str]) -> Progress:
    text = {_text(key): _text(value) for key, value in fields.items()}
    return Progress(stage=text["stage"], percent=float(text["percent"]), message=text["message"],
                    updated_at=datetime.fromisoformat(text["updated_at"]))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
