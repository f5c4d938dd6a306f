from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import services
from .access import AccessDenied, access_project_by_slug, projects_for
from .api_errors import invalid, not_found
from .models import ROLE_RANK, Membership, Role
from .serializers import ProjectSettingsSerializer, ProjectSummarySerializer


class ProjectListView(APIView):
    @extend_schema(responses={200: ProjectSummarySerializer(many=True)}, summary="Your projects")
    def get(self, request: Request) -> Response:
        projects = projects_for(request.user, min_role=Role.ANNOTATOR).order_by("slug")
        roles = dict(Membership.objects.filter(user=request.user).values_list("project_id", "role"))
        rows = [
            {"slug": p.slug, "name": p.name, "role": roles.get(p.pk, Role.ADMIN)} for p in projects
        ]
        rows.sort(key=lambda r: (-ROLE_RANK[Role(r["role"])], r["slug"]))
        return Response(ProjectSummarySerializer(rows, many=True).data)


class ProjectDetailView(APIView):
    @extend_schema(responses={200: ProjectSettingsSerializer}, summary="Project settings")
    def get(self, request: Request, slug: str) -> Response:
        try:
            project = access_project_by_slug(request.user, slug, min_role=Role.RESEARCHER)
        except AccessDenied as exc:
            return not_found(str(exc))
        return Response(ProjectSettingsSerializer(project).data)

    @extend_schema(
        request=ProjectSettingsSerializer(partial=True),
        responses={200: ProjectSettingsSerializer, 404: OpenApiResponse(description="No access")},
        summary="Change project settings (researchers); new guidelines become a new version",
    )
    def patch(self, request: Request, slug: str) -> Response:
        try:
            project = access_project_by_slug(request.user, slug, min_role=Role.RESEARCHER)
        except AccessDenied as exc:
            return not_found(str(exc))
        data = ProjectSettingsSerializer(project, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        try:
            project = services.project_update(
                project=project, user=request.user, **data.validated_data
            )
        except services.InvalidInput as exc:
            return invalid(exc.field, str(exc))
        return Response(ProjectSettingsSerializer(project).data)
