"""Production paths -> workflow modules. Each prepares a job's prompt and checks its input."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from src.domain.errors import PermanentError
from src.domain.jobs import AIJob, Mode
from src.domain.paths import ProductionPath


@dataclass(frozen=True, kw_only=True)
class Workflow:
    """What a production path adds to a generation: prompt style and input rules."""

    path: ProductionPath
    style: str
    needs_image: bool = False  # this path works from a product photo

    def prepare(self, job: AIJob) -> AIJob:
        """The job as the provider should see it; :class:`PermanentError` if it cannot run."""
        if self.needs_image and job.mode is not Mode.IMAGE_TO_VIDEO:
            raise PermanentError(f"the {self.path.value} workflow needs an input image (mode i2v)")
        prompt = job.prompt.strip()
        styled = f"{prompt}. {self.style}" if prompt else self.style
        return replace(job, prompt=styled[:1000])


WORKFLOWS: Mapping[ProductionPath, Workflow] = MappingProxyType(
    {
        ProductionPath.FASHION: Workflow(
            path=ProductionPath.FASHION,
            style="Fashion film: the garment stays true to the reference, smooth model motion, "
            "soft studio light",
        ),
        ProductionPath.BEAUTY: Workflow(
            path=ProductionPath.BEAUTY,
            style="Beauty close-up: true skin and product colours, slow camera, clean light",
        ),
        ProductionPath.EATS: Workflow(
            path=ProductionPath.EATS,
            style="Food shot: appetising texture, gentle steam and motion, warm light",
        ),
        ProductionPath.CINEMA: Workflow(
            path=ProductionPath.CINEMA,
            style="Cinematic: film grain, motivated lighting, deliberate camera movement",
        ),
        ProductionPath.CARTOON: Workflow(
            path=ProductionPath.CARTOON,
            style="Animated cartoon style: bold outlines, flat colours, lively motion",
        ),
    }
)


def workflow_for(job: AIJob) -> Workflow:
    try:
        return WORKFLOWS[ProductionPath(job.production_path)]
    except ValueError:
        raise PermanentError(f"unknown production path {job.production_path!r}") from None
