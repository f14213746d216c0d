#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings
    from django.core.management import execute_from_command_line

    from config.security import refuse_public_runserver

    # With DEBUG on, runserver may listen on this machine only (config/security.py).
    refuse_public_runserver(sys.argv, debug=settings.DEBUG)

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
