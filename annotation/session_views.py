from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from models_serving.client import Candidate
from models_serving.models import ModelVersion

from . import services, sessions
from .access import (
    access_conversation_by_id,
    access_project_by_slug,
    access_require_project_role,
    request_user,
)
from .api_errors import not_found
from .models import Role
from .serializers import (
    CandidatesAttachSerializer,
    SessionSerializer,
    SessionStartSerializer,
    SessionSummarySerializer,
    UserTurnSerializer,
)

NO_ACCESS = OpenApiResponse(description="No such session of yours")


def _session_response(conversation, code: int = status.HTTP_200_OK) -> Response:
    return Response(SessionSerializer(sessions.session_display(conversation)).data, status=code)


class SessionStartView(APIView):
    @extend_schema(
        responses={
            200: SessionSummarySerializer(many=True),
            404: OpenApiResponse(description="No access"),
        },
        summary="Your own live sessions in a project, open ones first, newest first",
    )
    def get(self, request: Request, slug: str) -> Response:
        project = access_project_by_slug(request_user(request), slug, min_role=Role.ANNOTATOR)
        rows = sessions.session_list(project=project, owner=request_user(request))
        return Response(SessionSummarySerializer(rows, many=True).data)

    @extend_schema(
        request=SessionStartSerializer,
        responses={
            201: SessionSerializer,
            403: OpenApiResponse(description="Only researchers choose model versions"),
            404: OpenApiResponse(description="No access"),
        },
        summary="Start a live multi-turn session in a project",
    )
    def post(self, request: Request, slug: str) -> Response:
        project = access_project_by_slug(request_user(request), slug, min_role=Role.ANNOTATOR)
        data = SessionStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        versions = None
        if "model_version_ids" in data.validated_data:
            access_require_project_role(request_user(request), project, min_role=Role.RESEARCHER)
            versions = _enabled_versions(data.validated_data["model_version_ids"])
        conversation = sessions.session_start(
            project=project,
            owner=request_user(request),
            system=data.validated_data["system"],
            model_versions=versions,
            candidates_per_turn=data.validated_data["candidates_per_turn"],
        )
        return _session_response(conversation, status.HTTP_201_CREATED)


class SessionDetailView(APIView):
    @extend_schema(responses={200: SessionSerializer, 404: NO_ACCESS}, summary="Session state")
    def get(self, request: Request, session_id: int) -> Response:
        conversation = access_conversation_by_id(request_user(request), session_id)
        return _session_response(conversation)


class SessionTurnView(APIView):
    @extend_schema(
        request=UserTurnSerializer,
        responses={201: SessionSerializer, 404: NO_ACCESS, 409: None},
        summary="Write the next user message; candidates for it are then generated and judged",
    )
    def post(self, request: Request, session_id: int) -> Response:
        data = UserTurnSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        conversation = access_conversation_by_id(request_user(request), session_id)
        sessions.session_add_user_turn(
            conversation=conversation, content=data.validated_data["content"]
        )
        conversation.refresh_from_db()
        return _session_response(conversation, status.HTTP_201_CREATED)


class SessionCandidatesView(APIView):
    @extend_schema(
        request=CandidatesAttachSerializer,
        responses={201: SessionSerializer, 404: NO_ACCESS, 409: None},
        summary="Attach generated candidates to the open turn (researchers, model services)",
    )
    def post(self, request: Request, session_id: int, turn_id: int) -> Response:
        data = CandidatesAttachSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        conversation = access_conversation_by_id(request_user(request), session_id, as_owner=False)
        turn = conversation.turns.filter(pk=turn_id).first()
        if turn is None:
            return not_found(f"no turn {turn_id} in this session")
        candidates = [_candidate(c) for c in data.validated_data["candidates"]]
        sessions.turn_attach_candidates(turn=turn, candidates=candidates)
        return _session_response(conversation, status.HTTP_201_CREATED)


class SessionEndView(APIView):
    @extend_schema(
        request=None, responses={200: SessionSerializer, 404: NO_ACCESS}, summary="End a session"
    )
    def post(self, request: Request, session_id: int) -> Response:
        conversation = access_conversation_by_id(request_user(request), session_id)
        return _session_response(sessions.session_end(conversation=conversation))


def _enabled_versions(ids: list[int]) -> list[ModelVersion]:
    versions = list(ModelVersion.objects.filter(pk__in=ids, enabled=True).order_by("pk"))
    if len(versions) != len(set(ids)):
        missing = sorted(set(ids) - {v.pk for v in versions})
        raise services.InvalidInput("model_version_ids", f"no enabled model version {missing}")
    return versions


def _candidate(data: dict) -> Candidate:
    return Candidate(
        content=data["content"],
        model=data["model_name"],
        seed=data["seed"],
        finish_reason=data["finish_reason"],
        prompt_tokens=data.get("prompt_tokens"),
        completion_tokens=data.get("completion_tokens"),
        latency_ms=data["latency_ms"],
        sampling_params=data["sampling_params"],
    )
