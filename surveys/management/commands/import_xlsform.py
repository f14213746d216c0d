from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from surveys.services import import_xlsform
from surveys.xlsform import XLSFormError


class Command(BaseCommand):
    help = "Import an XLSForm (.xlsx or .xls) as a new version of a survey, creating the survey if needed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--survey", required=True, help="survey code, e.g. informal-networks")
        parser.add_argument("--title", default=None, help="survey title when it is created")

    def handle(self, *args, path: Path, survey: str, title: str | None, **options) -> None:
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        try:
            version, created = import_xlsform(
                survey_code=survey,
                content=path.read_bytes(),
                filename=path.name,
                survey_title=title,
            )
        except XLSFormError as exc:
            raise CommandError(f"{path.name} was not imported; nothing was stored.\n{exc}") from exc
        for warning in version.import_warnings:
            self.stderr.write(self.style.WARNING(f"warning: {warning}"))
        verb = "Imported" if created else "Already imported"
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} {survey} version {version.version}: {len(version.questions)} questions, "
                f"languages {', '.join(version.languages)}"
            )
        )
