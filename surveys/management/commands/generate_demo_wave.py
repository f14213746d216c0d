import datetime as dt

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from analytics.services import mark_wave_dirty
from surveys.demo import RATES_2013, RATES_CURRENT, generate_wave
from surveys.models import FormVersion, Geography, Survey
from surveys.services import open_wave

INSTRUMENT_SURVEY = "informal-networks"


class Command(BaseCommand):
    help = "Generate a wave of SYNTHETIC interviews (clearly flagged) for demonstration and benchmarks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--wave", required=True, help="wave code, e.g. 2013 or 2026")
        parser.add_argument("--n", type=int, default=857, help="number of interviews")
        parser.add_argument("--seed", type=int, default=2013)
        parser.add_argument("--survey", default=INSTRUMENT_SURVEY)
        parser.add_argument(
            "--geography",
            choices=Geography.values,
            default=None,
            help="default: KZ2013 for waves before 2022, else KZ2022",
        )
        parser.add_argument(
            "--replace", action="store_true", help="delete the wave's synthetic interviews first"
        )

    def handle(
        self,
        *args,
        wave: str,
        n: int,
        seed: int,
        survey: str,
        geography: str | None,
        replace: bool,
        **options,
    ) -> None:
        if n < 1:
            raise CommandError("--n must be at least 1")
        try:
            survey_obj = Survey.objects.get(code=survey)
        except Survey.DoesNotExist as exc:
            raise CommandError(
                f"survey '{survey}' does not exist: import the instrument first"
            ) from exc
        form_version = FormVersion.objects.filter(survey=survey_obj).order_by("-created_at").first()
        if form_version is None:
            raise CommandError(f"survey '{survey}' has no questionnaire version")
        year = int(wave[:4]) if wave[:4].isdigit() else dt.date.today().year
        geography = geography or (Geography.KZ2013 if year < 2022 else Geography.KZ2022)
        wave_obj = open_wave(
            survey=survey_obj,
            code=wave,
            geography=geography,
            form_version=form_version,
            title=f"{wave} (synthetic demo)",
            fieldwork_start=dt.date(year, 3, 1),
            fieldwork_end=dt.date(year, 4, 30),
            is_open=year >= dt.date.today().year,
            is_synthetic=True,
        )
        if replace:
            wave_obj.submissions.filter(is_synthetic=True).delete()
        elif wave_obj.submissions.exists():
            self.stdout.write(f"Wave {wave} already has interviews; use --replace to regenerate.")
            return
        rates = RATES_2013 if year < 2022 else RATES_CURRENT
        with tqdm(total=n, desc=f"wave {wave}", unit=" interviews", disable=None) as bar:
            written = generate_wave(
                wave=wave_obj,
                form_version=form_version,
                n=n,
                seed=seed,
                rates=rates,
                progress=bar.update,
            )
        # New interviews: recompute the wave's estimates (in-process in embedded mode).
        mark_wave_dirty(wave_id=wave_obj.pk)
        self.stdout.write(
            self.style.SUCCESS(
                f"Wave {wave}: {written} SYNTHETIC interviews on the {geography} geography (seed {seed})."
            )
        )
