from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from analytics import services
from surveys.models import Wave


class Command(BaseCommand):
    help = (
        "Recompute stored estimates now, in this process: of one wave (--wave CODE), of "
        "every wave (--all), or, with neither, of the waves that are dirty, interrupted or "
        "computed with older indicator definitions."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--wave", help="wave code (e.g. 2026)")
        parser.add_argument("--survey", help="survey code, when several surveys share a wave code")
        parser.add_argument("--all", action="store_true", help="every wave, even if up to date")

    def handle(self, *args, wave: str | None, survey: str | None, all: bool, **options) -> None:
        waves = Wave.objects.select_related("survey").order_by("fieldwork_start", "code")
        if survey:
            waves = waves.filter(survey__code=survey)
        if wave:
            waves = waves.filter(code=wave)
            if not waves.exists():
                raise CommandError(f"no wave with code '{wave}'")
        elif not all:
            pending = set(services.resume_pending_computations_ids())
            waves = waves.filter(pk__in=pending)
        force = bool(wave or all)
        chosen = list(waves)
        if not chosen:
            self.stdout.write("All estimates are up to date.")
            return
        with tqdm(total=len(chosen), unit=" wave", disable=options.get("verbosity", 1) < 1) as bar:
            for item in chosen:
                bar.set_description(f"wave {item.code}")
                outcome = services.recompute_wave(wave_id=item.pk, force=force)
                bar.update(1)
                self.stdout.write(f"{item.survey.code} {item.code}: {outcome}")
