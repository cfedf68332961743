from __future__ import annotations

from django.db import models


class Job(models.Model):
    id = models.CharField(max_length=32, primary_key=True)
    owner_id = models.CharField(max_length=64)
    status = models.CharField(max_length=20, default="queued")
    model = models.CharField(max_length=64)
    mode = models.CharField(max_length=8)
    prompt = models.TextField(blank=True, default="")
    production_path = models.CharField(max_length=32)
    duration_s = models.IntegerField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "baseline_api"
        db_table = "baseline_jobs"
