from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.access import access_project_by_slug, projects_for
from annotation.api_errors import not_found
from annotation.models import Role

from . import services
from .models import TrainingJob
from .serializers import TrainingJobCreateSerializer, TrainingJobSerializer


def _jobs_visible_to(user):
    return TrainingJob.objects.filter(project__in=projects_for(user, min_role=Role.RESEARCHER))


class TrainingJobListCreateView(APIView):
    @extend_schema(
        responses={200: TrainingJobSerializer(many=True)}, summary="Training jobs you may see"
    )
    def get(self, request: Request) -> Response:
        jobs = _jobs_visible_to(request.user).select_related("project")[:100]
        return Response(TrainingJobSerializer(jobs, many=True).data)

    @extend_schema(
        request=TrainingJobCreateSerializer,
        responses={201: TrainingJobSerializer, 404: OpenApiResponse(description="No such project")},
        summary="Start a training job (researchers)",
    )
    def post(self, request: Request) -> Response:
        data = TrainingJobCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        project = access_project_by_slug(
            request.user, data.validated_data["project"], min_role=Role.RESEARCHER
        )
        job = services.training_job_create(
            project=project, created_by=request.user, config=data.validated_data["config"]
        )
        return Response(TrainingJobSerializer(job).data, status=status.HTTP_201_CREATED)


class TrainingJobDetailView(APIView):
    @extend_schema(responses={200: TrainingJobSerializer}, summary="One training job")
    def get(self, request: Request, job_id: int) -> Response:
        job = _jobs_visible_to(request.user).select_related("project").filter(pk=job_id).first()
        if job is None:
            return not_found(f"no training job {job_id}")
        return Response(TrainingJobSerializer(job).data)
