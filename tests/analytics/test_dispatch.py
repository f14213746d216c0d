"""One function runs a task in-process or queues it; neither way fails its caller."""

from __future__ import annotations

import socket

import pytest

from analytics import dispatch
from analytics.models import WaveComputation
from tests.conftest import sending_to
from tests.factories import WaveFactory

pytestmark = pytest.mark.django_db


def test_embedded_mode_runs_the_task_here_and_keeps_its_failure_from_the_caller(
    embedded_tasks,
):
    # A wave id that does not exist: the task's service answers "no wave".
    assert dispatch.run_or_queue("analytics.tasks.recompute_wave_estimates", 987654) is True
    assert dispatch.in_process()
    # A retry meant for the broker only is not run again in the same process.
    assert dispatch.run_or_queue("analytics.tasks.resume_pending_work", broker_only=True) is False
    # A task that raises (an id that is not a number) is logged, not raised into the caller.
    assert dispatch.run_or_queue("analytics.tasks.recompute_wave_estimates", "not-an-id")


def test_an_unreachable_broker_is_reported_and_the_work_left_pending():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    wave = WaveFactory()
    WaveComputation.objects.create(wave=wave, dirty=True)
    called = []
    with sending_to(f"redis://127.0.0.1:{port}/0", "nowhere"):
        queued = dispatch.run_or_queue(
            "analytics.tasks.recompute_wave_estimates",
            wave.pk,
            on_broker_error=lambda: called.append(True),
        )
    assert queued is False and called == [True]
