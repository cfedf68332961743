"""Django settings, read from ``REELQUEUE_*`` environment variables (see docs/configuration.md).

The library's settings (database, queue, storage, ...) come from :class:`src.config.Settings`;
only what is Django's own is read here. Both are checked together: a wrong variable raises one
:class:`src.config.SettingsError` naming every problem (``python -m apps.manage`` and the gunicorn
config print it and exit with status 2).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from apps.reelqueue_api.database import django_database
from src.config import FALSE, TRUE, Process, Settings, SettingsError, variable

THROTTLE_RATE = re.compile(r"[1-9][0-9]*/(second|minute|hour|day)")


def _env(name: str, default: str = "") -> str:
    return os.environ.get(f"REELQUEUE_{name}", default)


def _flag(name: str, default: bool = False) -> bool:
    return _env(name, "1" if default else "0").strip().lower() in TRUE


def _list(name: str, default: str) -> list[str]:
    return [item.strip() for item in _env(name, default).split(",") if item.strip()]


def _own_problems() -> list[str]:
    """The rules of the variables only the API reads."""
    problems = []
    debug = _env("DEBUG", "0").strip().lower()
    if debug not in (*TRUE, *FALSE):
        problems.append(f"{variable('debug')}={debug!r}: not a yes/no value; allowed: "
                        f"{', '.join(TRUE)} or {', '.join(FALSE)}")
    if not _env("SECRET_KEY") and debug not in TRUE:
        problems.append(f"{variable('secret_key')} is empty: the API needs a secret key "
                        f"(or {variable('debug')}=1 for local development)")
    rate = _env("THROTTLE_USER_POSTS", "60/minute").strip()
    if not THROTTLE_RATE.fullmatch(rate):
        problems.append(f"{variable('throttle_user_posts')}={rate!r}: not a rate; allowed: "
                        "<requests>/<second|minute|hour|day>, e.g. 60/minute")
    return problems


def _library_settings() -> Settings:
    """The library's settings for the API process, checked with the API's own variables."""
    problems = _own_problems()
    try:
        library = Settings.from_env(process=Process.API)
    except SettingsError as exc:
        problems = exc.problems + problems
    if problems:
        raise SettingsError(problems)
    return library


BASE_DIR = Path(__file__).resolve().parent.parent
REELQUEUE = _library_settings()

DEBUG = _flag("DEBUG")
SECRET_KEY = _env("SECRET_KEY") or "insecure-development-key-do-not-use-in-production"  # DEBUG only
ALLOWED_HOSTS = _list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = _list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets served locally, no CDN
    "apps.jobs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files under gunicorn, no proxy needed
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "apps.reelqueue_api.urls"
WSGI_APPLICATION = "apps.reelqueue_api.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# One database for everything: the library's migrations own the rq_* tables, Django's own the rest.
DATABASES = {"default": django_database(REELQUEUE.database_url)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Throttle counters: Redis when there is one (shared by every API process), else per process.
if REELQUEUE.redis_url:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": REELQUEUE.redis_url, "KEY_PREFIX": "reelqueue-api"}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = _env("STATIC_ROOT", "var/static")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.jobs.authentication.OneQueryTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["apps.jobs.throttling.UserPostRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user_posts": _env("THROTTLE_USER_POSTS", "60/minute").strip()},
    "DEFAULT_PARSER_CLASSES": ["apps.jobs.parsers.BoundedJSONParser"],  # JSON only, bounded
    "DEFAULT_PAGINATION_CLASS": "apps.jobs.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.jobs.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}

SPECTACULAR_SETTINGS = {
    "TITLE": "reelqueue API",
    "DESCRIPTION": "Submit video and AI generation jobs, follow their progress, fetch their outputs.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],  # as every endpoint: a token
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "apps.jobs.schema.add_signed_files"],
    "PATH_CONVERTER_OVERRIDES": {
        "hexid": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "token": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"},
    },
}

# Which URL guard checks user-given URLs (https only, public addresses after DNS resolution).
REELQUEUE_URL_GUARD = "src.infrastructure.net.check_public_url"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"reelqueue": {"()": "apps.reelqueue_api.logging.formatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "reelqueue"}},
    "root": {"handlers": ["console"], "level": REELQUEUE.log_level},
}
