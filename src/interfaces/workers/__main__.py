"""``python -m src.interfaces.workers video|ai|cli [options]``: one image, the process chosen by argument."""

from __future__ import annotations

import sys
from collections.abc import Sequence

USAGE = "usage: python -m src.interfaces.workers {video|ai|cli} [options]  (--help after one for more)"


def main(argv: Sequence[str]) -> int:
    if not argv or argv[0] not in ("video", "ai", "cli"):
        print(USAGE, file=sys.stderr)
        return 2
    command, rest = argv[0], list(argv[1:])
    if command == "video":
        from src.interfaces.workers.video.main import main as video

        return video(rest)
    if command == "ai":
        from src.interfaces.workers.ai.main import main as ai

        return ai(rest)
    from src.interfaces.cli import main as cli

    return cli(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
