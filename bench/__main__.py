"""Run the benchmarks: `python -m bench [name ...]` (or `make bench`).

Each module `bench/bench_*.py` defines `run() -> list[str]`, returning the lines it reports.
Every figure is printed beside a baseline measured in the same process (a bare insert,
PostgreSQL COPY, a reference library), so a slow or busy machine still gives ratios that
compare. Benchmarks run against the database in DATABASE_URL (PostgreSQL for the figures
in the README) and create the database when it does not exist.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
import time
from pathlib import Path


def ensure_database() -> None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        return
    import psycopg

    name = url.rsplit("/", 1)[1].split("?")[0]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    ensure_database()
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    here = Path(__file__).resolve().parent
    names = [m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_")]
    wanted = [n for n in names if not argv or any(a in n for a in argv)]
    if not wanted:
        print(f"no benchmark matches {argv}; available: {', '.join(names)}")
        return 1
    if len(wanted) > 1:
        # One process per benchmark, so peak-memory figures are each benchmark's own.
        codes = [subprocess.call([sys.executable, "-m", "bench", name]) for name in sorted(wanted)]
        return max(codes)
    for name in wanted:
        module = importlib.import_module(f"bench.{name}")
        print(
            f"== {name}: {(module.__doc__ or '').strip().splitlines()[0] if module.__doc__ else ''}",
            flush=True,
        )
        started = time.perf_counter()
        for line in module.run():
            print(f"   {line}", flush=True)
        print(f"   ({time.perf_counter() - started:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
