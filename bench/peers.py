"""The competitors' own virtualenv (``bench/.venv-peers``), kept apart from the project's.

Celery, kombu and Procrastinate never enter reelqueue's requirements: the peer benchmarks create
this environment on first use and run the competitor sides with its interpreter.

    python -m bench.peers        # create or update it, print its python
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

VENV = Path(__file__).resolve().parent / ".venv-peers"
PACKAGES = ("celery[sqs]==5.7.0", "procrastinate==3.10.0", "psycopg[binary]==3.3.9", "boto3", "redis")
STAMP = VENV / "reelqueue-peers.txt"


def python() -> str:
    """The peers' interpreter, creating the environment when it is missing or out of date."""
    wanted = "\n".join(PACKAGES)
    exe = VENV / "bin" / "python"
    if not exe.exists() or not STAMP.exists() or STAMP.read_text() != wanted:
        print(f"creating {VENV} with {', '.join(PACKAGES)} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(exe), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        *PACKAGES], check=True)
        STAMP.write_text(wanted)
    return str(exe)


def versions() -> str:
    """Installed versions of the competitors, for the report."""
    code = ("import importlib.metadata as m;"
            "print(', '.join(f'{p} {m.version(p)}' for p in ('celery','kombu','procrastinate','psycopg')))")
    return subprocess.run([python(), "-c", code], check=True, capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    print(python())
    print(versions())
