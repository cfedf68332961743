"""WSGI entry point: ``gunicorn apps.reelqueue_api.wsgi``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.reelqueue_api.settings")

application = get_wsgi_application()
