"""Export jobs: their lifecycle, and whether a request is built at once or becomes a job.

`request_export` is the one decision, used by the HTML view and the API alike: a small
microdata selection is built in the request, anything else is queued for a worker. Both
go through an `ExportJob`, so the file, its rows and its expiry are recorded the same way.
`create_export_job`, `run_export_job` and `retry_export_job` are the writes; the Celery
task in `analytics.exports.tasks` only calls `run_export_job`.

A job still running after `EXPORT_TIME_LIMIT` seconds (the task's hard time limit too)
lost its worker: a redelivered message takes it over (`STALE_RUNNING`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from analytics import dispatch
from analytics.exports.codebook import LANGUAGES, write_codebook_xlsx
from analytics.exports.formats import KINDS, XLSX_MAX_ROWS, ExportError
from analytics.exports.reader import MicrodataSelection
from analytics.exports.regional import regional_rows, write_regional
from analytics.exports.writers import write_microdata
from analytics.models import ExportJob
from analytics.private_files import private_file, private_folder
from analytics.selectors import regional_estimates
from surveys.attachments import name_part
from surveys.models import Wave

logger = logging.getLogger(__name__)


def can_export(user: Any, kind: str) -> bool:
    if kind in {"microdata", "codebook"}:
        return bool(user.has_perm("surveys.export_microdata"))
    return bool(user.has_perm("surveys.view_estimates"))


def clean_parameters(*, kind: str, file_format: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """Check a request and return its normalised parameters; ExportError says what is wrong."""
    if kind not in KINDS:
        raise ExportError(_("Unknown export kind: %(kind)s.") % {"kind": kind})
    if file_format not in KINDS[kind]:
        raise ExportError(
            _("%(kind)s exports come as %(formats)s, not %(format)s.")
            % {"kind": kind, "formats": ", ".join(KINDS[kind]), "format": file_format}
        )
    raw_waves = parameters.get("waves") or []
    if not isinstance(raw_waves, list) or not all(isinstance(w, int) for w in raw_waves):
        raise ExportError(_("waves: give a list of wave ids."))
    waves = list(Wave.objects.filter(pk__in=raw_waves).values_list("pk", flat=True))
    unknown = sorted(set(raw_waves) - set(waves))
    if unknown:
        raise ExportError(
            _("waves: no wave with id %(ids)s.") % {"ids": ", ".join(str(i) for i in unknown)}
        )
    language = parameters.get("language") or "ru"
    if language not in LANGUAGES:
        raise ExportError(_("language: choose kk, ru or en."))
    values = parameters.get("values") or "labels"
    if values not in {"labels", "codes"}:
        raise ExportError(_("values: choose labels or codes."))
    cleaned: dict[str, Any] = {"waves": sorted(waves), "language": language, "values": values}
    if kind in {"microdata", "codebook"} and not waves:
        raise ExportError(_("waves: choose at least one wave."))
    if kind == "regional":
        cleaned["geography"] = parameters.get("geography") or ""
        cleaned["indicators"] = [str(i) for i in parameters.get("indicators") or []]
    if kind == "microdata" and file_format == "xlsx":
        rows = MicrodataSelection(wave_ids=tuple(waves)).submissions().count()
        if rows > XLSX_MAX_ROWS:
            raise ExportError(
                _(
                    "An Excel sheet holds at most %(max)s rows and this selection has %(rows)s; choose CSV, SPSS or Stata."
                )
                % {"max": f"{XLSX_MAX_ROWS:,}", "rows": f"{rows:,}"}
            )
    return cleaned


def direct_export_limit() -> int:
    """Microdata selections up to this many interviews are built in the request."""
    return int(getattr(settings, "EXPORT_DIRECT_MAX_ROWS", 5000))


def builds_in_request(*, kind: str, parameters: dict[str, Any]) -> bool:
    """Whether an export is built at once, in the request that asks for it: a microdata
    selection of at most `direct_export_limit` interviews. Anything else is a job."""
    if kind != "microdata":
        return False
    selection = MicrodataSelection(wave_ids=tuple(parameters["waves"]))
    return selection.submissions().count() <= direct_export_limit()


@dataclass(frozen=True)
class ExportRequest:
    job: ExportJob
    built_now: bool  # built in the request (done or failed), rather than queued


def request_export(
    *, user: Any, kind: str, file_format: str, parameters: dict[str, Any]
) -> ExportRequest:
    """Export as a person asks for it, from a page or the API: the one place that decides
    between building the file now and queueing it (`builds_in_request`).

    Either way an `ExportJob` records it: built now, it comes back done (or failed, with
    its reason); queued, it comes back queued and a worker builds it after commit.
    ExportError and PermissionError say why a request is refused.
    """
    job = create_export_job(
        user=user, kind=kind, file_format=file_format, parameters=parameters, queue=False
    )
    built_now = builds_in_request(kind=kind, parameters=job.parameters)
    if built_now:
        run_export_job(job_id=job.pk)
    else:
        _enqueue(job)
    job.refresh_from_db()
    return ExportRequest(job=job, built_now=built_now)


def create_export_job(
    *, user: Any, kind: str, file_format: str, parameters: dict[str, Any], queue: bool = True
) -> ExportJob:
    """Validate and record an export, and queue it (``queue``): the worker starts after the
    transaction commits."""
    if not can_export(user, kind):
        raise PermissionError(_("You do not have permission for this export."))
    cleaned = clean_parameters(kind=kind, file_format=file_format, parameters=parameters)
    cleaned["interface_language"] = translation.get_language() or settings.LANGUAGE_CODE
    with transaction.atomic():
        job = ExportJob.objects.create(
            requested_by=user, kind=kind, file_format=file_format, parameters=cleaned
        )
        if queue:
            _enqueue(job)
    return job


def retry_export_job(*, job: ExportJob) -> ExportJob:
    """Queue a failed job again. Only failed jobs can be retried."""
    with transaction.atomic():
        updated = ExportJob.objects.filter(pk=job.pk, status=ExportJob.Status.FAILED).update(
            status=ExportJob.Status.QUEUED,
            error="",
            stage="",
            rows_done=0,
            rows_total=None,
            started_at=None,
            finished_at=None,
        )
        if not updated:
            raise ExportError(_("Only a failed export can be retried."))
        job.refresh_from_db()
        _enqueue(job)
    return job


def _enqueue(job: ExportJob) -> None:
    dispatch.after_commit(BUILD_EXPORT, job.pk)


def exports_folder() -> Path:
    return Path(settings.MEDIA_ROOT) / "exports"


def export_filename(job: ExportJob) -> str:
    """The job's file on disk (ASCII, unique); people download it as `download_filename`."""
    return f"tanys-{job.kind}-{job.pk}.{job.file_format}"


def download_name(
    waves: list[Wave], kind: str, file_format: str, day: dt.date | None = None
) -> str:
    """What a downloaded file is called: survey, wave(s) and the day it was made,
    ``tanys_<survey>_<wave>[-<wave>...]_<YYYY-MM-DD>.<format>`` for microdata, with the kind
    before the date for the others (``..._codebook_2026-05-01.xlsx``,
    ``..._regional_2026-05-01.csv``). ``waves`` come with their surveys (select_related)."""
    waves = sorted(waves, key=lambda wave: wave.pk)
    parts = ["tanys"]
    surveys = sorted({wave.survey.code for wave in waves})
    if surveys:
        parts.append(name_part("+".join(surveys)))
        parts.append("-".join(name_part(wave.code) for wave in waves))
    if kind != "microdata" or not waves:
        parts.append(kind)
    parts.append((day or timezone.localdate()).isoformat())
    return "_".join(parts) + f".{file_format}"


def download_filename(job: ExportJob) -> str:
    """The file name of a job's download (`download_name`), dated the day it was asked for."""
    waves = list(
        Wave.objects.filter(pk__in=job.parameters.get("waves") or []).select_related("survey")
    )
    day = timezone.localdate(job.created_at) if job.created_at else None
    return download_name(waves, job.kind, job.file_format, day)


BUILD_EXPORT = "analytics.exports.tasks.build_export"


def stale_running() -> dt.timedelta:
    """A job still "running" after this long lost its worker: the task's hard time limit
    is the same setting (EXPORT_TIME_LIMIT), so a live worker never runs that long. A
    redelivered message, or the sweep of `resume_export_jobs`, then takes it over."""
    return dt.timedelta(seconds=settings.EXPORT_TIME_LIMIT)


def run_export_job(*, job_id: int) -> None:
    """Build a queued job's file. Idempotent: a job that is not queued is left alone."""
    now = timezone.now()
    claimed = (
        ExportJob.objects.filter(pk=job_id)
        .filter(
            models.Q(status=ExportJob.Status.QUEUED)
            | models.Q(status=ExportJob.Status.RUNNING, started_at__lt=now - stale_running())
        )
        .update(status=ExportJob.Status.RUNNING, started_at=now, stage="", rows_done=0, error="")
    )
    if not claimed:
        return
    job = ExportJob.objects.get(pk=job_id)
    name = export_filename(job)
    folder = exports_folder()
    partial = folder / f".{name}.part"
    with translation.override(job.parameters.get("interface_language") or settings.LANGUAGE_CODE):
        try:
            private_folder(folder)
            private_file(partial)  # a takeover starts the file again
            rows = _build(job, partial)
            private_file(partial)  # writers that replace the file do not keep its mode
            partial.replace(folder / name)
            ExportJob.objects.filter(pk=job.pk).update(
                status=ExportJob.Status.DONE,
                file=f"exports/{name}",
                rows_done=rows,
                rows_total=rows,
                finished_at=timezone.now(),
            )
        except Exception as exc:  # the reason is stored and shown; the job can be retried
            logger.exception("export job %s failed", job_id)
            if isinstance(exc, OSError):
                reason = _("The export file could not be written: %(error)s") % {"error": exc}
            elif isinstance(exc, ExportError):
                reason = str(exc)
            else:
                reason = _("The export failed unexpectedly (%(error)s: %(detail)s).") % {
                    "error": type(exc).__name__,
                    "detail": exc,
                }
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
            ExportJob.objects.filter(pk=job.pk).update(
                status=ExportJob.Status.FAILED, error=reason, finished_at=timezone.now()
            )


def _build(job: ExportJob, path: Path) -> int:
    params = job.parameters
    if job.kind == "regional":
        waves = (
            Wave.objects.filter(pk__in=params.get("waves") or []) if params.get("waves") else None
        )
        rows = regional_rows(
            regional_estimates(
                waves=waves,
                geography=params.get("geography") or None,
                indicators=params.get("indicators") or None,
            )
        )
        ExportJob.objects.filter(pk=job.pk).update(
            stage=ExportJob.Stage.WRITING, rows_total=len(rows)
        )
        with open(path, "wb") as out:
            write_regional(rows, job.file_format, out)
        return len(rows)
    selection = MicrodataSelection(
        wave_ids=tuple(params["waves"]), language=params["language"], values=params["values"]
    )
    codebook = selection.codebook()
    if job.kind == "codebook":
        write_codebook_xlsx(codebook, path)
        return len(codebook.variables)
    total = selection.submissions().count()
    from django.db import connection

    # On PostgreSQL the export's connection is busy with a COPY while interviews are
    # parsed, so progress goes through a thread and connection of its own.
    with _JobProgress(job.pk, total, threaded=connection.vendor == "postgresql") as reporter:
        return write_microdata(
            selection, job.file_format, path, reporter, codebook, preparing=reporter.preparing
        )


class _JobProgress:
    """Records what a job is doing (its stage, rows done and rows in that stage).

    Threaded, it writes once a second from its own thread and connection, and skips a
    locked row rather than wait; otherwise it writes at each call.
    """

    def __init__(self, job_id: int, total: int, *, threaded: bool) -> None:
        self.job_id = job_id
        self.total = total
        self.threaded = threaded
        self.state: tuple[str, int, int] = (ExportJob.Stage.WRITING, 0, total)
        self._written: tuple[str, int, int] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tanys-export-progress", daemon=True)

    def __call__(self, done: int) -> None:
        """Rows written so far."""
        self._set((ExportJob.Stage.WRITING, done, self.total))

    def preparing(self, done: int, total: int) -> None:
        """New interviews parsed into the wave's store so far, out of `total`."""
        self._set((ExportJob.Stage.PREPARING, done, total))

    def _set(self, state: tuple[str, int, int]) -> None:
        self.state = state
        if not self.threaded:
            self._record(lock=False)

    def _record(self, *, lock: bool) -> None:
        state = self.state
        if state == self._written:
            return
        stage, done, total = state
        rows = ExportJob.objects.filter(pk=self.job_id)
        if lock:
            with transaction.atomic():
                unlocked = rows.select_for_update(skip_locked=True)
                ExportJob.objects.filter(pk__in=unlocked.values("pk")).update(
                    stage=stage, rows_done=done, rows_total=total
                )
        else:
            rows.update(stage=stage, rows_done=done, rows_total=total)
        self._written = state

    def __enter__(self) -> _JobProgress:
        self._record(lock=False)  # the connection is still free: the first state now
        if self.threaded:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.threaded:
            self._stop.set()
            self._thread.join()

    def _run(self) -> None:
        from django.db import connections

        try:
            while not self._stop.wait(1.0):
                try:
                    self._record(lock=True)
                except Exception:  # progress is informative; the export goes on
                    logger.warning("progress of export job %s not recorded", self.job_id)
        finally:
            connections.close_all()


# A queued job whose message may have been lost (the broker was down when it was queued)
# is queued again after this long; running it twice is harmless (the claim above).
QUEUED_GRACE = dt.timedelta(minutes=2)


def resume_export_jobs(*, queued_for: dt.timedelta = QUEUED_GRACE) -> list[int]:
    """Queue again the jobs a worker should be building but is not: queued for longer than
    ``queued_for`` (their message may be lost) or running past the stale limit (their
    worker died). Called periodically and, with ``queued_for=0``, when a worker starts."""
    now = timezone.now()
    ids = list(
        ExportJob.objects.filter(
            models.Q(status=ExportJob.Status.QUEUED, created_at__lte=now - queued_for)
            | models.Q(status=ExportJob.Status.RUNNING, started_at__lt=now - stale_running())
        ).values_list("pk", flat=True)
    )
    for job_id in ids:
        dispatch.after_commit(BUILD_EXPORT, job_id)
    return ids


def expire_export_files() -> list[int]:
    """Delete the files of jobs finished more than EXPORT_RETENTION_DAYS ago. The jobs stay,
    marked expired (their pages say so), and so do their parameters: asking again is one
    click. Leftover partial files of that age go too. Returns the expired jobs' ids."""
    now = timezone.now()
    cutoff = now - dt.timedelta(days=settings.EXPORT_RETENTION_DAYS)
    expired: list[int] = []
    for job in ExportJob.objects.filter(status=ExportJob.Status.DONE, finished_at__lt=cutoff):
        with transaction.atomic():
            changed = ExportJob.objects.filter(pk=job.pk, status=ExportJob.Status.DONE).update(
                status=ExportJob.Status.EXPIRED, file="", expired_at=now
            )
        if changed:
            expired.append(job.pk)
            if job.file.name:
                job.file.storage.delete(job.file.name)
    folder = exports_folder()
    if folder.is_dir():
        for leftover in folder.glob(".*.part"):
            with contextlib.suppress(FileNotFoundError):
                if dt.datetime.fromtimestamp(leftover.stat().st_mtime, dt.UTC) < cutoff:
                    leftover.unlink()
    if expired:
        logger.info("export files of jobs %s expired", expired)
    return expired
