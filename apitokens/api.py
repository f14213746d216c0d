"""POST /api/token/: username and password in, {"token": ...} out (a new token each time)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apitokens.services import issue_token


class ObtainTokenView(APIView):
    """Exchange a username and password for a new API token (valid for API_TOKEN_DAYS)."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    serializer_class = AuthTokenSerializer

    @extend_schema(
        request=AuthTokenSerializer,
        responses={200: inline_serializer("TokenOutput", {"token": serializers.CharField()})},
    )
    def post(self, request: Request) -> Response:
        # The Django request, so that a lockout (django-axes) is seen by its middleware.
        data = AuthTokenSerializer(data=request.data, context={"request": request._request})
        data.is_valid(raise_exception=True)
        _token, secret = issue_token(user=data.validated_data["user"])
        return Response({"token": secret})
