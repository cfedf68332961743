"""The API's settings for a live test server: the real ones, with the test DNS resolver in the URL
guard (``media.example.com`` is public, ``internal.example.com`` private, no other name resolves)."""

from apps.reelqueue_api.settings import *  # noqa: F403

REELQUEUE_URL_GUARD = "tests.api.harness.url_guard"
