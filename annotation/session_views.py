from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from models_serving.client import Candidate

from . import sessions
from .access import access_conversation_by_id, access_project_by_slug
from .api_errors import not_found
from .models import Role
from .serializers import (
    CandidatesAttachSerializer,
    SessionSerializer,
    SessionStartSerializer,
    UserTurnSerializer,
)

NO_ACCESS = OpenApiResponse(description="No such session of yours")


def _session_response(conversation, code: int = status.HTTP_200_OK) -> Response:
    return Response(SessionSerializer(sessions.session_display(conversation)).data, status=code)


class SessionStartView(APIView):
    @extend_schema(
        request=SessionStartSerializer,
        responses={201: SessionSerializer, 404: OpenApiResponse(description="No access")},
        summary="Start a live multi-turn session in a project",
    )
    def post(self, request: Request, slug: str) -> Response:
        project = access_project_by_slug(request.user, slug, min_role=Role.ANNOTATOR)
        data = SessionStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        conversation = sessions.session_start(
            project=project, owner=request.user, system=data.validated_data["system"]
        )
        return _session_response(conversation, status.HTTP_201_CREATED)


class SessionDetailView(APIView):
    @extend_schema(responses={200: SessionSerializer, 404: NO_ACCESS}, summary="Session state")
    def get(self, request: Request, session_id: int) -> Response:
        conversation = access_conversation_by_id(request.user, session_id)
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
        conversation = access_conversation_by_id(request.user, session_id)
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
        conversation = access_conversation_by_id(request.user, session_id, as_owner=False)
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
        conversation = access_conversation_by_id(request.user, session_id)
        return _session_response(sessions.session_end(conversation=conversation))


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
