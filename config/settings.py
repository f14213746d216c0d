"""Tanys settings: one file, read from the environment.

With no variables set the platform runs embedded: SQLite in the repo folder, Celery tasks
executed in-process, DEBUG on. Production sets DATABASE_URL, CELERY_BROKER_URL (or
REDIS_URL), SECRET_KEY, ALLOWED_HOSTS and DEBUG=0; nothing else differs.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from config.security import NONCE, inline_style_hashes, refuse_public_debug_hosts

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "embedded-mode-only-not-secret"  # noqa: S105 - used only with DEBUG on
if not DEBUG and not os.environ.get("ALLOWED_HOSTS", "").strip():
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off.")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")
# With DEBUG on an error page shows settings and environment: only this machine may see it.
refuse_public_debug_hosts(debug=DEBUG, allowed_hosts=ALLOWED_HOSTS)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "surveys",
    "analytics",
    "audit",
    "odk",
    "apitokens",
    "collect",
    "access",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.gzip.GZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "surveys.ratelimit.SurveyLinkRateLimitMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.unavailable.DatabaseUnavailableMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a lockout into the lockout page
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the in-process task runner and the web server share the file;
    # IMMEDIATE transactions take the write lock when they begin, so a writer waits for the
    # other one (up to the timeout) instead of failing at once with "database is locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The fixed statements of the per-request paths (`config.rows.cursor`: a device's
    # interview, its token, the recomputation mark) bind their parameters on the server and
    # are prepared after this many runs on a connection; Django's own queries bind on the
    # client and are never prepared. Empty: no prepared statements, for a pooler in
    # transaction mode that cannot keep them (PgBouncer before 1.21).
    threshold = os.environ.get("DB_PREPARE_THRESHOLD", "5")
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
        int(threshold) if threshold.strip() else None
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# Languages: Kazakh is canonical, Russian and English complete.
LANGUAGE_CODE = os.environ.get("LANGUAGE_CODE", "kk")
LANGUAGES = [("kk", _("Kazakh")), ("ru", _("Russian")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_NAME = "tanys_language"
TIME_ZONE = os.environ.get("TIME_ZONE", "Asia/Almaty")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
MEDIA_URL = "media/"
# Uploaded XLSForms: a real questionnaire is well under this.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(
    os.environ.get("DATA_UPLOAD_MAX_MEMORY_SIZE", str(5 * 1024 * 1024))
)
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE
# Uploaded XLSForms: refused above this size, and an .xlsx also when it unpacks to more than
# this, holds more files, or has a part compressed more than this ratio (decompression bombs).
XLSFORM_MAX_UPLOAD_BYTES = int(os.environ.get("XLSFORM_MAX_UPLOAD_BYTES", str(10 * 1024 * 1024)))
XLSFORM_MAX_UNCOMPRESSED_BYTES = int(
    os.environ.get("XLSFORM_MAX_UNCOMPRESSED_BYTES", str(50 * 1024 * 1024))
)
XLSFORM_MAX_ENTRIES = int(os.environ.get("XLSFORM_MAX_ENTRIES", "2000"))
XLSFORM_MAX_COMPRESSION_RATIO = int(os.environ.get("XLSFORM_MAX_COMPRESSION_RATIO", "100"))
# JSON request bodies nested deeper than this are refused with a 400 (web form and API).
JSON_MAX_DEPTH = int(os.environ.get("JSON_MAX_DEPTH", "64"))

LOGIN_URL = "admin:login"

# Redis: broker for Celery and cache, when configured.
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", "") or None
# Embedded mode: no broker configured means tasks run in-process, the same code.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = int(os.environ.get("CELERY_TASK_TIME_LIMIT", "1800"))
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
# Queue that tasks go to and workers consume by default.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
# Task modules outside the autodiscovered tasks.py files.
CELERY_IMPORTS = ("analytics.exports.tasks",)
# Microdata exports up to this many interviews are built in the request; larger ones run as jobs.
EXPORT_DIRECT_MAX_ROWS = int(os.environ.get("EXPORT_DIRECT_MAX_ROWS", "5000"))
# Interviews a tablet may send in one sync request (more gets 413, saying the limit).
COLLECT_SYNC_MAX_INTERVIEWS = int(os.environ.get("TANYS_SYNC_MAX_INTERVIEWS", "500"))
# Seconds a wave's export cache waits after a recomputation before parsing new interviews,
# so a stream of interviews costs one update a minute (exports catch up by themselves).
EXPORT_CACHE_DELAY = float(os.environ.get("TANYS_EXPORT_CACHE_DELAY", "60"))
# Seconds an export job may run: the build_export task's hard time limit, and the age after
# which a job still "running" lost its worker and is taken over.
EXPORT_TIME_LIMIT = int(os.environ.get("TANYS_EXPORT_TIME_LIMIT", str(4 * 3600)))
# Days a finished export file is kept; then it is deleted and its job marked expired.
EXPORT_RETENTION_DAYS = float(os.environ.get("TANYS_EXPORT_RETENTION_DAYS", "7"))
# Seconds between a wave's first new interview and the recomputation that includes it.
RECOMPUTE_DELAY = float(os.environ.get("TANYS_RECOMPUTE_DELAY", "0.5"))
# Embedded mode (no broker): recompute a wave's estimates on a background thread after the
# request that changed its interviews has answered (False: inside that request).
EMBEDDED_RECOMPUTE_IN_BACKGROUND = env_bool("TANYS_EMBEDDED_RECOMPUTE_IN_BACKGROUND", True)
# Seconds without a heartbeat after which a recomputation's claim is taken over.
COMPUTATION_STALE_SECONDS = float(os.environ.get("TANYS_COMPUTATION_STALE_SECONDS", "120"))
# Periodic work (run by `celery beat`): pending recomputations and export jobs whose message
# never reached the broker (Redis down) are queued again; old export files are deleted.
CELERY_BEAT_SCHEDULE = {
    "resume-pending-work": {
        "task": "analytics.tasks.resume_pending_work",
        "schedule": float(os.environ.get("TANYS_RESUME_INTERVAL", "30")),
    },
    "expire-exports": {"task": "analytics.exports.tasks.expire_exports", "schedule": 3600.0},
}
# Files and folders written under MEDIA_ROOT are the owner's only.
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700

if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apitokens.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "config.schema.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tanys API",
    "DESCRIPTION": "Surveys, waves, regions, indicator estimates and exports.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Security ------------------------------------------------------------------------------
# Production (DEBUG=0) is HTTPS only: HTTP is redirected, HSTS tells browsers never to try
# HTTP again, cookies are sent over HTTPS only. The embedded mode serves plain HTTP on
# 127.0.0.1. Each value can be overridden from the environment (README: Production).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # the container's health check speaks plain HTTP
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# X-Forwarded-Proto is believed only when a proxy in front sets it (and strips a client's).
TANYS_BEHIND_PROXY = env_bool("TANYS_BEHIND_PROXY", False)
if TANYS_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy (config.security): our pages load scripts, styles and images only
# from this site and run no inline script. Inline <style> elements are refused except with
# the request's nonce or a known hash (matplotlib's chart style, the admin change list);
# style attributes stay allowed because the charts' SVG carries them (they run no code, and
# img-src keeps them from loading anything from elsewhere).
CONTENT_SECURITY_POLICY: dict[str, list[str]] = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", NONCE, *inline_style_hashes()],
    "style-src-attr": ["'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
CONTENT_SECURITY_POLICY_REPORT_ONLY = env_bool("TANYS_CSP_REPORT_ONLY", False)

# Login throttling (django-axes) on every password login: the admin, the dashboard and
# /api/token/. After AXES_FAILURE_LIMIT failures for one username from one address, that
# pair is refused, the right password too, for AXES_COOLOFF_TIME hours.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("TANYS_LOGIN_FAILURE_LIMIT", "10"))
AXES_COOLOFF_TIME = float(os.environ.get("TANYS_LOGIN_COOLOFF_HOURS", "1"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True  # failures are kept; successful logins are not logged
AXES_LOCKOUT_CALLABLE = "config.security.lockout_response"
AXES_USERNAME_FORM_FIELD = "username"
AXES_VERBOSE = False
if TANYS_BEHIND_PROXY:
    AXES_IPWARE_PROXY_COUNT = 1
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]

# API tokens (apitokens): stored hashed, valid this many days, revocable.
API_TOKEN_DAYS = int(os.environ.get("TANYS_API_TOKEN_DAYS", "90"))

# Rate limit of the public survey links (surveys.ratelimit): token buckets per link and
# browser (a signed cookie issued with the page), or per link and address without one.
RATE_LIMIT_ENABLED = env_bool("TANYS_RATE_LIMIT", True)
RATE_LIMIT_CLIENT_BURST = float(os.environ.get("TANYS_RATE_CLIENT_BURST", "30"))
RATE_LIMIT_CLIENT_PER_MINUTE = float(os.environ.get("TANYS_RATE_CLIENT_PER_MINUTE", "10"))
RATE_LIMIT_COOKIELESS_BURST = float(os.environ.get("TANYS_RATE_COOKIELESS_BURST", "200"))
RATE_LIMIT_COOKIELESS_PER_MINUTE = float(os.environ.get("TANYS_RATE_COOKIELESS_PER_MINUTE", "120"))
RATE_LIMIT_COOKIELESS_POST_COST = float(os.environ.get("TANYS_RATE_COOKIELESS_POST_COST", "20"))
RATE_LIMIT_COOKIE_SECONDS = int(os.environ.get("TANYS_RATE_COOKIE_SECONDS", str(6 * 3600)))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # django-axes reports every successful login at INFO; failures and lockouts are warnings.
    "loggers": {"axes": {"level": "WARNING"}},
}

# ODK Collect: the largest upload (interview and attachments of one POST) and the largest
# single attachment accepted; Collect splits bigger uploads into several POSTs.
ODK_MAX_SUBMISSION_BYTES = int(os.environ.get("TANYS_ODK_MAX_SUBMISSION_BYTES", str(10_000_000)))
ODK_MAX_ATTACHMENT_BYTES = int(os.environ.get("TANYS_ODK_MAX_ATTACHMENT_BYTES", str(10_000_000)))
