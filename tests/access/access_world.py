"""One small platform with a user for every role, shared by the access tests.

Survey A ("simple") has a wave with interviews in region A and region B, estimates, links,
population margins and a finished microdata export of the microdata researcher; survey B
("other") has a wave with estimates. Every role except the superuser holds its grant in
survey A (the other researcher in survey B), as `access.services.grant_role` gives it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.files.base import ContentFile

from access.services import grant_role
from analytics.models import ExportJob, PopulationMargins, ResultSet, WaveComputation
from audit.models import AuditAction
from audit.services import record
from surveys.models import InvitationLink, Region, Submission, Survey, Wave
from surveys.roles import ensure_roles
from surveys.services import create_links
from tests.analytics.factories_estimates import breakdown_estimates, regional_estimates
from tests.factories import SubmissionFactory, WaveFactory, simple_form_version

PASSWORD = "matrix-pass-7731"

ROLES = (
    "anonymous",
    "respondent",
    "enumerator",
    "supervisor",
    "researcher_aggregates",
    "researcher_microdata",
    "researcher_other",
    "admin",
    "superuser",
)


@dataclass
class World:
    survey_a: Survey
    survey_b: Survey
    wave_a: Wave
    wave_b: Wave
    region_a: Region
    region_b: Region
    interview_a: Submission
    interview_b: Submission
    link: InvitationLink
    job: ExportJob
    device: Any = None
    attachment: Any = None
    users: dict[str, Any] = field(default_factory=dict)
    objects: dict[str, Any] = field(default_factory=dict)


def build_world() -> World:
    User = get_user_model()
    # The role groups as `setup_demo` leaves them: every model's permissions exist by now.
    ensure_roles(Group, Permission)
    version_a = simple_form_version("simple")
    version_b = simple_form_version("other")
    wave_a = WaveFactory(code="A1", form_version=version_a)
    wave_b = WaveFactory(code="B1", form_version=version_b)
    region_a = Region.objects.get(geography="KZ2022", code="KZ-75")
    region_b = Region.objects.get(geography="KZ2022", code="KZ-79")
    regional_estimates(wave_a)
    regional_estimates(wave_b)
    breakdown_estimates(wave_a)
    breakdown_estimates(wave_b)
    users: dict[str, Any] = {}

    def user(name: str, *, staff: bool = False, **grant: Any) -> Any:
        account = User.objects.create_user(name, f"{name}@example.org", PASSWORD)
        if staff:
            account.is_staff = True
            account.save(update_fields=["is_staff"])
        if grant:
            grant_role(user=account, **grant)
        users[name] = account
        return account

    enumerator = user("enumerator", role="enumerator", survey=wave_a.survey)
    user("supervisor", staff=True, role="supervisor", survey=wave_a.survey, regions=[region_a])
    user("researcher_aggregates", role="researcher", survey=wave_a.survey, level="aggregates")
    micro = user("researcher_microdata", role="researcher", survey=wave_a.survey, level="microdata")
    user("researcher_other", role="researcher", survey=wave_b.survey, level="microdata")
    user("admin", staff=True, role="admin", survey=wave_a.survey)
    root = User.objects.create_superuser("superuser", "root@example.org", PASSWORD)
    users["superuser"] = root

    interview_a = SubmissionFactory(wave=wave_a, region=region_a, enumerator=enumerator)
    interview_b = SubmissionFactory(wave=wave_a, region=region_b)
    link = create_links(wave=wave_a, kind="single", created_by=root, label="x@example.org")[0]
    job = ExportJob.objects.create(
        requested_by=micro,
        kind="microdata",
        file_format="csv",
        parameters={"waves": [wave_a.pk], "language": "en", "values": "codes"},
        rows_total=2,
        rows_done=2,
    )
    job.file.save("tanys-microdata-matrix.csv", ContentFile(b"a,b\n1,2\n"), save=False)
    job.status = ExportJob.Status.DONE
    job.save()
    margins = PopulationMargins.objects.create(wave=wave_a, version=1, table=[])
    computation, _ = WaveComputation.objects.get_or_create(wave=wave_a)
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    from apitokens.services import issue_token
    from collect.models import CollectSettings, TabletInterview
    from collect.services import create_assignment, make_enrolment_code
    from odk.models import Attachment
    from odk.services import create_odk_device

    # The enumerator's field work: an ODK Collect device, an enrolment code, an assignment
    # in region A and a tablet record of their interview, with a photo.
    device, _device_token = create_odk_device(enumerator=enumerator, actor=root, label="tab-1")
    code, _code = make_enrolment_code(enumerator=enumerator, created_by=root)
    assignment = create_assignment(
        enumerator=enumerator, wave=wave_a, region=region_a, created_by=root
    )
    tablet = TabletInterview.objects.create(
        submission=interview_a, device=device, assignment=assignment
    )
    collect_settings = CollectSettings.objects.create(survey=wave_a.survey)
    photo = Attachment(submission=interview_a, name="photo.jpg", size=3, sha256="0" * 64)
    photo.file.save("photo.jpg", ContentFile(b"jpg"), save=True)
    lockout = {"username": "x", "ip_address": "10.0.0.1", "user_agent": "t", "path_info": "/"}
    attempt = AccessAttempt.objects.create(
        **lockout, http_accept="*/*", get_data="", post_data="", failures_since_start=1
    )
    access_log = AccessLog.objects.create(**lockout, http_accept="*/*")
    failure_log = AccessFailureLog.objects.create(**lockout, http_accept="*/*")

    token, _secret = issue_token(user=micro)
    event = record(actor=root, action=AuditAction.MARGINS_SAVED, obj=margins)
    world = World(
        survey_a=wave_a.survey,
        survey_b=wave_b.survey,
        wave_a=wave_a,
        wave_b=wave_b,
        region_a=region_a,
        region_b=region_b,
        interview_a=interview_a,
        interview_b=interview_b,
        link=link,
        job=job,
        device=device,
        attachment=photo,
        users=users,
    )
    # The object each admin page of a model is opened on: all in survey A (region A).
    world.objects = {
        "auth.group": Group.objects.get(name="admin"),
        "auth.user": enumerator,
        "apitokens.apitoken": token,
        "surveys.survey": wave_a.survey,
        "surveys.formversion": version_a,
        "surveys.wave": wave_a,
        "surveys.region": region_a,
        "surveys.submission": interview_a,
        "surveys.invitationlink": link,
        "analytics.populationmargins": margins,
        "analytics.wavecomputation": computation,
        "analytics.resultset": ResultSet.objects.filter(wave=wave_a).first(),
        "audit.auditevent": event,
        "access.rolegrant": users["supervisor"].role_grants.get(),
        "axes.accessattempt": attempt,
        "axes.accesslog": access_log,
        "axes.accessfailurelog": failure_log,
        "collect.device": device,
        "collect.enrolmentcode": code,
        "collect.assignment": assignment,
        "collect.collectsettings": collect_settings,
        "collect.tabletinterview": tablet,
    }
    return world
