"""Embedded mode: the time of a web questionnaire submission (a JSON POST through the whole Django stack) on a wave of demo size, with the estimates recomputed on the background thread, beside the same submission with estimates switched off and with them recomputed in the request.

A SYNTHETIC wave of 3,000 interviews (the demo's size) gets a public link; each round
posts complete interviews one after another through Django's test client, as a browser
would, with no broker (tasks in-process). Reports the median and p99 of the requests.
Goal: p99 < 100 ms with estimates on.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

N_WAVE = int(os.environ.get("BENCH_EMBEDDED_WAVE", "3000"))
POSTS = int(os.environ.get("BENCH_EMBEDDED_POSTS", "300"))
IN_REQUEST_POSTS = int(os.environ.get("BENCH_EMBEDDED_IN_REQUEST_POSTS", "15"))


SPHERES = ["KG", "SCH", "UNI", "MED", "JOB", "POL", "CRT", "DOC", "LND", "INF", "BUS"]
TRUST = ["TR_GOV", "TR_CRT", "TR_POL", "TR_AKM", "TR_PAR", "TR_MED", "TR_NGO"]


def complete_answers() -> dict[str, str]:
    """A full, valid interview as the browser sends it (text values)."""
    return {
        "REGION": "KZ-75", "SETTLEMENT": "1", "SEX": "2", "BIRTH_YEAR": "1985", "EDU": "5",
        "EMP": "2", "ETH": "1", "HH_SIZE": "3", "INCOME": "3", "P1": "1", "P2": "2",
        **{f"C_{s}": "2" for s in SPHERES},
        "E1": "3", "E2": "4", "T1": "2", "R1": "2", "A1": "1", "A2": "3", "A3": "2",
        **{item: "2" for item in TRUST},
        # the indirect designs: the server draws the arm, the other arm's count is dropped
        "LE_C": "1", "LE_T": "1", "RR_E1": "2", "CW_E1": "1",
    }  # fmt: skip


def _wave():
    from bench.bench_estimates import bench_wave

    return bench_wave(n=N_WAVE, code="BENCHDEMO", survey_code="bench-embedded")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run() -> list[str]:
    from django.conf import settings
    from django.test import Client

    from analytics import dispatch, services
    from config.celery import app
    from surveys.services import create_links

    settings.MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="tanys-bench-embedded-"))
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings.RATE_LIMIT_ENABLED = False  # one client posting hundreds: not what is measured
    app.conf.task_always_eager = True
    wave = _wave()
    base_n = wave.submissions.count()
    first_new = None
    link = create_links(wave=wave, kind="public", count=1, label="bench")[0]
    client = Client()
    services.recompute_wave(wave_id=wave.pk, force=True)  # warm: current estimates, kept sums

    def post_many(count: int) -> list[float]:
        nonlocal first_new
        times = []
        for _ in range(count):
            body = {
                "instance_id": str(uuid.uuid4()),
                "language": "ru",
                "answers": complete_answers(),
            }
            started = time.perf_counter()
            response = client.post(
                f"/s/{link.token}/", json.dumps(body), content_type="application/json"
            )
            times.append(time.perf_counter() - started)
            assert response.status_code in (200, 201), response.content[:300]
            if first_new is None:
                first_new = wave.submissions.order_by("-id").values_list("pk", flat=True)[0]
        return times

    def figures(times: list[float]) -> str:
        return (
            f"median {statistics.median(times) * 1000:.0f} ms, "
            f"p99 {_percentile(times, 0.99) * 1000:.0f} ms ({len(times)} posts)"
        )

    lines = [f"wave {wave.code}: {base_n:,} SYNTHETIC interviews, one public link"]
    real_mark = services.mark_wave_dirty
    try:
        services.mark_wave_dirty = lambda *, wave_id: False  # estimates switched off
        off = post_many(POSTS)
        services.mark_wave_dirty = real_mark
        lines.append(f"estimates switched off (baseline): {figures(off)}")

        settings.EMBEDDED_RECOMPUTE_IN_BACKGROUND = True
        services.mark_wave_dirty(wave_id=wave.pk)
        dispatch.wait_for_background(600)
        runs = services.ResultSet.objects.filter(wave=wave).order_by("-pk")[0].pk
        started = time.perf_counter()
        background = post_many(POSTS)
        posting = time.perf_counter() - started
        dispatch.wait_for_background(600)
        current = services.ResultSet.objects.get(wave=wave, is_current=True)
        runs = current.pk - runs  # result sets made meanwhile (old ones are pruned)
        lines.append(
            f"estimates recomputed on the background thread: {figures(background)} "
            f"(goal p99 < 100 ms); p99 {_percentile(background, 0.99) / _percentile(off, 0.99):.2f}x "
            f"the baseline; {runs} runs coalesced the {POSTS} posts made in {posting:.1f} s; "
            f"estimates current with {current.n_interviews:,} interviews "
            f"{'(all of them)' if current.n_interviews == wave.submissions.count() else ''}"
        )

        settings.EMBEDDED_RECOMPUTE_IN_BACKGROUND = False
        in_request = post_many(IN_REQUEST_POSTS)
        lines.append(f"estimates recomputed in the request (before): {figures(in_request)}")
    finally:
        services.mark_wave_dirty = real_mark
        settings.EMBEDDED_RECOMPUTE_IN_BACKGROUND = True
        dispatch.wait_for_background(600)
        if first_new is not None:
            wave.submissions.filter(pk__gte=first_new).delete()
        link.delete()
        services.recompute_wave(wave_id=wave.pk, force=True)
    return lines
