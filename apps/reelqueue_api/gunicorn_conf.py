"""gunicorn settings for the API image: ``gunicorn -c apps/reelqueue_api/gunicorn_conf.py``.

The API's settings are checked here, in the master, before any worker boots: a wrong
``REELQUEUE_*`` variable prints its message and stops gunicorn with status 2 (a worker that
failed on them would only be started again and again).
"""

import importlib
import os
import sys

from src.config import SettingsError

EXIT_BAD_SETTINGS = 2

try:
    importlib.import_module(os.environ.get("DJANGO_SETTINGS_MODULE", "apps.reelqueue_api.settings"))
except SettingsError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(EXIT_BAD_SETTINGS)

wsgi_app = "apps.reelqueue_api.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
graceful_timeout = 30
accesslog = "-"
logger_class = "apps.reelqueue_api.logging.RedactingGunicornLogger"
