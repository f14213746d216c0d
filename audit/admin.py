"""The audit trail in the admin: read-only, filterable, exportable as CSV."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator

from django.contrib import admin
from django.http import HttpRequest, StreamingHttpResponse
from django.urls import path
from django.utils.translation import gettext_lazy as _

from audit.models import AuditEvent

CSV_COLUMNS = [
    "at",
    "actor_id",
    "actor_name",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "survey_id",
    "old",
    "new",
    "detail",
]


class _Echo:
    def write(self, value: str) -> str:
        return value


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["at", "actor_name", "action", "object_type", "object_id", "object_repr"]
    list_filter = ["action", "object_type", ("at", admin.DateFieldListFilter)]
    search_fields = ["actor_name", "object_id", "object_repr"]
    date_hierarchy = "at"
    readonly_fields = [f.name for f in AuditEvent._meta.fields]
    show_full_result_count = False
    change_list_template = "admin/audit/auditevent/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def get_urls(self):  # type: ignore[no-untyped-def]
        return [
            path(
                "export.csv",
                self.admin_site.admin_view(self.export_csv),
                name="audit_auditevent_export",
            ),
            *super().get_urls(),
        ]

    def export_csv(self, request: HttpRequest) -> StreamingHttpResponse:
        """The events the change list shows with the same filters and search, as CSV."""
        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        changelist = self.get_changelist_instance(request)
        events = changelist.get_queryset(request).order_by("at", "id")

        def rows() -> Iterator[list[str]]:
            yield CSV_COLUMNS
            for event in events.iterator(chunk_size=2000):
                yield [
                    event.at.isoformat(),
                    str(event.actor_id or ""),
                    event.actor_name,
                    event.action,
                    event.object_type,
                    event.object_id,
                    event.object_repr,
                    str(event.survey_id or ""),
                    _json(event.old),
                    _json(event.new),
                    _json(event.detail),
                ]

        writer = csv.writer(_Echo())
        response = StreamingHttpResponse(
            (writer.writerow(row) for row in rows()), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = 'attachment; filename="tanys-audit.csv"'
        return response


def _json(value: object) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


AuditEventAdmin.export_csv.short_description = _("Export as CSV")  # type: ignore[attr-defined]
