"""Shared fixtures live in tests/fixtures/; each module there is registered here."""

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.moto",
    "tests.fixtures.providers",
]
