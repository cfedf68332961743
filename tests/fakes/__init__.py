"""Fake provider APIs over real HTTP: importable by tests, the e2e suite and the benchmarks."""

from tests.fakes.luma_server import FakeLuma
from tests.fakes.runway_server import FakeRunway
from tests.fakes.server import CallbackReceiver, tiny_mp4

__all__ = ["CallbackReceiver", "FakeLuma", "FakeRunway", "tiny_mp4"]
