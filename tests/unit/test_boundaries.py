"""The import contract, as a test: src/ never imports Django, layers point inward, and the API
(apps/) reaches the library through bootstrap and the use cases, not through its adapters."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
APPS = ROOT / "apps"
API_MAY_IMPORT = ("src.application", "src.domain", "src.bootstrap", "src.config")
# direct imports of adapters the API keeps, each with its reason in pyproject's import contract
API_ADAPTER_EXCEPTIONS = {
    ("jobs/models.py", "src.infrastructure.db.repository"),
    ("reelqueue_api/logging.py", "src.infrastructure.observability.logs"),
}
FORBIDDEN_EVERYWHERE = ("django", "rest_framework", "apps")
INNER_MUST_NOT_IMPORT = {
    "domain": ("src.application", "src.infrastructure", "src.interfaces", "src.bootstrap"),
    "application": ("src.infrastructure", "src.interfaces", "src.bootstrap"),
    "infrastructure": ("src.interfaces", "src.bootstrap"),
}


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules():
    return sorted(SRC.rglob("*.py"))


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_of_the_library_imports_django_or_the_api(path):
    bad = {n for n in imports_of(path) if n.split(".")[0] in FORBIDDEN_EVERYWHERE}
    assert not bad, f"{path} imports {bad}"


@pytest.mark.parametrize("layer", sorted(INNER_MUST_NOT_IMPORT))
def test_inner_layers_do_not_import_outer_ones(layer):
    offenders = {}
    for path in (SRC / layer).rglob("*.py"):
        bad = {n for n in imports_of(path) if n.startswith(INNER_MUST_NOT_IMPORT[layer])}
        if bad:
            offenders[str(path.relative_to(SRC))] = bad
    assert not offenders


def test_the_domain_imports_nothing_of_the_project_but_itself():
    for path in (SRC / "domain").rglob("*.py"):
        ours = {n for n in imports_of(path) if n.startswith("src.")}
        assert all(n.startswith("src.domain") for n in ours), path


def test_the_api_imports_only_use_cases_bootstrap_settings_and_the_domain_of_the_library():
    offenders = set()
    for path in APPS.rglob("*.py"):
        for name in imports_of(path):
            if name.startswith("src.") and not name.startswith(API_MAY_IMPORT):
                offenders.add((str(path.relative_to(APPS)), name))
    assert offenders == API_ADAPTER_EXCEPTIONS
