"""The API baseline: a minimal Django + DRF project whose one view validates a job and inserts its row.

No outbox, no queue message, no progress lookup, no throttle: what "just insert the row" costs
under the same gunicorn, Postgres and authentication (DRF token) as reelqueue's API.

    BENCH_BASELINE_DATABASE_URL=postgresql://... python -m bench.baseline_api setup   # tables + a token
    gunicorn bench.baseline_api.wsgi:application
"""
