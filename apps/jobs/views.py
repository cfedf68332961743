"""REST endpoints: parse, call a use case of the library, answer. No job runs here."""

from __future__ import annotations

import hmac
from collections import Counter
from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.jobs import inputs, services
from apps.jobs.idempotency import idempotent, request_of
from apps.jobs.models import Job
from apps.jobs.queries import output_signer, owner_id, visible_batches, visible_jobs, with_live_progress
from apps.jobs.serializers import (
    AIBatchRequest,
    AIJobRequest,
    BatchCreatedSerializer,
    BatchSerializer,
    CatalogueSerializer,
    DetailSerializer,
    JobFilter,
    JobSerializer,
    UploadRequest,
    UploadSerializer,
    VideoJobRequest,
)
from src.application.ports import KeptAnswer
from src.domain.batches import batch_status
from src.domain.catalogue import CATALOGUE, DEFAULT_MODEL, SUNSET
from src.domain.errors import JobNotFound
from src.domain.paths import DEFAULT_PATH, ProductionPath
from src.domain.status import JobStatus

BAD_REQUEST = OpenApiResponse(description="invalid input: an object of field name -> messages")
NOT_FOUND = OpenApiResponse(DetailSerializer, description="no such job (or not yours)")
CONFLICT = OpenApiResponse(DetailSerializer, description="the job's status does not allow this")


def job_response(request: Request, row: Job, code: int = status.HTTP_200_OK) -> Response:
    job = with_live_progress([row])[0]
    context = {"request": request, "sign_output": output_signer()}
    headers = {"Location": f"/api/v1/jobs/{job.id}"} if code == status.HTTP_202_ACCEPTED else None
    return Response(JobSerializer(job, context=context).data, status=code, headers=headers)


def batch_response(request: Request, batch_id: str) -> Response:
    jobs = with_live_progress(Job.objects.filter(batch_id=batch_id))
    context = {"request": request, "sign_output": output_signer()}
    body = {"id": batch_id, "status_url": request.build_absolute_uri(f"/api/v1/batches/{batch_id}"),
            "jobs": JobSerializer(jobs, many=True, context=context).data}
    headers = {"Location": f"/api/v1/batches/{batch_id}"}
    return Response(body, status=status.HTTP_202_ACCEPTED, headers=headers)


# What a replayed Idempotency-Key answers: the job or batch as it is now, or the kept body.
def replay_job(request: Request, answer: KeptAnswer) -> Response:
    row = get_object_or_404(visible_jobs(request.user), pk=answer.resource_id)
    return job_response(request, row, status.HTTP_202_ACCEPTED)


def replay_batch(request: Request, answer: KeptAnswer) -> Response:
    return batch_response(request, str(answer.resource_id))


def replay_upload(request: Request, answer: KeptAnswer) -> Response:
    return Response(answer.body, status=status.HTTP_201_CREATED)


def parsed(serializer_class: type, request: Request) -> Any:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer


class VideoJobCreate(APIView):
    @extend_schema(request=VideoJobRequest, responses={202: JobSerializer, 400: BAD_REQUEST},
                   summary="Submit a video job (download, transcode, poster)")
    @idempotent(replay_job)
    def post(self, request: Request) -> Response:
        data = parsed(VideoJobRequest, request)
        source = data.validated_data["source"]
        inputs.check_keys(request.user, services.adapters().storage, {"source": source})
        job = services.job_service().submit_video(data.command(owner_id(request.user)),
                                                  request=request_of(request))
        return job_response(request, Job.from_domain(job), status.HTTP_202_ACCEPTED)


class AIJobCreate(APIView):
    @extend_schema(request=AIJobRequest, responses={202: JobSerializer, 400: BAD_REQUEST},
                   summary="Submit an AI generation job (text- or image-to-video)")
    @idempotent(replay_job)
    def post(self, request: Request) -> Response:
        data = parsed(AIJobRequest, request)
        image = data.validated_data.get("input_image")
        inputs.check_keys(request.user, services.adapters().storage, {"input_image": image})
        job = services.job_service().submit_ai(data.command(owner_id(request.user)),
                                               request=request_of(request))
        return job_response(request, Job.from_domain(job), status.HTTP_202_ACCEPTED)


class AIBatchCreate(APIView):
    @extend_schema(request=AIBatchRequest, responses={202: BatchCreatedSerializer, 400: BAD_REQUEST},
                   summary="Submit many AI jobs at once: all valid or none recorded")
    @idempotent(replay_batch)
    def post(self, request: Request) -> Response:
        data = parsed(AIBatchRequest, request)
        images = {f"items[{i}].input_image": item.get("input_image")
                  for i, item in enumerate(data.validated_data["items"])}
        inputs.check_keys(request.user, services.adapters().storage, images)
        batch = services.job_service().submit_ai_batch(data.commands(owner_id(request.user)),
                                                       request=request_of(request))
        return batch_response(request, batch.id)


class JobList(generics.ListAPIView):
    serializer_class = JobSerializer

    def get_queryset(self) -> Any:
        filters = JobFilter(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return visible_jobs(self.request.user).filter(**filters.lookups())

    def paginate_queryset(self, queryset: Any) -> Any:
        return with_live_progress(super().paginate_queryset(queryset) or [])

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "sign_output": output_signer()}

    @extend_schema(parameters=[JobFilter], summary="Your jobs, newest first (staff: everyone's)")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class JobDetail(APIView):
    @extend_schema(responses={200: JobSerializer, 404: NOT_FOUND},
                   summary="A job: status, live progress, outputs with short-lived download URLs")
    def get(self, request: Request, job_id: str) -> Response:
        return job_response(request, get_object_or_404(visible_jobs(request.user), pk=job_id))


class JobCancel(APIView):
    @extend_schema(request=None, responses={200: JobSerializer, 404: NOT_FOUND, 409: CONFLICT},
                   summary="Cancel a queued or waiting job (a running one stops at its next step)")
    def post(self, request: Request, job_id: str) -> Response:
        row = get_object_or_404(visible_jobs(request.user), pk=job_id)
        cancelled = services.job_service().cancel(services.load_job(row.kind, job_id))
        return job_response(request, Job.from_domain(cancelled))


class JobRetry(APIView):
    @extend_schema(request=None, responses={202: JobSerializer, 404: NOT_FOUND, 409: CONFLICT},
                   summary="Retry a failed or cancelled job: a new attempt of the same job")
    @idempotent(replay_job)
    def post(self, request: Request, job_id: str) -> Response:
        row = get_object_or_404(visible_jobs(request.user), pk=job_id)
        retried = services.job_service().retry(services.load_job(row.kind, job_id),
                                               request=request_of(request))
        return job_response(request, Job.from_domain(retried), status.HTTP_202_ACCEPTED)


class BatchDetail(APIView):
    @extend_schema(responses={200: BatchSerializer, 404: NOT_FOUND},
                   summary="A batch: its aggregate status and its jobs")
    def get(self, request: Request, batch_id: str) -> Response:
        batch = get_object_or_404(visible_batches(request.user), pk=batch_id)
        jobs = with_live_progress(Job.objects.filter(batch_id=batch_id).order_by("created_at", "id"))
        counts = Counter(job.status for job in jobs)
        body = {"id": batch.id, "size": batch.size, "created_at": batch.created_at,
                "status": batch_status(JobStatus(s) for s in counts), "counts": dict(counts), "jobs": jobs}
        context = {"request": request, "sign_output": output_signer()}
        return Response(BatchSerializer(body, context=context).data)


class ProviderList(APIView):
    @extend_schema(responses={200: CatalogueSerializer},
                   summary="The models a job may use, with speed, quality, cost and allowed parameters")
    def get(self, request: Request) -> Response:
        body = {"models": [spec.describe() for spec in CATALOGUE.values()], "default_model": DEFAULT_MODEL,
                "production_paths": [p.value for p in ProductionPath],
                "default_production_path": DEFAULT_PATH.value, "sunset": dict(SUNSET)}
        return Response(CatalogueSerializer(body).data)


class UploadCreate(APIView):
    @extend_schema(request=UploadRequest, responses={201: UploadSerializer, 400: BAD_REQUEST},
                   summary="A presigned PUT for an input image, and the storage key to name in a job")
    @idempotent(replay_upload, keep_body=True)
    def post(self, request: Request) -> Response:
        content_type = parsed(UploadRequest, request).validated_data["content_type"]
        key = inputs.new_upload_key(request.user, content_type)
        adapters = services.adapters()
        expires_s = adapters.settings.presign_expires_s
        url = adapters.storage.presigned_put(key, content_type=content_type, expires_s=expires_s)
        body = {"key": key, "url": url, "method": "PUT", "headers": {"Content-Type": content_type},
                "expires_in_s": expires_s}
        return Response(UploadSerializer(body).data, status=status.HTTP_201_CREATED)


class LumaWebhook(APIView):
    """Luma's callback: wake the worker to fetch the generation. It never changes the job."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes: list[type] = []

    @extend_schema(request=None, auth=[], responses={200: DetailSerializer, 404: NOT_FOUND},
                   summary="Luma generation callback (per-job secret token in the path)")
    def post(self, request: Request, job_id: str, token: str) -> Response:
        job = services.adapters().ai_jobs.get(job_id)
        expected = (job.callback_token or "").encode()
        if not expected or job.provider != "luma" or not hmac.compare_digest(expected, token.encode()):
            raise JobNotFound(job_id)
        services.job_service().relay_callback(job)
        return Response({"detail": "accepted"})

