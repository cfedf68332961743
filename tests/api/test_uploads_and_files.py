"""Uploads: a presigned PUT and the key to name; local storage serves its signed URLs itself."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest


def path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_an_upload_gets_a_key_in_the_users_space_and_a_presigned_put(api, alice):
    response = api.post("/api/v1/uploads", {"content_type": "image/webp"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["key"].startswith(f"uploads/{alice.pk}/") and body["key"].endswith(".webp")
    assert (body["method"], body["expires_in_s"]) == ("PUT", 900)
    assert body["headers"] == {"Content-Type": "image/webp"}
    assert "signature=" in body["url"]


@pytest.mark.parametrize("content_type", ["image/gif", "text/html", "application/x-sh", ""])
def test_only_images_and_videos_of_known_types_may_be_uploaded(api, content_type):
    response = api.post("/api/v1/uploads", {"content_type": content_type}, format="json")

    assert response.status_code == 400 and "content_type" in response.json()


def test_a_source_video_can_be_uploaded_for_a_video_job(api):
    response = api.post("/api/v1/uploads", {"content_type": "video/mp4"}, format="json")

    assert response.status_code == 201 and response.json()["key"].endswith(".mp4")


def test_the_presigned_put_stores_the_file_and_it_becomes_a_job_input(api, client, library):
    upload = api.post("/api/v1/uploads", {"content_type": "image/png"}, format="json").json()

    stored = client.put(path_and_query(upload["url"]), b"\x89PNG image", content_type="image/png")

    assert stored.status_code == 201
    assert library.storage.exists(upload["key"])
    job = api.post("/api/v1/ai-jobs", {"model": "ray-2", "mode": "i2v", "input_image": upload["key"]},
                   format="json")
    assert job.status_code == 202


def test_a_tampered_or_expired_signature_gets_404(api, client, library):
    upload = api.post("/api/v1/uploads", {"content_type": "image/png"}, format="json").json()
    url = path_and_query(upload["url"])

    tampered = url.replace("signature=", "signature=0")
    assert client.put(tampered, b"x", content_type="image/png").status_code == 404
    assert client.get(url).status_code == 404  # a PUT signature does not allow a GET
    expired = library.storage.presigned_get(upload["key"], expires_s=1).replace("expires=", "expires=1")
    assert client.get(path_and_query(expired)).status_code == 404


def test_a_put_must_send_the_uploads_content_type(api, client):
    upload = api.post("/api/v1/uploads", {"content_type": "image/png"}, format="json").json()

    assert client.put(path_and_query(upload["url"]), b"x", content_type="text/html").status_code == 400
