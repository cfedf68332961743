"""Routing: provider -> queue, production path -> workflow, and the unknown-path policy."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from src.application.messages import JobMessage, queue_for
from src.application.workflows import WORKFLOWS, workflow_for
from src.domain.catalogue import CATALOGUE
from src.domain.errors import PermanentError, ValidationError
from src.domain.jobs import AIJob, JobKind, Mode, VideoJob
from src.domain.paths import DEFAULT_PATH, ProductionPath, UnknownPathPolicy, resolve_path

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def ai_job(model: str, path: str = "fashion", mode: Mode = Mode.TEXT_TO_VIDEO) -> AIJob:
    return AIJob(owner_id="u", model=model, provider=CATALOGUE[model].provider, production_path=path,
                 mode=mode, prompt="p", created_at=NOW, updated_at=NOW)


def test_wan_jobs_go_to_the_gpu_queue_only():
    message = JobMessage.for_job(ai_job("wan_local"))

    assert message.queue == "ai-gpu" and message.kind is JobKind.AI


@pytest.mark.parametrize("model", [name for name, spec in CATALOGUE.items() if spec.provider != "wan_local"])
def test_runway_and_luma_models_go_to_the_remote_queue(model):
    assert queue_for(ai_job(model)) == "ai-remote"


def test_no_remote_model_ever_reaches_a_gpu_worker():
    gpu = {name for name in CATALOGUE if queue_for(ai_job(name)) == "ai-gpu"}

    assert gpu == {"wan_local"}


def test_video_jobs_go_to_the_video_queue():
    job = VideoJob(owner_id="u", source="in/a.mp4", created_at=NOW, updated_at=NOW)

    assert JobMessage.for_job(job).queue == "video"


@pytest.mark.parametrize("path", list(ProductionPath))
def test_every_production_path_has_its_own_workflow(path):
    workflow = workflow_for(ai_job("gen4.5", path.value))

    assert workflow is WORKFLOWS[path] and workflow.path is path
    assert workflow.prepare(ai_job("gen4.5", path.value)).prompt.startswith("p. ")


def test_the_workflow_table_covers_every_path_and_no_other():
    assert set(WORKFLOWS) == set(ProductionPath)


def test_a_stored_job_with_an_unknown_path_fails_permanently():
    with pytest.raises(PermanentError, match="unknown production path 'noir'"):
        workflow_for(ai_job("gen4.5", "noir"))


@pytest.mark.parametrize("value", [None, "", "noir"])
def test_a_missing_or_unknown_path_falls_back_to_fashion_with_a_warning(value):
    resolved = resolve_path(value, UnknownPathPolicy.USE_DEFAULT)

    assert resolved.path is DEFAULT_PATH is ProductionPath.FASHION
    assert "using fashion" in resolved.warning


@pytest.mark.parametrize("value", [None, "noir"])
def test_the_reject_policy_refuses_a_missing_or_unknown_path_with_the_choices(value):
    with pytest.raises(ValidationError) as caught:
        resolve_path(value, UnknownPathPolicy.REJECT)

    assert "choose one of: fashion, beauty, eats, cinema, cartoon" in str(caught.value)


def test_a_known_path_is_accepted_in_any_case():
    assert resolve_path(" Cinema ", UnknownPathPolicy.REJECT).path is ProductionPath.CINEMA
