"""What ODK Collect downloads and uploads: the XForm of a questionnaire version, attachments."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class XForm(models.Model):
    """The XForm served for a questionnaire version, made once and then kept byte for byte.

    Collect compares the ``md5:`` hash of the form list with the file it holds; keeping the
    bytes (rather than converting again on each request, or after a converter upgrade) means
    a form never changes under a device in the middle of fieldwork.
    """

    form_version = models.OneToOneField(
        "surveys.FormVersion", on_delete=models.CASCADE, related_name="xform"
    )
    xml = models.BinaryField(_("XForm"))
    md5 = models.CharField(_("md5"), max_length=32)
    # Element names of the form's metadata questions by type: start, end, deviceid, audit.
    meta_names = models.JSONField(_("metadata questions"), default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("XForm")
        verbose_name_plural = _("XForms")

    def __str__(self) -> str:
        return f"XForm of {self.form_version_id} (md5:{self.md5})"


def attachment_path(instance: Attachment, filename: str) -> str:
    return f"odk-attachments/{instance.submission.instance_id}/{instance.name}"


class Attachment(models.Model):
    """A file sent with an ODK interview (a photo, the audit log), kept privately."""

    submission = models.ForeignKey(
        "surveys.Submission", on_delete=models.CASCADE, related_name="attachments"
    )
    name = models.CharField(_("file name"), max_length=255)
    file = models.FileField(_("file"), upload_to=attachment_path, max_length=400)
    size = models.PositiveBigIntegerField(_("size (bytes)"))
    sha256 = models.CharField(max_length=64)
    content_type = models.CharField(_("content type"), max_length=100, blank=True)
    received_at = models.DateTimeField(_("received"), auto_now_add=True)

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        constraints = [
            models.UniqueConstraint(fields=["submission", "name"], name="odk_attachment_once")
        ]

    def __str__(self) -> str:
        return self.name
