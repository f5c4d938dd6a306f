from django.contrib.auth import authenticate, login, logout
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors, services
from .access import AccessDenied, access_assignment_by_id, user_role
from .api_errors import conflict, not_found
from .serializers import (
    JudgmentCreateSerializer,
    JudgmentSerializer,
    LoginSerializer,
    MeSerializer,
    NextAssignmentSerializer,
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
        return Response(MeSerializer(_me(request.user)).data)


class NextAssignmentView(APIView):
    @extend_schema(
        responses={200: NextAssignmentSerializer},
        summary="Claim (or resume) the next pair to judge; null when the queue is empty",
    )
    def get(self, request: Request) -> Response:
        assignment = services.assignment_claim_next(annotator=request.user)
        display = selectors.assignment_display(assignment) if assignment else None
        return Response(NextAssignmentSerializer({"assignment": display}).data)


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
        data = JudgmentCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            assignment = access_assignment_by_id(request.user, assignment_id)
        except AccessDenied as exc:
            return not_found(str(exc))
        try:
            result = services.judgment_submit(assignment=assignment, **data.validated_data)
        except services.InvalidChoice as exc:
            return Response(
                {"detail": f"Invalid input: choice. {exc}", "errors": {"choice": [str(exc)]}},
                status=status.HTTP_400_BAD_REQUEST,
            )
        except services.JudgmentConflict as exc:
            return conflict(str(exc))
        code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        return Response(JudgmentSerializer(result.judgment).data, status=code)
