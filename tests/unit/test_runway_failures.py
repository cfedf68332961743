"""Runway's failure codes as the job sees them: families, not exact strings."""

import pytest

from src.application.ports import RemoteState
from src.infrastructure.inference.runway import to_task


def failed(code: str | None) -> dict[str, object]:
    return {"id": "t1", "status": "FAILED", "failureCode": code, "failure": "Runway's own words."}


@pytest.mark.parametrize(("code", "retryable"), [
    ("SAFETY.INPUT.AUDIO", False),  # a member of a family not listed one by one
    ("SAFETY", False),
    ("INTERNAL.BAD_OUTPUT.CODE99", True),
    ("INTERNAL.TIMEOUT", True),
    ("INPUT_PREPROCESSING.SOMETHING_NEW", False),
])
def test_a_code_is_mapped_by_its_family(code, retryable):
    task = to_task("t1", failed(code))

    assert task.state is RemoteState.FAILED and task.retryable is retryable
    assert task.failure == f"{code}: Runway's own words." and code not in task.user_error


@pytest.mark.parametrize("code", ["SOMETHING.UNDOCUMENTED", "SAFETYNET", None])
def test_an_unknown_or_missing_code_fails_for_good_with_a_generic_message(code):
    task = to_task("t1", failed(code))

    assert not task.retryable and task.user_error == "The provider could not generate the video."
    assert task.failure.startswith(f"{code or 'UNKNOWN'}: ")
