"""The one endpoint: validate, insert the row, answer 202."""

from __future__ import annotations

import uuid

from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bench.baseline_api.models import Job


class JobRequest(serializers.Serializer):
    model = serializers.CharField(max_length=64)
    mode = serializers.ChoiceField(choices=["t2v", "i2v"])
    prompt = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    production_path = serializers.ChoiceField(choices=["fashion", "beauty", "eats", "cinema", "cartoon"])
    duration_s = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=600)


class JobCreate(APIView):
    def post(self, request: Request) -> Response:
        data = JobRequest(data=request.data)
        data.is_valid(raise_exception=True)
        job = Job.objects.create(id=uuid.uuid4().hex, owner_id=str(request.user.pk), **data.validated_data)
        return Response({"id": job.id, "status": job.status}, status=status.HTTP_202_ACCEPTED)
