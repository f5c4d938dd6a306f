from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.access import access_project_by_slug
from annotation.api_errors import conflict
from annotation.models import Role

from . import services
from .selectors import access_training_job_by_id, training_jobs_visible_to
from .serializers import (
    TrainingJobCreateSerializer,
    TrainingJobSerializer,
    TrainingJobSummarySerializer,
)


class TrainingJobListCreateView(APIView):
    @extend_schema(
        responses={200: TrainingJobSummarySerializer(many=True)},
        summary="Training jobs of your projects, newest first (detail has history and log)",
    )
    def get(self, request: Request) -> Response:
        jobs = training_jobs_visible_to(request.user)[:100]
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
            request.user, data.validated_data["project"], min_role=Role.RESEARCHER
        )
        job = services.training_job_create(
            project=project,
            created_by=request.user,
            config=data.validated_data["config"],
            kind=data.validated_data["kind"],
        )
        return Response(TrainingJobSerializer(job).data, status=status.HTTP_201_CREATED)


class TrainingJobDetailView(APIView):
    @extend_schema(responses={200: TrainingJobSerializer}, summary="One training job")
    def get(self, request: Request, job_id: int) -> Response:
        job = access_training_job_by_id(request.user, job_id)
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
        job = access_training_job_by_id(request.user, job_id)
        if not services.training_job_cancel(job=job):
            return conflict(f"training job {job_id} is already {job.status}")
        return Response(TrainingJobSerializer(job).data)
