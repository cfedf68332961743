import pytest

from src.application.messages import JobMessage, UndecodableMessage
from src.domain.jobs import JobKind


def test_a_message_round_trips_through_its_versioned_body():
    message = JobMessage(kind=JobKind.VIDEO, job_id="abc", queue="video")
    assert JobMessage.decode(message.encode(), queue="video") == message
    assert message.encode() == '{"v":1,"kind":"video","job_id":"abc"}'


@pytest.mark.parametrize("body,reason", [
    ("not json", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"v": 2, "kind": "video", "job_id": "a"}', "unknown message version"),
    ('{"v": 1, "kind": "audio", "job_id": "a"}', "unknown job kind"),
    ('{"v": 1, "kind": "video"}', "job_id"),
    ('{"v": 1, "kind": "video", "job_id": 7}', "job_id"),
    (b"\xff\xfe", "not JSON"),
])
def test_a_body_that_is_not_a_job_message_is_refused_with_the_reason(body, reason):
    with pytest.raises(UndecodableMessage) as info:
        JobMessage.decode(body, queue="video")
    assert reason in str(info.value)
