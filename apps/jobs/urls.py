"""``/api/v1/``: job submission, status, control, the catalogue, uploads and callbacks."""

from django.urls import path, register_converter

from apps.jobs import files, views


class HexIdConverter:
    regex = "[0-9a-f]{32}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class TokenConverter:
    regex = "[A-Za-z0-9_-]{1,128}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(HexIdConverter, "hexid")
register_converter(TokenConverter, "token")

urlpatterns = [
    path("video-jobs", views.VideoJobCreate.as_view(), name="video-jobs"),
    path("ai-jobs", views.AIJobCreate.as_view(), name="ai-jobs"),
    path("ai-jobs/batch", views.AIBatchCreate.as_view(), name="ai-jobs-batch"),
    path("jobs", views.JobList.as_view(), name="jobs"),
    path("jobs/<hexid:job_id>", views.JobDetail.as_view(), name="job"),
    path("jobs/<hexid:job_id>/cancel", views.JobCancel.as_view(), name="job-cancel"),
    path("jobs/<hexid:job_id>/retry", views.JobRetry.as_view(), name="job-retry"),
    path("batches/<hexid:batch_id>", views.BatchDetail.as_view(), name="batch"),
    path("providers", views.ProviderList.as_view(), name="providers"),
    path("uploads", views.UploadCreate.as_view(), name="uploads"),
    path("webhooks/luma/<hexid:job_id>/<token:token>", views.LumaWebhook.as_view(), name="webhook-luma"),
    path("files/<path:key>", files.SignedFileView.as_view(), name="files"),
]
