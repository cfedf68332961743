"""gunicorn settings for the API image: ``gunicorn -c apps/reelqueue_api/gunicorn_conf.py``."""

import os

wsgi_app = "apps.reelqueue_api.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
graceful_timeout = 30
accesslog = "-"
logger_class = "apps.reelqueue_api.logging.RedactingGunicornLogger"
