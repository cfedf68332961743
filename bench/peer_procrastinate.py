"""Procrastinate's side of the SQL drain benchmark; runs with ``bench/.venv-peers``'s interpreter only.

    python -m bench.peer_procrastinate setup CONNINFO 5000    # apply the schema, defer no-op jobs
    python -m bench.peer_procrastinate work CONNINFO 4        # one worker, concurrency 4, until caught up

The task is an ``async`` no-op (Procrastinate's concurrency runs async tasks side by side; its
docs advise against concurrency with blocking sync tasks). Worker defaults otherwise
(LISTEN/NOTIFY on, jobs kept after completion).
"""

from __future__ import annotations

import logging
import sys

from procrastinate import App, PsycopgConnector

QUEUE = "bench"
CHUNK = 1000


def make_app(conninfo: str) -> App:
    app = App(connector=PsycopgConnector(conninfo=conninfo))

    @app.task(name="bench.noop", queue=QUEUE)
    async def noop(n: int) -> None:
        return None

    return app


def setup(conninfo: str, count: int) -> None:
    app = make_app(conninfo)
    with app.open():
        app.schema_manager.apply_schema()
        task = app.tasks["bench.noop"]
        for start in range(0, count, CHUNK):
            task.batch_defer(*({"n": n} for n in range(start, min(start + CHUNK, count))))


def work(conninfo: str, concurrency: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    app = make_app(conninfo)
    with app.open():
        app.run_worker(queues=[QUEUE], concurrency=concurrency, wait=False)


if __name__ == "__main__":
    command, conninfo, number = sys.argv[1], sys.argv[2], int(sys.argv[3])
    setup(conninfo, number) if command == "setup" else work(conninfo, number)
