"""Output serializers for the read-only survey API (surveys, waves, regions, form versions)."""

from __future__ import annotations

from rest_framework import serializers

from surveys.models import FormVersion, Region, Survey, Wave


class SurveyOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Survey
        fields = ["id", "code", "title", "description", "created_at"]


class WaveOutputSerializer(serializers.ModelSerializer):
    survey = serializers.SlugRelatedField(slug_field="code", read_only=True)
    form_version = serializers.SlugRelatedField(
        slug_field="version", read_only=True, allow_null=True
    )

    class Meta:
        model = Wave
        fields = [
            "id",
            "survey",
            "code",
            "title",
            "geography",
            "form_version",
            "fieldwork_start",
            "fieldwork_end",
            "is_open",
            "is_synthetic",
        ]


class RegionOutputSerializer(serializers.ModelSerializer):
    unit_2013 = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)

    class Meta:
        model = Region
        fields = [
            "id",
            "geography",
            "code",
            "iso_before_2022",
            "kind",
            "name_kk",
            "name_ru",
            "name_en",
            "unit_2013",
            "tile_row",
            "tile_col",
            "note",
        ]


class FormVersionOutputSerializer(serializers.ModelSerializer):
    survey = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = FormVersion
        fields = [
            "id",
            "survey",
            "version",
            "form_id",
            "title",
            "languages",
            "default_language",
            "created_at",
        ]


class FormVersionDetailOutputSerializer(FormVersionOutputSerializer):
    class Meta(FormVersionOutputSerializer.Meta):
        fields = [*FormVersionOutputSerializer.Meta.fields, "definition"]
