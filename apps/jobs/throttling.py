"""Per-user throttling of POSTs (job submissions, uploads, cancel, retry)."""

from __future__ import annotations

from typing import Any

from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle


class UserPostRateThrottle(UserRateThrottle):
    """``REELQUEUE_THROTTLE_USER_POSTS`` requests per user (per IP when anonymous); reads are free."""

    scope = "user_posts"

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request: Any, view: Any) -> bool:
        if request.method != "POST":
            return True
        return super().allow_request(request, view)
