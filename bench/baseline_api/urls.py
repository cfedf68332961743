from django.urls import path

from bench.baseline_api.views import JobCreate

urlpatterns = [path("api/v1/ai-jobs", JobCreate.as_view())]
