"""Microdata export: CSV with Russian labels and XLSX, beside PostgreSQL COPY of the same rows.

Uses the synthetic wave BENCH1M (1,000,000 interviews of the informal-networks
questionnaire), generating it when the bench database does not hold it yet (a few minutes;
the indicators benchmark uses the same wave). Reports, next to `COPY (SELECT ... answers
...) TO STDOUT` of the same rows in the same run:

* the CSV export of a wave whose store is empty (the first export after an upgrade, say:
  the store is filled first, then read), against the goal of 1.5x the COPY time;
* the CSV export with the store current (what a researcher waits for: every recomputation
  brings the store up to date), rows per second and peak memory;
* XLSX on the first 100,000 interviews.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path

WAVE = "BENCH1M"
N = int(os.environ.get("BENCH_EXPORT_N", "1000000"))
XLSX_N = int(os.environ.get("BENCH_EXPORT_XLSX_N", "100000"))


class PeakMemory:
    """Peak resident set size of this process while the block runs, sampled every 20 ms."""

    def __init__(self) -> None:
        import psutil

        self.process = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakMemory:
        self.base = self.process.memory_info().rss
        self.peak = self.base
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def _wave():
    from django.core.management import call_command

    from surveys.models import Survey, Wave

    wave = Wave.objects.filter(code=WAVE, survey__code="informal-networks").first()
    if wave is None or wave.submissions.count() < N:
        if not Survey.objects.filter(code="informal-networks").exists():
            instrument = (
                Path(__file__).resolve().parents[1]
                / "surveys"
                / "instruments"
                / "informal_networks.xlsx"
            )
            call_command("import_xlsform", str(instrument), survey="informal-networks")
        call_command(
            "generate_demo_wave", wave=WAVE, n=N, geography="KZ2022", replace=wave is not None
        )
        wave = Wave.objects.get(code=WAVE, survey__code="informal-networks")
    return wave


def _copy_baseline(wave_id: int) -> tuple[float, int]:
    """COPY of the same interviews (design fields and answers JSON) to nowhere."""
    from django.db import connection

    from analytics.exports.reader import MicrodataSelection, fetch_queryset

    submissions = MicrodataSelection(wave_ids=(wave_id,)).submissions()
    sql, params = fetch_queryset(submissions).query.sql_with_params()
    started = time.perf_counter()
    size = 0
    with connection.cursor() as cursor:
        statement = cursor.cursor.mogrify(sql, params)
        with cursor.cursor.copy(f"COPY ({statement}) TO STDOUT") as copy:
            for chunk in copy:
                size += len(chunk)
    return time.perf_counter() - started, size


def run() -> list[str]:
    from django.db import connection

    from analytics.exports import MicrodataSelection, write_microdata

    wave = _wave()
    rows = wave.submissions.count()
    lines = [f"wave {WAVE}: {rows:,} interviews ({connection.vendor})"]
    selection = MicrodataSelection(wave_ids=(wave.pk,), language="ru", values="labels")
    codebook = selection.codebook()
    lines.append(f"{len(codebook.variables)} columns per row")
    if connection.vendor == "postgresql":
        copy_seconds, size = _copy_baseline(wave.pk)
        lines.append(
            f"PostgreSQL COPY of the same rows: {copy_seconds:.1f} s, {rows / copy_seconds:,.0f} rows/s "
            f"({size / 1e6:,.0f} MB)"
        )
    else:
        copy_seconds = None
    from django.conf import settings

    from analytics.store import WaveStore

    with tempfile.TemporaryDirectory() as folder:
        settings.MEDIA_ROOT = Path(folder) / "media"  # a store of this run only
        path = Path(folder) / "bench.csv"
        with PeakMemory() as memory:
            started = time.perf_counter()
            written = write_microdata(selection, "csv", path, codebook=codebook)
            seconds = time.perf_counter() - started
        ratio = (
            f" = {seconds / copy_seconds:.2f}x the COPY time (goal 1.5x)" if copy_seconds else ""
        )
        size = sum(f.stat().st_size for f in WaveStore(wave.pk).folder.iterdir())
        lines.append(
            f"CSV, Russian labels, store empty (filled first): {written:,} rows in "
            f"{seconds:.1f} s{ratio}; {written / seconds:,.0f} rows/s; store {size / 1e6:,.0f} MB "
            f"on disk; peak memory {memory.peak / 2**20:,.0f} MB"
        )
        path.unlink()
        path = Path(folder) / "bench.csv"
        with PeakMemory() as memory:
            started = time.perf_counter()
            written = write_microdata(selection, "csv", path, codebook=codebook)
            seconds = time.perf_counter() - started
        ratio = f", {copy_seconds / seconds:.1f}x the COPY speed" if copy_seconds else ""
        lines.append(
            f"CSV, Russian labels, store current: {written:,} rows in {seconds:.1f} s = "
            f"{written / seconds:,.0f} rows/s (goal 70,000){ratio}; file {path.stat().st_size / 1e6:,.0f} MB"
        )
        lines.append(
            f"peak memory {memory.peak / 2**20:,.0f} MB (goal < 300 MB; "
            f"{(memory.peak - memory.base) / 2**20:,.0f} MB above the {memory.base / 2**20:,.0f} MB before)"
        )
        path.unlink()
        if XLSX_N:
            small = MicrodataSelection(
                wave_ids=(wave.pk,), language="ru", values="labels", limit=XLSX_N
            )
            xlsx = Path(folder) / "bench.xlsx"
            started = time.perf_counter()
            written = write_microdata(small, "xlsx", xlsx)
            seconds = time.perf_counter() - started
            lines.append(
                f"XLSX, Russian labels: {written:,} rows in {seconds:.1f} s = {written / seconds:,.0f} rows/s (goal 6,000)"
            )
    return lines
