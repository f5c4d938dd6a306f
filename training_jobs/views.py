from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.access import access_project_by_slug, request_user
from annotation.api_errors import conflict
from annotation.models import Role

from . import services, triggers
from .selectors import (
    access_training_job_by_id,
    access_training_trigger_by_id,
    training_jobs_visible_to,
)
from .serializers import (
    TrainingJobCreateSerializer,
    TrainingJobSerializer,
    TrainingJobSummarySerializer,
    TrainingTriggerSerializer,
    TrainingTriggerWriteSerializer,
)


class TrainingJobListCreateView(APIView):
    @extend_schema(
        responses={200: TrainingJobSummarySerializer(many=True)},
        summary="Training jobs of your projects, newest first (detail has history and log)",
    )
    def get(self, request: Request) -> Response:
        jobs = training_jobs_visible_to(request_user(request))[:100]
        return Response(TrainingJobSummarySerializer(jobs, many=True).data)

    @extend_schema(
        request=TrainingJobCreateSerializer,
        responses={
            201: TrainingJobSerializer,
            400: OpenApiResponse(description="A config field the job's kind does not take"),
            404: OpenApiResponse(description="No such project"),
        },
        summary="Start a training job (researchers)",
    )
    def post(self, request: Request) -> Response:
        data = TrainingJobCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        project = access_project_by_slug(
            request_user(request), data.validated_data["project"], min_role=Role.RESEARCHER
        )
        job = services.training_job_create(
            project=project,
            created_by=request_user(request),
            config=data.validated_data["config"],
            kind=data.validated_data["kind"],
        )
        return Response(TrainingJobSerializer(job).data, status=status.HTTP_201_CREATED)


class TrainingJobDetailView(APIView):
    @extend_schema(responses={200: TrainingJobSerializer}, summary="One training job")
    def get(self, request: Request, job_id: int) -> Response:
        job = access_training_job_by_id(request_user(request), job_id)
        return Response(TrainingJobSerializer(job).data)


class TrainingJobCancelView(APIView):
    @extend_schema(
        request=None,
        responses={
            200: TrainingJobSerializer,
            409: OpenApiResponse(description="The job has already finished"),
        },
        summary="Cancel a queued or running job (researchers); its process is stopped",
    )
    def post(self, request: Request, job_id: int) -> Response:
        job = access_training_job_by_id(request_user(request), job_id)
        if not services.training_job_cancel(job=job):
            return conflict(f"training job {job_id} is already {job.status}")
        return Response(TrainingJobSerializer(job).data)


class TrainingTriggerListView(APIView):
    @extend_schema(
        responses={200: TrainingTriggerSerializer(many=True)},
        summary="The project's training triggers and what each last did (researchers)",
    )
    def get(self, request: Request, slug: str) -> Response:
        project = access_project_by_slug(request_user(request), slug, min_role=Role.RESEARCHER)
        found = project.training_triggers.select_related("project").prefetch_related("last_jobs")
        return Response(TrainingTriggerSerializer(found, many=True).data)

    @extend_schema(
        request=TrainingTriggerWriteSerializer,
        responses={
            201: TrainingTriggerSerializer,
            400: OpenApiResponse(description="A bad cron, time zone, kind or recipe setting"),
        },
        summary="Train on a cron schedule or when a round closes, given enough new judgments",
    )
    def post(self, request: Request, slug: str) -> Response:
        project = access_project_by_slug(request_user(request), slug, min_role=Role.RESEARCHER)
        data = TrainingTriggerWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        trigger = triggers.trigger_create(
            project=project, created_by=request_user(request), **data.validated_data
        )
        return Response(TrainingTriggerSerializer(trigger).data, status=status.HTTP_201_CREATED)


class TrainingTriggerDetailView(APIView):
    @extend_schema(responses={200: TrainingTriggerSerializer}, summary="One training trigger")
    def get(self, request: Request, trigger_id: int) -> Response:
        trigger = access_training_trigger_by_id(request_user(request), trigger_id)
        return Response(TrainingTriggerSerializer(trigger).data)

    @extend_schema(
        request=TrainingTriggerWriteSerializer,
        responses={
            200: TrainingTriggerSerializer,
            400: OpenApiResponse(description="A bad cron, time zone, kind or recipe setting"),
        },
        summary="Change a trigger; its beat schedule follows (researchers)",
    )
    def patch(self, request: Request, trigger_id: int) -> Response:
        trigger = access_training_trigger_by_id(request_user(request), trigger_id)
        data = TrainingTriggerWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        triggers.trigger_update(trigger=trigger, **data.validated_data)
        return Response(TrainingTriggerSerializer(trigger).data)

    @extend_schema(responses={204: None}, summary="Delete a trigger and its beat schedule")
    def delete(self, request: Request, trigger_id: int) -> Response:
        trigger = access_training_trigger_by_id(request_user(request), trigger_id)
        triggers.trigger_delete(trigger=trigger)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TrainingTriggerRunView(APIView):
    @extend_schema(
        request=None,
        responses={200: TrainingTriggerSerializer},
        summary="Check a trigger now, enabled or not; last_result says what it did",
    )
    def post(self, request: Request, trigger_id: int) -> Response:
        trigger = access_training_trigger_by_id(request_user(request), trigger_id)
        checked = triggers.trigger_run(trigger_id=trigger.pk)
        return Response(TrainingTriggerSerializer(checked).data)
