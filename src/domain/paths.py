"""Production paths: which workflow prepares an AI job (seed 001)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from src.domain.errors import ValidationError


class ProductionPath(str, Enum):
    FASHION = "fashion"
    BEAUTY = "beauty"
    EATS = "eats"
    CINEMA = "cinema"
    CARTOON = "cartoon"


DEFAULT_PATH = ProductionPath.FASHION


class UnknownPathPolicy(str, Enum):
    USE_DEFAULT = "use_default"  # fall back to fashion and warn
    REJECT = "reject"  # refuse with a clear error


@dataclass(frozen=True)
class ResolvedPath:
    path: ProductionPath
    warning: str | None = None


def resolve_path(value: str | None, policy: UnknownPathPolicy) -> ResolvedPath:
    """Turn a requested path into a known one, by ``policy`` when it is missing or unknown."""
    if value:
        try:
            return ResolvedPath(ProductionPath(value.strip().lower()))
        except ValueError:
            problem = f"unknown production path {value!r}"
    else:
        problem = "no production path given"
    if policy is UnknownPathPolicy.REJECT:
        known = ", ".join(p.value for p in ProductionPath)
        raise ValidationError({"production_path": f"{problem}; choose one of: {known}"})
    return ResolvedPath(DEFAULT_PATH, warning=f"{problem}; using {DEFAULT_PATH.value}")


def parse_path_limits(text: str) -> dict[str, int]:
    """``"cinema=1,fashion=4"`` -> ``{"cinema": 1, "fashion": 4}``; empty text: no limits."""
    limits: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in {p.value for p in ProductionPath}:
            raise ValueError(f"path limit {item!r}: expected <path>=<n> with a known production path "
                             f"({', '.join(p.value for p in ProductionPath)})")
        if name in limits:
            raise ValueError(f"path limit {item!r}: {name} is given twice")
        try:
            limits[name] = int(value)
        except ValueError:
            raise ValueError(f"path limit {item!r}: {value.strip()!r} is not a whole number") from None
        if limits[name] < 1:
            raise ValueError(f"path limit {item!r}: must be at least 1")
    return limits
