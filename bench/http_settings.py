"""Settings of the HTTP benchmark's gunicorn: the platform's, plus a bare comparison view."""

from config.settings import *  # noqa: F401,F403

ROOT_URLCONF = "bench.http_urls"
