from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import members, selectors, services
from .access import access_project_by_slug, projects_for, request_user
from .api_errors import not_found
from .models import ROLE_RANK, Membership, Role
from .quality import annotator_reports, project_report
from .serializers import (
    GoldMarkSerializer,
    GoldTaskSerializer,
    GuidelinesVersionSerializer,
    MemberAddedSerializer,
    MemberAddSerializer,
    MemberSerializer,
    ProjectSettingsSerializer,
    ProjectSummarySerializer,
    PromptImportReportSerializer,
    PromptImportSerializer,
    QualityReportSerializer,
    TaskListQuerySerializer,
    TaskPageSerializer,
)


class ProjectListView(APIView):
    @extend_schema(responses={200: ProjectSummarySerializer(many=True)}, summary="Your projects")
    def get(self, request: Request) -> Response:
        projects = projects_for(request_user(request), min_role=Role.ANNOTATOR).order_by("slug")
        roles = dict(
            Membership.objects.filter(user=request_user(request)).values_list("project_id", "role")
        )
        rows = [
            {"slug": p.slug, "name": p.name, "role": roles.get(p.pk, Role.ADMIN)} for p in projects
        ]
        rows.sort(key=lambda r: (-ROLE_RANK[Role(r["role"])], r["slug"]))
        return Response(ProjectSummarySerializer(rows, many=True).data)


class ProjectDetailView(APIView):
    @extend_schema(responses={200: ProjectSettingsSerializer}, summary="Project settings")
    def get(self, request: Request, slug: str) -> Response:
        project = access_project_by_slug(request_user(request), slug, min_role=Role.RESEARCHER)
        return Response(ProjectSettingsSerializer(project).data)

    @extend_schema(
        request=ProjectSettingsSerializer(partial=True),
        responses={200: ProjectSettingsSerializer, 404: OpenApiResponse(description="No access")},
        summary="Change project settings (researchers); new guidelines become a new version",
    )
    def patch(self, request: Request, slug: str) -> Response:
        project = access_project_by_slug(request_user(request), slug, min_role=Role.RESEARCHER)
        data = ProjectSettingsSerializer(project, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        project = services.project_update(
            project=project, user=request_user(request), **data.validated_data
        )
        return Response(ProjectSettingsSerializer(project).data)


class GuidelinesVersionsView(APIView):
    @extend_schema(
        responses={
            200: GuidelinesVersionSerializer(many=True),
            404: OpenApiResponse(description="No access"),
        },
        summary="Every guidelines version of a project, newest first (researchers); "
        "PATCH the project's guidelines to write a new one",
    )
    def get(self, request: Request, slug: str) -> Response:
        project = access_project_by_slug(request_user(request), slug, min_role=Role.RESEARCHER)
        versions = project.guideline_versions.select_related("created_by").order_by("-version")
        return Response(GuidelinesVersionSerializer(versions, many=True).data)


class PromptImportView(APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": PromptImportSerializer},
        responses={
            200: PromptImportReportSerializer,
            404: OpenApiResponse(description="No access"),
        },
        summary="Import prompts from a JSONL or CSV file (researchers); reports errors per line",
    )
    def post(self, request: Request, slug: str) -> Response:
        project = access_project_by_slug(request_user(request), slug, min_role=Role.RESEARCHER)
        data = PromptImportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        report = services.prompts_import(project=project, data=upload.read(), filename=upload.name)
        return Response(PromptImportReportSerializer(report).data)


class ProjectQualityView(APIView):
    @extend_schema(
        responses={200: QualityReportSerializer, 404: OpenApiResponse(description="No access")},
        summary="Annotation quality per project and per annotator (researchers)",
    )
    def get(self, request: Request, slug: str) -> Response:
        project = access_project_by_slug(request_user(request), slug, min_role=Role.RESEARCHER)
        records = selectors.quality_records(project)
        names = dict(
            get_user_model()
            .objects.filter(pk__in={r.annotator_id for r in records})
            .values_list("pk", "username")
        )
        rows = [
            {**row, "annotator": names[row["annotator_id"]]} for row in annotator_reports(records)
        ]
        body = {"project": project_report(records), "annotators": rows}
        return Response(QualityReportSerializer(body).data)


class GoldTaskView(APIView):
    @extend_schema(
        request=GoldMarkSerializer,
        responses={200: GoldTaskSerializer, 404: OpenApiResponse(description="No access")},
        summary="Make a pairwise task a gold item with a known answer (researchers)",
    )
    def post(self, request: Request, slug: str, task_id: int) -> Response:
        project = access_project_by_slug(request_user(request), slug, min_role=Role.RESEARCHER)
        data = GoldMarkSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        task = project.tasks.filter(pk=task_id).first()
        if task is None:
            return not_found(f"no task {task_id} in this project")
        task = services.task_mark_gold(
            task=task, chosen_completion_id=data.validated_data["chosen"]
        )
        return Response(GoldTaskSerializer(task).data)


class MembersView(APIView):
    @extend_schema(
        responses={200: MemberSerializer(many=True), 404: OpenApiResponse(description="No access")},
        summary="Project members and their roles (researchers)",
    )
    def get(self, request: Request, slug: str) -> Response:
        project = access_project_by_slug(request_user(request), slug, min_role=Role.RESEARCHER)
        rows = project.memberships.select_related("user").order_by("user__username")
        body = [{"username": m.user.get_username(), "role": m.role} for m in rows]
        return Response(MemberSerializer(body, many=True).data)

    @extend_schema(
        request=MemberAddSerializer,
        responses={201: MemberAddedSerializer, 404: OpenApiResponse(description="No access")},
        summary="Add or re-role a member (admins); new accounts get a one-time invite link",
    )
    def post(self, request: Request, slug: str) -> Response:
        project = access_project_by_slug(request_user(request), slug, min_role=Role.ADMIN)
        data = MemberAddSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        added = members.member_add(
            project=project,
            username=data.validated_data["username"],
            role=data.validated_data["role"],
        )
        body = {
            "username": added.membership.user.get_username(),
            "role": added.membership.role,
            "invite_path": added.invite_path,
        }
        return Response(MemberAddedSerializer(body).data, status=status.HTTP_201_CREATED)


class TaskListView(APIView):
    @extend_schema(
        parameters=[TaskListQuerySerializer],
        responses={200: TaskPageSerializer, 404: OpenApiResponse(description="No access")},
        summary="A project's tasks with candidates and model names (researchers)",
    )
    def get(self, request: Request, slug: str) -> Response:
        project = access_project_by_slug(request_user(request), slug, min_role=Role.RESEARCHER)
        query = TaskListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = dict(query.validated_data)
        offset, limit, ordering = params.pop("offset"), params.pop("limit"), params.pop("ordering")
        filters = {k: v for k, v in params.items() if v is not None}
        tasks = selectors.tasks_for_researchers(project, filters=filters, ordering=ordering)
        page = {"count": tasks.count(), "results": tasks[offset : offset + limit]}
        return Response(TaskPageSerializer(page).data)
