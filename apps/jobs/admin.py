"""Jobs and batches in the admin: read-only rows; changes go through the library's JobService."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from apps.jobs import services
from apps.jobs.models import Batch, Job, model_label
from apps.jobs.queries import output_signer
from src.domain.batches import batch_status
from src.domain.catalogue import CATALOGUE, Cost
from src.domain.errors import ReelqueueError
from src.domain.status import JobStatus

STATUS_COLOURS = {
    "queued": "#607d8b", "processing": "#1565c0", "waiting_provider": "#6a1b9a", "succeeded": "#2e7d32",
    "failed": "#c62828", "cancelled": "#ef6c00", "running": "#1565c0", "partial": "#ad1457",
    "empty": "#9e9e9e",
}
COST_COLOURS = {
    Cost.FREE: "#2e7d32", Cost.VERY_CHEAP: "#558b2f", Cost.CHEAP: "#9e9d24", Cost.MODERATE: "#ef6c00",
    Cost.EXPENSIVE: "#c62828",
}
BADGE = ('<span style="background:{};color:#fff;padding:2px 8px;border-radius:9px;'
         'white-space:nowrap" title="{}">{}</span>')


def status_badge(value: str) -> str:
    return format_html(BADGE, STATUS_COLOURS.get(value, "#9e9e9e"), value, value.replace("_", " "))


def model_badge(name: str | None) -> str:
    spec = CATALOGUE.get(name or "")
    if spec is None:
        return "-"
    return format_html(BADGE, COST_COLOURS[spec.cost], model_label(name or ""), spec.display_name)


def usernames(owner_ids: Iterable[str]) -> dict[str, str]:
    ids = [i for i in set(owner_ids) if i.isdigit()]
    found = get_user_model().objects.filter(pk__in=ids).values_list("pk", "username")
    return {str(pk): name for pk, name in found}


def run_each(modeladmin: admin.ModelAdmin, request: HttpRequest, jobs: Iterable[Job], verb: str,
             use_case: Callable[[Any], Any]) -> None:
    """Apply a JobService use case to each job; report what changed and what could not."""
    done, refused = 0, []
    for row in jobs:
        try:
            use_case(services.load_job(row.kind, row.id))
            done += 1
        except ReelqueueError as exc:
            refused.append(f"{row.id}: {exc}")
    modeladmin.message_user(request, f"{verb} {done} job(s).", messages.SUCCESS)
    if refused:
        modeladmin.message_user(request, "Not changed: " + "; ".join(refused[:10]), messages.WARNING)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ["short_id", "kind", "status_badge", "model_badge", "production_path", "owner",
                    "attempts", "percent", "created_at"]
    list_filter = ["status", "kind", "provider", "model", "production_path", "provider_cancel", "created_at"]
    search_fields = ["id", "owner_id", "batch_id", "prompt", "source", "input_image", "provider_task_id"]
    actions = ["retry_failed", "cancel_queued"]
    fields = ["id", "kind", "status_badge", "owner", "attempts", "stage", "percent", "error", "output_links",
              "batch_link", "created_at", "updated_at", "started_at", "finished_at",
              "source", "preset", "poster_offset_s", "model_badge", "provider", "production_path", "mode",
              "prompt", "input_image", "duration_s", "ratio", "seed", "num_frames", "provider_task_id",
              "provider_task_history", "submitted_at", "quota_wait_since",
              "provider_cancel", "provider_cancel_detail", "provider_cancel_tries"]
    readonly_fields = fields
    list_per_page = 50

    def get_queryset(self, request: HttpRequest) -> QuerySet[Job]:
        return super().get_queryset(request).defer("callback_token")

    @admin.display(description="id", ordering="id")
    def short_id(self, job: Job) -> str:
        return job.id[:12]

    @admin.display(description="status", ordering="status")
    def status_badge(self, job: Job) -> str:
        return status_badge(job.status)

    @admin.display(description="model (speed, quality, cost)", ordering="model")
    def model_badge(self, job: Job) -> str:
        return model_badge(job.model)

    @admin.display(description="owner", ordering="owner_id")
    def owner(self, job: Job) -> str:
        return usernames([job.owner_id]).get(job.owner_id, job.owner_id)

    @admin.display(description="outputs")
    def output_links(self, job: Job) -> str:
        if not job.outputs:
            return "-"
        sign = output_signer()
        return format_html_join(
            "", '<div><a href="{}" target="_blank" rel="noopener">{}: {}</a></div>',
            ((sign(o["key"]), o.get("role", "output"), o["key"]) for o in job.outputs))

    @admin.display(description="batch")
    def batch_link(self, job: Job) -> str:
        if not job.batch_id:
            return "-"
        url = reverse("admin:jobs_batch_change", args=[job.batch_id])
        return format_html('<a href="{}">{}</a>', url, job.batch_id)

    @admin.action(description="Retry selected failed or cancelled jobs")
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        retriable = queryset.filter(status__in=[JobStatus.FAILED.value, JobStatus.CANCELLED.value])
        run_each(self, request, retriable, "Retried", services.job_service().retry)

    @admin.action(description="Cancel selected queued or waiting jobs")
    def cancel_queued(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        waiting = queryset.filter(status__in=[JobStatus.QUEUED.value, JobStatus.WAITING_PROVIDER.value])
        run_each(self, request, waiting, "Cancelled", services.job_service().cancel)


@admin.register(Batch)
class BatchAdmin(ReadOnlyAdmin):
    list_display = ["id", "owner_id", "size", "status_badge", "created_at"]
    search_fields = ["id", "owner_id"]
    list_filter = ["created_at"]
    fields = ["id", "owner_id", "size", "status_badge", "created_at", "job_links"]
    readonly_fields = fields
    actions = ["retry_failed", "cancel_queued"]

    @admin.display(description="status")
    def status_badge(self, batch: Batch) -> str:
        statuses = batch.jobs().values_list("status", flat=True)
        return status_badge(batch_status(JobStatus(s) for s in statuses))

    @admin.display(description="jobs")
    def job_links(self, batch: Batch) -> str:
        jobs = batch.jobs().order_by("created_at", "id")
        counts = Counter(job.status for job in jobs)
        rows = format_html_join(
            "", '<div><a href="{}">{}</a> {} {}</div>',
            ((reverse("admin:jobs_job_change", args=[j.id]), j.id, status_badge(j.status),
              model_badge(j.model)) for j in jobs))
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        return format_html("<p>{}</p>{}", summary, rows)

    @admin.action(description="Retry the failed or cancelled jobs of the selected batches")
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Batch]) -> None:
        jobs = Job.objects.filter(batch_id__in=queryset.values("id"),
                                  status__in=[JobStatus.FAILED.value, JobStatus.CANCELLED.value])
        run_each(self, request, jobs, "Retried", services.job_service().retry)

    @admin.action(description="Cancel the queued or waiting jobs of the selected batches")
    def cancel_queued(self, request: HttpRequest, queryset: QuerySet[Batch]) -> None:
        jobs = Job.objects.filter(batch_id__in=queryset.values("id"),
                                  status__in=[JobStatus.QUEUED.value, JobStatus.WAITING_PROVIDER.value])
        run_each(self, request, jobs, "Cancelled", services.job_service().cancel)


class DigestTokenAdmin(TokenAdmin):
    """API tokens are stored as digests (``apps.jobs.tokens``) and made by ``create_api_token``,
    which shows each once: here they are only listed and deleted (a deleted token is refused at
    once). A token added here would store its key in the clear and never authenticate."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


admin.site.unregister(TokenProxy)
admin.site.register(TokenProxy, DigestTokenAdmin)
