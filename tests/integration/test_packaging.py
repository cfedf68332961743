"""``pip install .`` installs the code as it imports itself: ``src`` (the library, with its migrations)
and ``apps`` (the API), nothing else. Built without network or build isolation, from a copy of the
project so that no build output lands in the working tree."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    project = tmp_path_factory.mktemp("project")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    for name in ("src", "apps"):
        shutil.copytree(ROOT / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    "--no-build-isolation", "--target", str(target), str(project)],
                   check=True, timeout=300, capture_output=True)
    return target


def installed_python(site: Path, cwd: Path, code: str,
                     env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """This interpreter (for the dependencies), but the project only from the installed copy."""
    environ = {**os.environ, **(env or {}), "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-P", "-c", code], cwd=cwd, env=environ, capture_output=True,
                          text=True, timeout=120, check=False)


def test_the_installed_package_imports_as_src_and_apps(site, tmp_path):
    code = ("import importlib.util, src.bootstrap; print(src.bootstrap.__file__); "
            "print(importlib.util.find_spec('apps.jobs.models').origin)")
    result = installed_python(site, tmp_path, code)
    assert result.returncode == 0, result.stderr
    bootstrap, models = result.stdout.split()
    assert bootstrap == str(site / "src" / "bootstrap.py")
    assert models == str(site / "apps" / "jobs" / "models.py")


def test_only_the_code_is_installed(site):
    tops = {path.name for path in site.iterdir() if not path.name.endswith((".dist-info", ".egg-info"))}
    assert tops == {"src", "apps"}


def test_the_installed_migrations_build_the_schema(site, tmp_path):
    database = tmp_path / "jobs.sqlite3"
    env = {"REELQUEUE_DATABASE_URL": f"sqlite:///{database}"}
    migrate = "from src.interfaces.cli import main; raise SystemExit(main(['migrate']))"
    result = installed_python(site, tmp_path, migrate, env)
    assert result.returncode == 0, result.stderr
    assert "database is up to date" in result.stdout
    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("select name from sqlite_master where type='table'")}
    assert "rq_jobs" in tables and "rq_alembic_version" in tables
    assert (site / "src" / "infrastructure" / "db" / "migrations" / "script.py.mako").is_file()
