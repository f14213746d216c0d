"""Input and output serializers of the analytics API. None of them writes or enqueues."""

from __future__ import annotations

from rest_framework import serializers

from analytics.breakdowns import BY_KEY
from analytics.exports.formats import KINDS, REGIONAL_FORMATS
from analytics.exports.regional import REGIONAL_COLUMNS
from analytics.models import BreakdownEstimate, ExportJob, IndicatorEstimate
from surveys.definition import INTERFACE_LANGUAGES
from surveys.models import Geography

# Ids are 64-bit: a larger integer cannot name a row (and SQLite cannot even bind it).
ID_MIN, ID_MAX = -(2**63), 2**63 - 1


class EstimateOutputSerializer(serializers.ModelSerializer):
    wave = serializers.SlugRelatedField(slug_field="code", read_only=True)
    wave_id = serializers.IntegerField(read_only=True)
    survey = serializers.CharField(source="wave.survey.code", read_only=True)
    region = serializers.SerializerMethodField()
    previous_wave = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)

    class Meta:
        model = IndicatorEstimate
        fields = [
            "id",
            "survey",
            "wave",
            "wave_id",
            "geography",
            "region",
            "indicator",
            "estimate",
            "se",
            "ci_low",
            "ci_high",
            "ci_method",
            "df",
            "n",
            "n_numerator",
            "n_eff",
            "deff",
            "suppressed",
            "suppression_reason",
            "review_flag",
            "national_estimate",
            "diff_vs_rest",
            "diff_vs_rest_se",
            "diff_vs_rest_p",
            "diff_vs_rest_p_adjusted",
            "previous_wave",
            "previous_estimate",
            "change",
            "change_se",
            "change_p",
            "change_p_adjusted",
            "boundary_note",
            "weights_version",
            "data_version",
            "computed_at",
        ]

    def get_region(self, obj: IndicatorEstimate) -> str | None:
        """ISO code of the region; null for the national estimate."""
        return obj.region.code if obj.region is not None else None


class BreakdownEstimateOutputSerializer(EstimateOutputSerializer):
    """A breakdown cell: the estimate fields, the breakdown, its group and the group's
    label in the request's language."""

    group_label = serializers.SerializerMethodField()

    class Meta(EstimateOutputSerializer.Meta):
        model = BreakdownEstimate  # type: ignore[assignment]
        fields = [
            *EstimateOutputSerializer.Meta.fields[:6],
            "breakdown",
            "group",
            "group_label",
            *EstimateOutputSerializer.Meta.fields[6:],
        ]

    def get_group_label(self, obj: BreakdownEstimate) -> str:
        try:
            return str(BY_KEY[obj.breakdown].group(obj.group).label)
        except KeyError:
            return obj.group


def _comparison_field(name: str) -> serializers.Field:
    from analytics.exports.regional import FLOAT_COLUMNS, INT_COLUMNS

    if name in FLOAT_COLUMNS:
        return serializers.FloatField(allow_null=True, read_only=True)
    if name in INT_COLUMNS:
        return serializers.IntegerField(allow_null=True, read_only=True)
    if name == "computed_at":
        return serializers.DateTimeField(allow_null=True, read_only=True)
    return serializers.CharField(allow_blank=True, read_only=True)


# One row of the regional comparison table, a field per column of REGIONAL_COLUMNS.
ComparisonRowOutputSerializer = type(
    "ComparisonRowOutputSerializer",
    (serializers.Serializer,),
    {
        "__doc__": "One row of the regional comparison table.",
        **{name: _comparison_field(name) for name, _definition in REGIONAL_COLUMNS},
    },
)


class ComparisonQueryInputSerializer(serializers.Serializer):
    wave = serializers.ListField(
        child=serializers.IntegerField(min_value=ID_MIN, max_value=ID_MAX), required=False
    )
    geography = serializers.ChoiceField(choices=Geography.choices, required=False)
    indicator = serializers.ListField(child=serializers.CharField(max_length=32), required=False)
    region = serializers.ListField(child=serializers.CharField(max_length=8), required=False)
    file_format = serializers.ChoiceField(choices=REGIONAL_FORMATS, required=False)


class ExportJobInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=sorted(KINDS))
    file_format = serializers.ChoiceField(
        choices=sorted({fmt for formats in KINDS.values() for fmt in formats})
    )
    waves = serializers.ListField(
        child=serializers.IntegerField(min_value=ID_MIN, max_value=ID_MAX),
        required=False,
        default=list,
    )
    language = serializers.ChoiceField(choices=list(INTERFACE_LANGUAGES), default="ru")
    values = serializers.ChoiceField(choices=["labels", "codes"], default="labels")
    geography = serializers.ChoiceField(choices=Geography.choices, required=False)
    indicators = serializers.ListField(
        child=serializers.CharField(max_length=32), required=False, default=list
    )


class ExportJobOutputSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ExportJob
        fields = [
            "id",
            "kind",
            "file_format",
            "parameters",
            "status",
            "stage",
            "rows_done",
            "rows_total",
            "progress",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "download_url",
        ]

    def get_progress(self, obj: ExportJob) -> float | None:
        """Share of the stage's rows done, 0..1 (null until the total is known): interviews
        parsed while ``stage`` is "preparing", rows written while it is "writing"."""
        if obj.status == ExportJob.Status.DONE:
            return 1.0
        if not obj.rows_total:
            return None
        return min(1.0, obj.rows_done / obj.rows_total)

    def get_download_url(self, obj: ExportJob) -> str | None:
        if obj.status != ExportJob.Status.DONE:
            return None
        from django.urls import reverse

        path = reverse("api:export-job-download", args=[obj.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path
