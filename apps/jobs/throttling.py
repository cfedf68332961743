"""Per-user throttling of POSTs (job submissions, uploads, cancel, retry)."""

from __future__ import annotations

import logging
from typing import Any

import redis
from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle

log = logging.getLogger(__name__)


class UserPostRateThrottle(UserRateThrottle):
    """``REELQUEUE_THROTTLE_USER_POSTS`` requests per user (per IP when anonymous); reads are free."""

    scope = "user_posts"

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request: Any, view: Any) -> bool:
        if request.method != "POST":
            return True
        try:
            return super().allow_request(request, view)
        except redis.RedisError as exc:
            # The counters live in Redis; while it is down, accept rather than fail every POST
            # with a 500: a job is recorded in the database, and throttling is only a brake.
            log.warning("throttle counters unavailable (Redis), request let through: %s", exc)
            return True
