"""gunicorn settings: `gunicorn -c config/gunicorn.conf.py config.wsgi:application`.

Binds 127.0.0.1:8000 unless TANYS_BIND says otherwise (the image sets 0.0.0.0:8000 for
its container network), and refuses to start when DEBUG is on and the bind reaches beyond
this machine: a debug page shows the settings and the process environment.
"""

import os

bind = [address.strip() for address in os.environ.get("TANYS_BIND", "127.0.0.1:8000").split(",")]
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))


def on_starting(server):  # type: ignore[no-untyped-def]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings

    from config.security import refuse_public_debug_bind

    refuse_public_debug_bind(
        debug=settings.DEBUG, addresses=server.cfg.bind, default_host="0.0.0.0"
    )
