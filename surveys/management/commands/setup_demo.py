import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from analytics.services import resume_pending_computations
from collect.demo import demo_fieldwork
from surveys.models import InvitationLink, Survey, Wave
from surveys.roles import ensure_roles
from surveys.services import create_links

DEMO_LABEL = "Demo public link"
INSTRUMENT = Path(__file__).resolve().parents[2] / "instruments" / "informal_networks.xlsx"


def demo_link(user):  # type: ignore[no-untyped-def]
    """The open 2026 wave's public demo link, created once and reused."""
    wave = Wave.objects.filter(survey__code="informal-networks", code="2026", is_open=True).first()
    if wave is None:
        return None
    existing = InvitationLink.objects.active().filter(wave=wave, kind="public", label=DEMO_LABEL)
    return (
        existing.first()
        or create_links(wave=wave, kind="public", count=1, created_by=user, label=DEMO_LABEL)[0]
    )


class Command(BaseCommand):
    help = "Load the instrument and the synthetic demo waves, create the roles and a demo admin."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--n-2013", type=int, default=857)
        parser.add_argument("--n-current", type=int, default=3000)

    def handle(self, *args, n_2013: int, n_current: int, **options) -> None:
        ensure_roles(Group, Permission)
        call_command(
            "import_xlsform",
            str(INSTRUMENT),
            survey="informal-networks",
            title="Informal networks in Kazakhstan",
        )
        Survey.objects.filter(code="informal-networks").update(
            title_kk="Қазақстандағы бейресми желілер",
            title_ru="Неформальные сети в Казахстане",
            title_en="Informal networks in Kazakhstan",
        )
        call_command("generate_demo_wave", wave="2013", n=n_2013, seed=2013)
        call_command("generate_demo_wave", wave="2026", n=n_current, seed=2026)
        # Estimates for any wave without current ones (in-process in embedded mode).
        resume_pending_computations()
        password = secrets.token_urlsafe(12)
        user, _ = get_user_model().objects.get_or_create(
            username="admin", defaults={"email": "admin@example.org"}
        )
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        user.groups.add(*Group.objects.filter(name__in=["admin", "researcher"]))
        link = demo_link(user)
        fieldwork = demo_fieldwork(link.wave) if link else None
        self.stdout.write(
            self.style.SUCCESS(
                "\nTanys is ready (embedded mode: SQLite, tasks run in-process). Demo data are SYNTHETIC.\n"
                "  Site:   http://127.0.0.1:8000/\n"
                "  Admin:  http://127.0.0.1:8000/admin/\n"
                "  Researchers' dashboard: http://127.0.0.1:8000/analytics/   API docs: http://127.0.0.1:8000/api/docs/\n"
                f"  Login:  admin / {password}   (a new password is made each time setup runs)\n"
                + (
                    f"  Survey: http://127.0.0.1:8000/s/{link.token}/   (public web form, open 2026 wave)\n"
                    if link
                    else ""
                )
                + (
                    f"  Tablet app: http://127.0.0.1:8000/collect/   enumerator / {fieldwork['enumerator']}\n"
                    f"  Supervisor: supervisor / {fieldwork['supervisor']}   (assignments in the open 2026 wave)\n"
                    "  Review:     http://127.0.0.1:8000/review/   ODK Collect devices: http://127.0.0.1:8000/odk/devices/\n"
                    if fieldwork
                    else ""
                )
            )
        )
