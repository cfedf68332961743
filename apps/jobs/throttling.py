"""Per-user throttling of POSTs (job submissions, uploads, cancel, retry).

DRF's rule: at most N requests in any window of the rate's duration (a sliding window over the
timestamps of the accepted requests). With Redis (``REELQUEUE_REDIS_URL``) those timestamps
live in a sorted set per user that one script trims, counts and extends: one round trip, atomic
across API processes, and a cost that does not grow with the rate. Without Redis, DRF's own
implementation keeps them in Django's cache (per process).
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

import redis
from django.conf import settings
from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle

log = logging.getLogger(__name__)

KEY_PREFIX = "reelqueue-api:"
REDIS_TIMEOUT_S = 2.0

# KEYS[1]: the user's window; ARGV: now (s), duration (s), limit, a unique member.
# Returns -1 when the request is accepted (and recorded), else the oldest accepted timestamp.
SLIDING_WINDOW = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return -1
end
return redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]
"""

_windows: dict[str, Any] = {}  # Redis URL -> the registered script, one client per process
_windows_lock = threading.Lock()


def sliding_window(url: str) -> Any:
    """The script on a client of ``url``, built on first use (no connection at import time)."""
    with _windows_lock:
        if url not in _windows:
            client = redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_S,
                                          socket_connect_timeout=REDIS_TIMEOUT_S)
            _windows[url] = client.register_script(SLIDING_WINDOW)
        return _windows[url]


class UserPostRateThrottle(UserRateThrottle):
    """``REELQUEUE_THROTTLE_USER_POSTS`` requests per user (per IP when anonymous); reads are free."""

    scope = "user_posts"
    num_requests: int  # both set by DRF's constructor from the rate; read only when there is one
    duration: int

    def get_rate(self) -> str | None:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)  # "60/minute"
        return None if rate is None else str(rate)

    def allow_request(self, request: Any, view: Any) -> bool:
        self.oldest_s: float | None = None  # set when Redis refused the request
        if request.method != "POST":
            return True
        try:
            redis_url = settings.REELQUEUE.redis_url
            if not redis_url or self.rate is None:
                return super().allow_request(request, view)
            return self._allow_in_redis(redis_url, request, view)
        except redis.RedisError as exc:
            # While Redis is down, accept rather than fail every POST with a 500: a job is
            # recorded in the database, and throttling is only a brake.
            log.warning("throttle counters unavailable (Redis), request let through: %s", exc)
            return True

    def _allow_in_redis(self, url: str, request: Any, view: Any) -> bool:
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        member = f"{self.now:.6f}:{uuid.uuid4().hex[:8]}"
        oldest = sliding_window(url)(keys=[KEY_PREFIX + self.key],
                                     args=[f"{self.now:.6f}", self.duration, self.num_requests, member])
        if oldest == -1:
            return True
        self.oldest_s = float(oldest)
        return False

    def wait(self) -> float | None:
        """Seconds until the oldest request in the window leaves it (DRF's answer for a full window)."""
        if self.oldest_s is None:
            return super().wait()
        return max(0.0, self.duration - (self.now - self.oldest_s))
