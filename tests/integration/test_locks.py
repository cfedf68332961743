"""The locked requirement files are what pyproject.toml asks for: ``scripts/lock --check`` regenerates
them into a scratch directory (uv, against the package index) and fails with a diff when they differ."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCKS = ("requirements-worker.txt", "requirements-api.txt")


def check(project: Path) -> subprocess.CompletedProcess[str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # this environment's uv
    return subprocess.run([str(project / "scripts" / "lock"), "--check"], capture_output=True, text=True,
                          timeout=300, check=False, env={**os.environ, "PATH": path})


def copy_of_the_project(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "lock", tmp_path / "scripts" / "lock")
    for name in ("pyproject.toml", "README.md", *LOCKS):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_the_committed_locks_are_up_to_date():
    result = check(ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_a_pin_changed_in_pyproject_without_relocking_fails_the_check(tmp_path):
    project = copy_of_the_project(tmp_path)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"redis==8.1.0"', '"redis==8.0.1"'))
    result = check(project)
    assert result.returncode == 1
    assert "-redis==8.1.0" in result.stdout and "+redis==8.0.1" in result.stdout
    assert "out of date: run scripts/lock" in result.stderr
    assert (project / LOCKS[0]).read_text() == (ROOT / LOCKS[0]).read_text(), "the check writes nothing"


def test_a_dependency_added_to_pyproject_without_relocking_fails_the_check(tmp_path):
    project = copy_of_the_project(tmp_path)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('    "gunicorn==27.0.1",\n',
                                                       '    "gunicorn==27.0.1",\n    "sqlparse==0.6.1",\n'))
    result = check(project)
    assert result.returncode == 1
    assert "+++" in result.stdout and "requirements-api.txt" in result.stdout
    assert "+    #   reelqueue (pyproject.toml)" in result.stdout
