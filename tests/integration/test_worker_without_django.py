"""The worker needs no Django: a fresh virtual environment with only requirements-worker.txt
(installed as the image does, every hash checked; plus pytest, to run the worker's tests) cannot
import django, yet the worker runs.

pip's own wheel cache keeps the install to about a minute after the first run.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
WORKER_TESTS = ["tests/unit/test_worker_runtime.py", "tests/unit/test_logging.py"]


def pinned_pytest() -> str:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (pin,) = [p for p in extras["test"] if p.startswith("pytest==")]
    return pin


@pytest.fixture(scope="module")
def python(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("worker-venv")
    venv.create(home, with_pip=True, system_site_packages=False, clear=True)
    python = home / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q"]
    lock = str(ROOT / "requirements-worker.txt")
    subprocess.run([*pip, "--require-hashes", "-r", lock], check=True, timeout=600)
    subprocess.run([*pip, pinned_pytest()], check=True, timeout=600)
    return python


def run(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(python), *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=False)


def test_django_is_not_installed(python):
    result = run(python, "-c", "import django")
    assert result.returncode != 0 and "No module named 'django'" in result.stderr


ENTRY_POINTS = ["src.interfaces.workers.video.main", "src.interfaces.workers.ai.main", "src.interfaces.cli"]


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_the_entry_points_help_works(python, entry_point):
    result = run(python, "-m", entry_point, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


def test_the_worker_tests_pass(python):
    result = run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *WORKER_TESTS)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_this_environment_is_really_fresh(python):
    result = run(python, "-c", "import sys; print(sys.prefix != sys.base_prefix); import rest_framework")
    assert result.stdout.startswith("True") and "No module named 'rest_framework'" in result.stderr
    assert Path(sys.executable).resolve() != python.resolve()
