"""Docker cannot run here: parse both Dockerfiles and check the rules their images must keep."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def instructions(name: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (ROOT / name).read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    result = []
    for line in filter(None, (raw.strip() for raw in joined.splitlines())):
        keyword, _, rest = line.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def args_of(steps: list[tuple[str, str]], keyword: str) -> list[str]:
    return [rest for kw, rest in steps if kw == keyword]


def exec_form(rest: str) -> list[str]:
    return json.loads(rest)


def copied_sources(steps: list[tuple[str, str]]) -> set[str]:
    sources = set()
    for rest in args_of(steps, "COPY"):
        words = [w for w in shlex.split(rest) if not w.startswith("--")]
        sources.update(words[:-1])
    return sources


def final_user(steps: list[tuple[str, str]]) -> str:
    users = args_of(steps, "USER")
    assert users, "the image must switch to a non-root user"
    return users[-1]


@pytest.fixture(scope="module")
def worker() -> list[tuple[str, str]]:
    return instructions("Dockerfile.worker")


@pytest.fixture(scope="module")
def api() -> list[tuple[str, str]]:
    return instructions("Dockerfile.api")


@pytest.mark.parametrize("name", ["Dockerfile.worker", "Dockerfile.api"])
def test_images_start_from_a_slim_python_and_run_as_a_non_root_user(name):
    steps = instructions(name)
    bases = args_of(steps, "FROM")
    assert bases and all(re.fullmatch(r"python:\S*-slim", base) for base in bases)
    assert final_user(steps) not in ("root", "0")
    keywords = [kw for kw, _ in steps]
    assert keywords.index("USER") < keywords.index("CMD")


def test_the_worker_image_carries_src_only_and_installs_only_the_worker_requirements(worker):
    assert copied_sources(worker) == {"requirements-worker.txt", "src/"}
    installs = " ".join(args_of(worker, "RUN"))
    assert "pip install -r requirements-worker.txt" in installs
    assert "requirements-api" not in installs and "django" not in installs.lower()
    everything = " ".join(rest for _, rest in worker)
    assert "manage.py" not in everything and "apps/" not in everything


def test_the_worker_entry_point_is_chosen_by_argument(worker):
    (entrypoint,) = args_of(worker, "ENTRYPOINT")
    (cmd,) = args_of(worker, "CMD")
    assert exec_form(entrypoint) == ["python", "-m", "src.interfaces.workers"]
    assert exec_form(cmd) == ["video"]
    for kind in ("video", "ai"):
        result = subprocess.run([sys.executable, "-m", "src.interfaces.workers", kind, "--help"],
                                cwd=ROOT, capture_output=True, text=True, check=False)
        assert result.returncode == 0 and f"src.interfaces.workers.{kind}.main" in result.stdout


def test_with_gpu_installs_the_pinned_gpu_extra_and_only_then(worker):
    assert "WITH_GPU=0" in args_of(worker, "ARG")
    (install,) = [run for run in args_of(worker, "RUN") if "requirements-worker.txt" in run]
    assert 'if [ "$WITH_GPU" = "1" ]' in install
    script = re.search(r"python -c '([^']+)'", install).group(1)
    code = script.replace("/tmp/pyproject.toml", str(ROOT / "pyproject.toml"))
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    gpu = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["gpu"]
    assert printed.split() == gpu
    assert any(p.startswith("torch==") for p in gpu) and any(p.startswith("diffusers==") for p in gpu)


@pytest.mark.parametrize("name", ["requirements-worker.txt", "requirements-api.txt"])
def test_requirement_files_pin_every_version(name):
    lines = [line.strip() for line in (ROOT / name).read_text().splitlines()]
    packages = [line for line in lines if line and not line.startswith("#")]
    assert packages and all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.]+", p) for p in packages)
    if name == "requirements-worker.txt":
        assert not any(p.lower().startswith(("django", "djangorestframework", "gunicorn")) for p in packages)


def test_the_api_image_serves_django_with_gunicorn_and_can_migrate_at_start(api):
    assert copied_sources(api) == {"requirements-api.txt", "src/", "apps/"}
    assert "pip install -r requirements-api.txt" in " ".join(args_of(api, "RUN"))
    (cmd,) = args_of(api, "CMD")
    shell = exec_form(cmd)
    assert shell[:2] == ["sh", "-c"]
    assert "exec gunicorn -c apps/reelqueue_api/gunicorn_conf.py" in shell[2]
    conf = (ROOT / "apps" / "reelqueue_api" / "gunicorn_conf.py").read_text()
    assert 'wsgi_app = "apps.reelqueue_api.wsgi:application"' in conf and "RedactingGunicornLogger" in conf
    assert '"$REELQUEUE_MIGRATE_ON_START" = 1' in shell[2] and "cli migrate" in shell[2]
    assert "REELQUEUE_MIGRATE_ON_START=0" in " ".join(args_of(api, "ENV"))
    assert (ROOT / "apps" / "reelqueue_api" / "wsgi.py").exists()
