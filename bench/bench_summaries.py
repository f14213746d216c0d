"""Question summaries of every closed question of a wave of 100,000 synthetic interviews, whole population and every breakdown, beside the full recomputation of the wave's estimates.

Reuses the SYNTHETIC wave BENCH100K of the bench database when it exists. Reports: the
export cache brought up to date (once per wave, the answers the summaries read), the
estimates' full recomputation (the baseline, in the same run), a cold first view of the
whole population and of the sex and region breakdowns (reading the answers, the design
and every share with its publication rules), the warm-up a recomputation does (every
breakdown, answers read once), and the per-share path (`single_choice` /
`multiple_choice`, one `Design.mean` per share) on a few questions, extrapolated.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

N = int(os.environ.get("BENCH_SUMMARIES_N", "100000"))
WAVE_CODE = os.environ.get("BENCH_SUMMARIES_WAVE", "BENCH100K")
PER_SHARE_QUESTIONS = 6


def run() -> list[str]:
    import numpy as np
    from django.conf import settings
    from django.core.cache import cache

    from analytics import snapshot, summaries
    from analytics.computation import compute_wave
    from analytics.exports.reader import MicrodataSelection
    from analytics.services import store_result_set
    from analytics.stats.summaries import multiple_choice, single_choice
    from analytics.store import update_wave_store
    from bench.bench_estimates import PeakMemory, bench_wave

    lines = []
    started = time.perf_counter()
    wave = bench_wave(N, WAVE_CODE)
    n = wave.submissions.count()
    lines.append(
        f"wave {wave.code}: {n:,} SYNTHETIC interviews ({time.perf_counter() - started:.1f} s to find or generate)"
    )
    settings.MEDIA_ROOT = Path(
        os.environ.get("BENCH_MEDIA", tempfile.mkdtemp(prefix="tanys-bench-"))
    )
    started = time.perf_counter()
    added = update_wave_store(wave.pk)
    lines.append(
        f"export cache brought up to date ({added:,} interviews parsed, once per wave): {time.perf_counter() - started:.1f} s"
    )

    snap, _how = snapshot.refresh(wave.pk)
    started = time.perf_counter()
    computed = compute_wave(wave, snap)
    estimates = time.perf_counter() - started
    store_result_set(computed)
    lines.append(
        f"baseline: full recomputation of the wave's estimates ({len(computed.rows)} cells): {estimates:.2f} s"
    )

    selection = MicrodataSelection(wave_ids=(wave.pk,))
    codebook = selection.codebook()
    cells = 0
    for breakdown in ("", "sex", "region"):
        with PeakMemory() as memory:
            started = time.perf_counter()
            result = summaries.compute_summaries(wave, codebook, selection, breakdown)
            seconds = time.perf_counter() - started
        cells = sum(len(q.cells) for q in result.questions)
        lines.append(
            f"cold first view, {breakdown or 'whole population'}: {len(result.questions)} questions, "
            f"{cells:,} cells: {seconds:.2f} s = {seconds / estimates:.2f}x the estimates; "
            f"peak RSS {memory.peak / 2**30:.2f} GB"
        )
    cache.clear()
    started = time.perf_counter()
    warmed = summaries.warm_summaries(wave.pk)
    warm = time.perf_counter() - started
    lines.append(
        f"warm-up after a recomputation, {len(warmed)} pages (whole + every breakdown): {warm:.2f} s = {warm / estimates:.2f}x the estimates"
    )

    # The per-share path on a few questions, extrapolated to all of them.
    inputs = summaries._inputs(wave, codebook, selection)
    design = inputs.design
    questions = inputs.questions[:PER_SHARE_QUESTIONS]
    shares_total = sum(len(q.answers) for q in inputs.questions)
    shares_timed = sum(len(q.answers) for q in questions)
    started = time.perf_counter()
    for q in questions:
        base = q.base
        if q.kind == "select_one":
            values = np.where(base, 0.0, np.nan)
            for code, hits in zip(q.codes, q.hits, strict=True):
                values[hits] = code
            single_choice(design, values, q.codes)
        else:
            multiple_choice(design, dict(zip(q.codes, q.hits, strict=True)), base)
    per_share = (time.perf_counter() - started) / shares_timed
    started = time.perf_counter()
    summaries.whole_shares(design, inputs.questions)
    fast = time.perf_counter() - started
    lines.append(
        f"shares of the whole population, all {shares_total} answers: {fast:.2f} s here vs the "
        f"per-share path {per_share * shares_total:.1f} s (extrapolated from {shares_timed}) = "
        f"{per_share * shares_total / fast:.0f}x faster"
    )
    return lines
