"""Model endpoints and versions, shared by all projects.

They live in models_serving, but who may touch them depends on roles, which this app owns;
models_serving must not import annotation, so the views sit here.
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from models_serving import selectors, services
from models_serving.serializers import (
    ModelEndpointSerializer,
    ModelVersionSerializer,
    ModelVersionUpdateSerializer,
)

from .access import (
    access_model_endpoint_by_id,
    access_model_version_by_id,
    access_require_role,
    request_user,
)
from .models import Role

NOT_ALLOWED = OpenApiResponse(description="Your role may not do this")
NO_ENDPOINT = OpenApiResponse(description="No such model endpoint")
NO_VERSION = OpenApiResponse(description="No such model version")


class ModelEndpointListView(APIView):
    @extend_schema(
        responses={200: ModelEndpointSerializer(many=True), 403: NOT_ALLOWED},
        summary="Model endpoints (researchers read, without API keys)",
    )
    def get(self, request: Request) -> Response:
        access_require_role(request_user(request), min_role=Role.RESEARCHER)
        endpoints = selectors.model_endpoint_list()
        return Response(ModelEndpointSerializer(endpoints, many=True).data)

    @extend_schema(
        request=ModelEndpointSerializer,
        responses={201: ModelEndpointSerializer, 403: NOT_ALLOWED},
        summary="Register a model endpoint (admins)",
    )
    def post(self, request: Request) -> Response:
        access_require_role(request_user(request), min_role=Role.ADMIN)
        data = ModelEndpointSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = services.model_endpoint_create(**data.validated_data)
        return Response(ModelEndpointSerializer(endpoint).data, status=status.HTTP_201_CREATED)


class ModelEndpointDetailView(APIView):
    @extend_schema(
        responses={200: ModelEndpointSerializer, 403: NOT_ALLOWED, 404: NO_ENDPOINT},
        summary="One model endpoint (researchers read, without its API key)",
    )
    def get(self, request: Request, endpoint_id: int) -> Response:
        endpoint = access_model_endpoint_by_id(
            request_user(request), endpoint_id, min_role=Role.RESEARCHER
        )
        return Response(ModelEndpointSerializer(endpoint).data)

    @extend_schema(
        request=ModelEndpointSerializer(partial=True),
        responses={200: ModelEndpointSerializer, 403: NOT_ALLOWED, 404: NO_ENDPOINT},
        summary="Change a model endpoint (admins)",
    )
    def patch(self, request: Request, endpoint_id: int) -> Response:
        endpoint = access_model_endpoint_by_id(
            request_user(request), endpoint_id, min_role=Role.ADMIN
        )
        data = ModelEndpointSerializer(endpoint, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        endpoint = services.model_endpoint_update(endpoint=endpoint, **data.validated_data)
        return Response(ModelEndpointSerializer(endpoint).data)


class ModelEndpointHealthView(APIView):
    @extend_schema(
        request=None,
        responses={200: ModelEndpointSerializer, 403: NOT_ALLOWED, 404: NO_ENDPOINT},
        summary="Check a model endpoint now (admins); the result is in last_health_*",
    )
    def post(self, request: Request, endpoint_id: int) -> Response:
        endpoint = access_model_endpoint_by_id(
            request_user(request), endpoint_id, min_role=Role.ADMIN
        )
        endpoint = services.endpoint_check_health(endpoint=endpoint)
        return Response(ModelEndpointSerializer(endpoint).data)


class ModelVersionListView(APIView):
    @extend_schema(
        responses={200: ModelVersionSerializer(many=True), 403: NOT_ALLOWED},
        summary="Model versions to sample from, newest first (researchers)",
    )
    def get(self, request: Request) -> Response:
        access_require_role(request_user(request), min_role=Role.RESEARCHER)
        versions = selectors.model_version_list()
        return Response(ModelVersionSerializer(versions, many=True).data)

    @extend_schema(
        request=ModelVersionSerializer,
        responses={201: ModelVersionSerializer, 403: NOT_ALLOWED},
        summary="Register a model version on an endpoint (admins)",
    )
    def post(self, request: Request) -> Response:
        access_require_role(request_user(request), min_role=Role.ADMIN)
        data = ModelVersionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.model_version_create(**data.validated_data)
        return Response(ModelVersionSerializer(version).data, status=status.HTTP_201_CREATED)


class ModelVersionDetailView(APIView):
    @extend_schema(
        responses={200: ModelVersionSerializer, 403: NOT_ALLOWED, 404: NO_VERSION},
        summary="One model version (researchers)",
    )
    def get(self, request: Request, version_id: int) -> Response:
        version = access_model_version_by_id(
            request_user(request), version_id, min_role=Role.RESEARCHER
        )
        return Response(ModelVersionSerializer(version).data)

    @extend_schema(
        request=ModelVersionUpdateSerializer(partial=True),
        responses={200: ModelVersionSerializer, 403: NOT_ALLOWED, 404: NO_VERSION},
        summary="Relabel, annotate or disable a model version (admins)",
    )
    def patch(self, request: Request, version_id: int) -> Response:
        version = access_model_version_by_id(request_user(request), version_id, min_role=Role.ADMIN)
        data = ModelVersionUpdateSerializer(version, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        version = services.model_version_update(version=version, **data.validated_data)
        return Response(ModelVersionSerializer(version).data)
