"""Every ``# type: ignore`` in the checked code names its error code and says why."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IGNORE = re.compile(r"#\s*type:\s*ignore(?P<codes>\[[a-z0-9-]+(?:,\s*[a-z0-9-]+)*\])?(?P<after>.*)$")


def checked_files() -> list[Path]:
    """What ``mypy`` checks (pyproject: src/ and apps/, without Django's generated migrations)."""
    files = [*ROOT.glob("src/**/*.py"), *ROOT.glob("apps/**/*.py")]
    return sorted(path for path in files if not re.search(r"apps/[^/]+/migrations/", path.as_posix()))


def unexplained(lines: list[str]) -> list[str]:
    """The ignores among ``lines`` without an error code, or without a reason (a comment after
    the ignore on its line, or a comment line right above it)."""
    found = []
    for number, line in enumerate(lines):
        match = IGNORE.search(line)
        if match is None:
            continue
        reason_after = re.match(r"\s*#\s*\S", match["after"])
        reason_above = number > 0 and lines[number - 1].lstrip().startswith("#")
        if not match["codes"] or not (reason_after or reason_above):
            found.append(f"{number + 1}: {line.strip()}")
    return found


def test_an_ignore_without_a_code_or_a_reason_is_found():
    assert unexplained(["x = f()  # type: ignore"]) == ["1: x = f()  # type: ignore"]
    assert unexplained(["x = f()  # type: ignore[arg-type]"]) == ["1: x = f()  # type: ignore[arg-type]"]
    assert unexplained(["x = f()  # type: ignore[arg-type]  # the stubs lack the keyword"]) == []
    assert unexplained(["# the stubs lack the keyword", "x = f()  # type: ignore[arg-type]"]) == []


def test_every_type_ignore_in_the_checked_code_has_a_code_and_a_reason():
    offenders = {
        path.relative_to(ROOT).as_posix(): found
        for path in checked_files()
        if (found := unexplained(path.read_text().splitlines()))
    }
    assert offenders == {}
