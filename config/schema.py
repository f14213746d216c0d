"""The OpenAPI schema says which errors each operation can answer, and what they look like.

drf-spectacular documents the success response of an operation. This schema class adds the
refusals the API really gives, so a client (and schemathesis, which the suite runs against the
schema) meets no undocumented status:

- 400 where the operation reads query parameters or a body (filters and input are validated);
- 401 and 403 where a permission is needed (no or bad token; a role without the permission);
- 404 where a path names an object, and on paginated lists (a page past the end);
- 503 everywhere: the database is unreachable (`config.unavailable`), retry after a while.
"""

from __future__ import annotations

from typing import Any

from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import permissions, serializers


class ErrorOutputSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What was refused, for people.")


class UnavailableOutputSerializer(serializers.Serializer):
    code = serializers.CharField(help_text='"unavailable"')
    message = serializers.CharField()
    detail = serializers.CharField()


# A 400 body: ``detail`` (an unreadable body, a refused request) or, per refused field, its
# messages (a list, or for a list field an object keyed by the position of the bad item).
VALIDATION_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "detail": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    },
    "additionalProperties": True,
}


ERROR_DESCRIPTIONS = {
    "400": "Invalid query parameters or body: messages per field, or ``detail``.",
    "401": "No valid credentials (token or session).",
    "403": "The account lacks the permission this operation needs.",
    "404": "No such object, or a page past the end of the list.",
    "503": "The database is unreachable; retry after the ``Retry-After`` seconds.",
}


# Text the API reads may hold any character but NUL, which every text field refuses.
NO_NUL_PATTERN = "^[^\\x00]*$"


def _without_nul(schema: dict[str, Any]) -> None:
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        _without_nul(schema["items"])
    elif schema.get("type") == "string" and not ({"enum", "format", "pattern"} & set(schema)):
        schema["pattern"] = NO_NUL_PATTERN


class AutoSchema(SpectacularAutoSchema):
    def _get_parameters(self) -> list[dict[str, Any]]:
        parameters = super()._get_parameters()
        for parameter in parameters:
            if parameter.get("in") == "query" and isinstance(parameter.get("schema"), dict):
                _without_nul(parameter["schema"])
        return parameters

    def _map_serializer_field(
        self, field: Any, direction: Any, bypass_extensions: bool = False
    ) -> Any:
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if direction == "request" and isinstance(schema, dict):
            _without_nul(schema)
        return schema

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code in self._error_codes():
            if code in responses:
                continue
            response: dict[str, Any]
            if code == "400":
                response = {"content": {"application/json": {"schema": VALIDATION_ERROR_SCHEMA}}}
            else:
                serializer = UnavailableOutputSerializer if code == "503" else ErrorOutputSerializer
                response = self._get_response_for_code(serializer, code, ["application/json"])
            response["description"] = ERROR_DESCRIPTIONS[code]
            if code == "503":
                response["headers"] = {
                    "Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}
                }
            responses[code] = response
        return dict(sorted(responses.items()))

    def _error_codes(self) -> list[str]:
        codes = ["503"]
        parameters = self._get_parameters()
        has_query = any(p.get("in") == "query" for p in parameters)
        has_body = self.method in {"POST", "PUT", "PATCH"} and self.get_request_serializer()
        if has_query or has_body:
            codes.append("400")
        if not all(
            isinstance(permission, permissions.AllowAny)
            for permission in self.view.get_permissions()
        ):
            codes += ["401", "403"]
        has_path = any(p.get("in") == "path" for p in parameters)
        paginated = any(p.get("in") == "query" and p.get("name") == "page" for p in parameters)
        if has_path or paginated:
            codes.append("404")
        return codes


@csrf_exempt  # answers nothing but 404: no state to protect
def api_not_found(request: Any, *args: Any, **kwargs: Any) -> Any:
    """Any other address under /api/: a JSON 404 like the API's own, not the HTML page."""
    from django.http import JsonResponse
    from django.utils.translation import gettext

    return JsonResponse({"detail": gettext("Not found.")}, status=404)
