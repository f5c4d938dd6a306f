from django.contrib.auth import authenticate, login, logout
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from . import members, selectors, services
from .access import access_assignment_by_id, request_user, user_role
from .serializers import (
    InviteAcceptSerializer,
    JudgmentCreateSerializer,
    JudgmentSerializer,
    LoginSerializer,
    MeSerializer,
    NextAssignmentSerializer,
    SkipSerializer,
    SubmitAndNextSerializer,
    assignment_data,
    judgment_data,
)


def _me(user) -> dict:
    return {"id": user.pk, "username": user.get_username(), "role": user_role(user)}


class CsrfView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses={204: None}, summary="Set the CSRF cookie")
    def get(self, request: Request) -> Response:
        return Response(status=status.HTTP_204_NO_CONTENT)

    @classmethod
    def as_view(cls, **initkwargs):
        return ensure_csrf_cookie(super().as_view(**initkwargs))


class LoginView(APIView):
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(request=LoginSerializer, responses={200: MeSerializer}, summary="Log in")
    def post(self, request: Request) -> Response:
        # DRF only checks CSRF for logged-in sessions; login itself must be protected too.
        SessionAuthentication().enforce_csrf(request)
        data = LoginSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(request, **data.validated_data)
        if user is None:
            return Response(
                {
                    "detail": "Wrong username or password.",
                    "errors": {"password": ["Wrong username or password."]},
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        login(request, user)
        return Response(MeSerializer(_me(user)).data)


class LogoutView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(request=None, responses={204: None}, summary="Log out")
    def post(self, request: Request) -> Response:
        logout(request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    @extend_schema(responses={200: MeSerializer}, summary="The logged-in user")
    def get(self, request: Request) -> Response:
        return Response(MeSerializer(_me(request_user(request))).data)


class NextAssignmentView(APIView):
    @extend_schema(
        responses={200: NextAssignmentSerializer},
        summary="Claim (or resume) the next pair to judge; null when the queue is empty",
    )
    def get(self, request: Request) -> Response:
        assignment = services.assignment_claim_next(annotator=request_user(request))
        display = selectors.assignment_display(assignment) if assignment else None
        return Response({"assignment": assignment_data(display)})


def _submit(request: Request, assignment_id: int) -> services.SubmitResult:
    """Shared by submit and submit-and-next: parse, check access, call the service."""
    data = JudgmentCreateSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    # The service reads the assignment only if it is the caller's (AccessDenied otherwise).
    return services.judgment_submit_by_id(
        annotator_id=request_user(request).pk, assignment_id=assignment_id, **data.validated_data
    )


def _created_or_repeat(result: services.SubmitResult) -> int:
    return status.HTTP_201_CREATED if result.created else status.HTTP_200_OK


class JudgmentSubmitView(APIView):
    @extend_schema(
        request=JudgmentCreateSerializer,
        responses={
            201: JudgmentSerializer,
            200: OpenApiResponse(JudgmentSerializer, description="Repeat of an earlier submit"),
            404: OpenApiResponse(description="No such assignment of yours"),
            409: OpenApiResponse(description="Expired or already judged"),
        },
        summary="Submit the judgment for one of your assignments",
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        result = _submit(request, assignment_id)
        return Response(judgment_data(result.judgment), status=_created_or_repeat(result))


class SubmitAndNextView(APIView):
    @extend_schema(
        request=JudgmentCreateSerializer,
        responses={
            201: SubmitAndNextSerializer,
            200: OpenApiResponse(SubmitAndNextSerializer, description="Repeat of a submit"),
            404: OpenApiResponse(description="No such assignment of yours"),
            409: OpenApiResponse(description="Expired or already judged"),
        },
        summary="Submit a judgment and claim the next pair in one round trip",
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        data = JudgmentCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # The service reads the assignment only if it is the caller's (AccessDenied otherwise).
        result, following = services.judgment_submit_and_claim_next(
            annotator=request_user(request), assignment_id=assignment_id, **data.validated_data
        )
        body = {
            "judgment": judgment_data(result.judgment),
            "next": assignment_data(selectors.assignment_display(following) if following else None),
        }
        return Response(body, status=_created_or_repeat(result))


class SkipView(APIView):
    @extend_schema(
        request=SkipSerializer,
        responses={200: NextAssignmentSerializer, 404: None, 409: None},
        summary="Skip one of your pending assignments with a reason; returns the next one",
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        data = SkipSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        assignment = access_assignment_by_id(request_user(request), assignment_id)
        services.assignment_skip(assignment=assignment, reason=data.validated_data["reason"])
        following = services.assignment_claim_next(
            annotator=request_user(request), project_id=assignment.task.project_id
        )
        display = selectors.assignment_display(following) if following else None
        return Response({"assignment": assignment_data(display)})


class InviteAcceptView(APIView):
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(
        request=InviteAcceptSerializer,
        responses={204: None, 400: OpenApiResponse(description="Bad link or weak password")},
        summary="Set the password of an invited account",
    )
    def post(self, request: Request) -> Response:
        SessionAuthentication().enforce_csrf(request)
        data = InviteAcceptSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        members.invite_accept(**data.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)
