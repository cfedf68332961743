"""Every peer benchmark of issue 8, one after another, as one Markdown report.

    python -m bench.run_all [--quick]

Runs ``bench.drain_sqs`` (500 jobs), ``bench.drain_sql`` (5,000 jobs) and ``bench.api_enqueue``
(10 s per side), each at its defaults; ``--quick`` runs a fifth of the work, to check the setup.
Each benchmark is also runnable alone. Needs Postgres on 127.0.0.1:5432 (user postgres) and Redis
on 127.0.0.1:6379; creates ``bench/.venv-peers`` for Celery and Procrastinate on first use.
"""

from __future__ import annotations

import argparse
import os
import time

from bench import api_enqueue, drain_sql, drain_sqs, peers
from bench.harness import log, machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fifth of the jobs and time")
    args = parser.parse_args()
    scale = 5 if args.quick else 1
    started = time.monotonic()
    load_at_start = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    peers.python()
    sections: list[tuple[str, str]] = []

    log("drain_sqs ...")
    sections.append(("Drain 500 no-op jobs from SQS (moto server, counting proxy)",
                     drain_sqs.render(drain_sqs.run_all(jobs=500 // scale))))
    log("drain_sql ...")
    sections.append(("Drain 5,000 no-op jobs from Postgres",
                     drain_sql.render(drain_sql.run_all(jobs=5000 // scale))))
    log("api_enqueue ...")
    sections.append(("API enqueue under gunicorn",
                     api_enqueue.render(api_enqueue.run_all(duration_s=10 / scale))))

    print(f"Machine: {machine()} (at the end; {load_at_start} at the start)  ")
    print(f"Peers: {peers.versions()}  ")
    print(f"Total time: {time.monotonic() - started:.0f} s\n")
    for title, body in sections:
        print(f"#### {title}\n\n{body}\n")


if __name__ == "__main__":
    main()
