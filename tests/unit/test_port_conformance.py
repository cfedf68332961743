"""An adapter that drifts from its port fails the type check (src/infrastructure/conformance.py).

The drifted adapters are the real in-memory storage with one change each, checked the way the
conformance module checks every adapter; one mypy run, with no configuration file (no Django
plugin) and a private cache, so it stays fast.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Protocol

from mypy import api

from src.application import ports
from src.infrastructure import conformance, memory

ROOT = Path(__file__).resolve().parents[2]
FAKE_STORAGE = ROOT / "src" / "infrastructure" / "memory" / "storage.py"

DRIFTS = {  # name -> (what the fake says, what the drifted copy says instead)
    "keyword_added": ("def upload(self, key: str, path: Path, *, content_type: str) -> int:",
                      "def upload(self, key: str, path: Path, *, content_type: str, public: bool) -> int:"),
    "method_renamed": ("def exists(self, key: str) -> bool:", "def has(self, key: str) -> bool:"),
    "return_widened": ("def download(self, key: str, dest: Path) -> int:",
                       "def download(self, key: str, dest: Path) -> float:"),
}

CHECK = """\
from src.application.ports import Storage
from {module} import InMemoryStorage


def storages(memory: InMemoryStorage) -> list[Storage]:
    return [memory]
"""


def _write_adapters(tmp_path: Path) -> dict[str, Path]:
    source = FAKE_STORAGE.read_text()
    checks = {}
    for name, (old, new) in {"unchanged": ("", ""), **DRIFTS}.items():
        assert old in source, f"the fake storage no longer has {old!r}: update this test"
        (tmp_path / f"storage_{name}.py").write_text(source.replace(old, new) if old else source)
        checks[name] = tmp_path / f"check_{name}.py"
        checks[name].write_text(CHECK.format(module=f"storage_{name}"))
    return checks


def test_an_adapter_that_drifts_from_its_port_fails_the_type_check(tmp_path, monkeypatch):
    checks = _write_adapters(tmp_path)
    monkeypatch.chdir(ROOT)  # the checked files import src.*

    report, errors, status = api.run([
        "--config-file=", "--strict", "--python-version=3.11", "--cache-dir", str(tmp_path / "cache"),
        *[str(path) for path in checks.values()],
    ])

    assert status == 1, report + errors
    failing = {name for name, path in checks.items() if f"{path.name}:" in report}
    assert failing == set(DRIFTS), report
    for name in DRIFTS:
        line = next(line for line in report.splitlines() if f"check_{name}.py" in line and "error" in line)
        assert 'incompatible type "InMemoryStorage"; expected "Storage"' in line, report


def _protocols(module: object) -> set[str]:
    return {name for name, value in vars(module).items()
            if inspect.isclass(value) and value is not Protocol and getattr(value, "_is_protocol", False)}


def _checked() -> tuple[set[str], set[str]]:
    """The ports the conformance module returns, and the adapters it takes (names)."""
    ports_, adapters = set(), set()
    for function in vars(conformance).values():
        if inspect.isfunction(function) and function.__module__ == conformance.__name__:
            annotations = inspect.get_annotations(function)
            ports_.update(re.findall(r"list\[(\w+)\]", annotations.pop("return")))
            adapters.update(re.match(r"\w+", value).group() for value in annotations.values())
    return ports_, adapters


def test_every_port_is_listed_in_the_conformance_module():
    checked, _ = _checked()
    wanted = _protocols(ports) - {"JobRepository"}  # generic: checked through its two kinds (video, AI)
    assert wanted <= checked, wanted - checked


def test_every_in_memory_fake_is_checked_against_its_port():
    _, checked = _checked()
    fakes = set(memory.__all__) - {"InMemoryBroker", "InMemoryDatabase"}  # the stores behind the fakes
    assert fakes <= checked, fakes - checked
