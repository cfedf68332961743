"""``python -m src.interfaces.workers.ai.main``: the AI worker (gpu: Wan; remote: Runway, Luma)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from src.domain.jobs import JobKind
from src.interfaces.workers import process


def main(argv: Sequence[str] | None = None) -> int:
    return process.main(JobKind.AI, argv)


if __name__ == "__main__":
    sys.exit(main())
