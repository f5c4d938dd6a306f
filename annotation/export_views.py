"""Dataset exports: admins create snapshots, the project's researchers read and download."""

from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import exports
from .access import AccessDenied, access_project_by_slug, request_user
from .answers import InvalidInput
from .export_rows import AGGREGATIONS, FORMATS
from .models import ExportSnapshot, Role


class ExportRulesSerializer(serializers.Serializer):
    ties = serializers.ChoiceField(choices=["drop", "keep"], default="drop")
    both_bad = serializers.ChoiceField(choices=["drop", "keep"], default="drop")
    min_strength = serializers.IntegerField(min_value=0, max_value=10, default=1)
    aggregate = serializers.ChoiceField(choices=list(AGGREGATIONS), default="all")
    margin_by_strength = serializers.DictField(
        child=serializers.FloatField(min_value=-100, max_value=100), required=False
    )
    final_turn_only = serializers.BooleanField(default=False)
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0)

    def validate_margin_by_strength(self, value: dict) -> dict:
        if not all(k.isdigit() and int(k) <= 10 for k in value):
            raise serializers.ValidationError("keys are strengths 0-10")
        return value


class ExportFiltersSerializer(serializers.Serializer):
    rounds = serializers.ListField(child=serializers.IntegerField(min_value=1), default=list)
    model_versions = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        default=list,
        help_text="On-policy only: every candidate of a judgment from these versions.",
    )
    since = serializers.DateTimeField(required=False, allow_null=True, default=None)
    until = serializers.DateTimeField(required=False, allow_null=True, default=None)
    guideline_versions = serializers.ListField(
        child=serializers.IntegerField(min_value=1), default=list
    )
    annotators = serializers.ListField(child=serializers.IntegerField(min_value=1), default=list)


class ExportCreateSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=list(FORMATS), default="trl-preference")
    file_format = serializers.ChoiceField(choices=list(exports.FILE_FORMATS), default="jsonl")
    rules = ExportRulesSerializer(required=False)
    filters = ExportFiltersSerializer(required=False)
    validate_tokenizer = serializers.CharField(
        required=False,
        allow_null=True,
        default=None,
        max_length=500,
        help_text="A tokenizer directory on the server (under the models or var directory).",
    )
    max_length = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, max_value=1_000_000
    )

    def validate_validate_tokenizer(self, value: str | None) -> str | None:
        if value is None:
            return None
        path = Path(value).resolve()
        roots = [Path(settings.MODELS_DIR).resolve(), Path(settings.VAR_DIR).resolve()]
        if not any(root == path or root in path.parents for root in roots) or not path.is_dir():
            raise serializers.ValidationError("not a tokenizer directory on this server")
        return str(path)


class ExportSnapshotSerializer(serializers.ModelSerializer):
    # Declared, not derived: the derived maximum differs between Postgres and SQLite.
    judgments_total = serializers.IntegerField(read_only=True)
    judgments_done = serializers.IntegerField(read_only=True)
    row_count = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = ExportSnapshot
        fields = [
            "id",
            "format",
            "file_format",
            "options",
            "status",
            "judgments_total",
            "judgments_done",
            "row_count",
            "content_sha256",
            "file_name",
            "card",
            "validation",
            "error",
            "created_at",
            "finished_at",
        ]


def _options(validated: dict) -> dict:
    def iso(value):
        return value.isoformat() if value is not None else None

    filters = dict(validated.get("filters") or {})
    for name in ("since", "until"):
        filters[name] = iso(filters.get(name))
    return {**validated, "rules": dict(validated.get("rules") or {}), "filters": filters}


class ExportListView(APIView):
    @extend_schema(
        responses={200: ExportSnapshotSerializer(many=True)}, summary="The project's exports"
    )
    def get(self, request: Request, slug: str) -> Response:
        project = access_project_by_slug(request_user(request), slug, min_role=Role.RESEARCHER)
        found = project.exports.order_by("-created_at", "-id")
        return Response(ExportSnapshotSerializer(found, many=True).data)

    @extend_schema(
        request=ExportCreateSerializer,
        responses={202: ExportSnapshotSerializer, 400: OpenApiResponse(description="Bad option")},
        summary="Export a snapshot (admins): built in the background; watch its progress",
    )
    def post(self, request: Request, slug: str) -> Response:
        project = access_project_by_slug(request_user(request), slug, min_role=Role.ADMIN)
        data = ExportCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        from .tasks import run_export

        snapshot = exports.export_create(
            project=project, options=_options(data.validated_data), created_by=request_user(request)
        )
        transaction.on_commit(lambda: run_export.delay(snapshot.pk))
        return Response(ExportSnapshotSerializer(snapshot).data, status=status.HTTP_202_ACCEPTED)


def _snapshot_of(request: Request, slug: str, export_id: int) -> ExportSnapshot:
    project = access_project_by_slug(request_user(request), slug, min_role=Role.RESEARCHER)
    snapshot = project.exports.filter(pk=export_id).first()
    if snapshot is None:
        raise AccessDenied(f"no export {export_id} in this project")
    return snapshot


class ExportDetailView(APIView):
    @extend_schema(responses={200: ExportSnapshotSerializer}, summary="An export and its card")
    def get(self, request: Request, slug: str, export_id: int) -> Response:
        return Response(ExportSnapshotSerializer(_snapshot_of(request, slug, export_id)).data)


class ExportDownloadView(APIView):
    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            409: OpenApiResponse(description="Not built yet, or failed"),
        },
        summary="Download an export's file (the project's researchers and admins)",
    )
    def get(self, request: Request, slug: str, export_id: int):
        snapshot = _snapshot_of(request, slug, export_id)
        if snapshot.status != ExportSnapshot.Status.SUCCEEDED:
            return Response(
                {"detail": f"this export is {snapshot.status}, not ready to download"},
                status=status.HTTP_409_CONFLICT,
            )
        try:
            path = exports.export_path(snapshot)
        except InvalidInput:
            raise AccessDenied("this export has no file") from None
        return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)
