"""Whether an interview may come in: the refusal every channel gives, with its code for
programs and its message for people, and the one rule for links and waves."""

from __future__ import annotations

from django.utils.translation import gettext_lazy

from surveys.models import Channel, InvitationLink, Wave


class SubmissionRefused(Exception):
    """An interview that cannot be stored for a reason other than its answers.

    ``code`` is stable for programs (``wave_closed``, ``no_form``, ``link_unknown``,
    ``link_revoked``, ``link_used``, ``link_wave``, ``instance_conflict``, ``too_large``,
    ``language``, ``design``); ``message`` is for people, in the interview's language.
    """

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


# Why a link or a wave takes no interview: one message each, for every channel and page.
ADMISSION_MESSAGES = {
    "link_unknown": gettext_lazy("This survey link is not valid"),
    "link_revoked": gettext_lazy("This link has been withdrawn."),
    "link_used": gettext_lazy("This invitation has already been used."),
    "link_wave": gettext_lazy("This link belongs to another survey."),
    "wave_closed": gettext_lazy("This survey is closed and no longer accepts answers."),
}


def admission_refusal(
    *,
    link: InvitationLink | None,
    wave: Wave | None = None,
    channel: str = Channel.WEB,
    check_link_state: bool = True,
) -> SubmissionRefused | None:
    """Whether a link and a wave take a new interview now: None, or the refusal (its
    message in the active language). The one rule, used by the web form's pages and
    submissions and by `submit_interview`.

    In order: no link (or its wave has no questionnaire), a link of another wave than
    ``wave``, a revoked link, a used single-use link, a closed wave (for web interviews
    only: tablet and ODK interviews were collected offline and are accepted after the
    wave closes, so a late sync loses nothing). ``check_link_state=False`` leaves out
    revoked and used: `submit_interview` checks those under the link's row lock, once a
    retry of an interview already stored has been answered.
    """
    if link is None and wave is None:
        return refusal_for("link_unknown")
    if link is not None:
        wave = wave or link.wave
        if link.wave_id != wave.pk:
            return refusal_for("link_wave")
        if wave.form_version_id is None:
            return refusal_for("link_unknown")
        if check_link_state and link.revoked_at is not None:
            return refusal_for("link_revoked")
        if check_link_state and link.is_single_use and link.used_at is not None:
            return refusal_for("link_used")
    assert wave is not None
    if channel == Channel.WEB and not wave.is_open:
        return refusal_for("wave_closed")
    return None


def refusal_for(code: str) -> SubmissionRefused:
    """The refusal with this code of `ADMISSION_MESSAGES`, in the active language."""
    return SubmissionRefused(code, str(ADMISSION_MESSAGES[code]))
