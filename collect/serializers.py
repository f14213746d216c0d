"""Input and output serializers of the collect API. They read and shape; services write."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from collect.models import Assignment
from surveys.models import Submission


class EnrolInputSerializer(serializers.Serializer):
    username = serializers.CharField(required=False, allow_blank=True, max_length=150)
    password = serializers.CharField(
        required=False, allow_blank=True, max_length=256, style={"input_type": "password"}
    )
    code = serializers.CharField(required=False, allow_blank=True, max_length=32)
    label = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")
    app_version = serializers.CharField(required=False, allow_blank=True, max_length=32, default="")


class EnrolOutputSerializer(serializers.Serializer):
    device_id = serializers.UUIDField()
    token = serializers.CharField()
    enumerator = serializers.CharField()


class CollectErrorOutputSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class EnrolmentCodeInputSerializer(serializers.Serializer):
    enumerator = serializers.CharField(max_length=150, help_text="the enumerator's username")


class EnrolmentCodeOutputSerializer(serializers.Serializer):
    code = serializers.CharField()
    expires_at = serializers.DateTimeField()
    qr_svg = serializers.CharField()


class AssignmentOutputSerializer(serializers.ModelSerializer):
    survey = serializers.CharField(source="wave.survey.code")
    wave = serializers.CharField(source="wave.code")
    wave_title = serializers.CharField(source="wave.title")
    region = serializers.CharField(source="region.code")
    region_name = serializers.CharField(source="region.name")
    form_version = serializers.IntegerField(source="form_version_id")
    done = serializers.IntegerField(source="n_done")
    accepted = serializers.IntegerField(source="n_accepted")

    class Meta:
        model = Assignment
        fields = [
            "id", "survey", "wave", "wave_title", "form_version", "region", "region_name",
            "settlement", "psu", "stratum", "quota", "done", "accepted", "prefilled",
            "latitude", "longitude",
        ]  # fmt: skip


class TabletFormVersionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    survey = serializers.CharField()
    version = serializers.CharField()
    title = serializers.CharField()
    languages = serializers.ListField(child=serializers.CharField())
    default_language = serializers.CharField()
    language_names = serializers.DictField(child=serializers.CharField())
    definition = serializers.JSONField(help_text="the compiled questionnaire")
    choices = serializers.JSONField(help_text="choice lists, as in the definition")
    logic = serializers.DictField(
        child=serializers.JSONField(),
        help_text="per language: the compiled expressions form.js walks",
    )
    messages = serializers.DictField(
        child=serializers.JSONField(), help_text="per language: the form's interface messages"
    )
    pages = serializers.DictField(
        child=serializers.CharField(),
        help_text="per language: the address of the rendered form page the app caches",
    )
    record_gps = serializers.BooleanField()


class SyncInputSerializer(serializers.Serializer):
    """The envelope. Items are checked one by one by the sync service, not here, so one bad
    item gets its own result instead of failing the batch."""

    interviews = serializers.ListField(child=serializers.JSONField(), allow_empty=True)


class SyncResultSerializer(serializers.Serializer):
    instance_id = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(
        choices=["stored", "duplicate", "conflict", "invalid", "refused"]
    )
    code = serializers.CharField(required=False)
    message = serializers.CharField(required=False)
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )
    over_quota = serializers.BooleanField(required=False)


class SyncOutputSerializer(serializers.Serializer):
    results = SyncResultSerializer(many=True)


class ReturnedOutputSerializer(serializers.ModelSerializer):
    form_version = serializers.IntegerField(source="form_version_id")
    assignment = serializers.SerializerMethodField()
    reviewed_by = serializers.SerializerMethodField()
    paradata = serializers.SerializerMethodField()

    class Meta:
        model = Submission
        fields = [
            "instance_id", "form_version", "assignment", "language", "answers",
            "review_comment", "question_comments", "reviewed_by", "reviewed_at",
            "received_at", "started_at", "ended_at", "paradata",
        ]  # fmt: skip

    def get_assignment(self, obj: Submission) -> int | None:
        tablet = getattr(obj, "tablet", None)
        return tablet.assignment_id if tablet is not None else None

    def get_reviewed_by(self, obj: Submission) -> str:
        user = obj.reviewed_by
        return (user.get_full_name() or user.get_username()) if user is not None else ""

    def get_paradata(self, obj: Submission) -> dict[str, Any]:
        tablet = getattr(obj, "tablet", None)
        return tablet.paradata if tablet is not None else {}


class AssignmentUploadOutputSerializer(serializers.Serializer):
    created = serializers.IntegerField()


class AssignmentErrorsOutputSerializer(serializers.Serializer):
    errors = serializers.ListField(child=serializers.CharField())
