"""Collection rounds for researchers: create, start bulk generation, watch its progress."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from models_serving.models import ModelVersion
from models_serving.serializers import SamplingParamsField
from models_serving.validators import validate_sampling_params

from . import rounds
from .access import AccessDenied, access_project_by_slug, request_user
from .models import Judgment, Role, Round
from .serializers import refuse_nul_in_json


class RoundCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, validators=[refuse_nul_in_json])
    model_version_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), min_length=1, max_length=8
    )
    prompt_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        max_length=100_000,
        help_text="These prompts; or leave out and give prompt_count to sample the pool.",
    )
    prompt_count = serializers.IntegerField(min_value=1, max_value=100_000, required=False)
    candidates_per_prompt = serializers.IntegerField(min_value=2, max_value=8, default=2)
    sampling_params = SamplingParamsField(required=False, validators=[validate_sampling_params])
    allow_repeat = serializers.BooleanField(
        default=False, help_text="Let prompts of earlier rounds be sampled again."
    )
    target_judgments = serializers.IntegerField(min_value=1, max_value=10_000_000, required=False)
    deadline = serializers.DateTimeField(required=False)
    train_on_close = serializers.BooleanField(default=False)
    continue_automatically = serializers.BooleanField(default=False)
    pairing = serializers.ChoiceField(choices=Round.Pairing.choices, default="on_policy")

    def validate(self, attrs: dict) -> dict:
        if ("prompt_ids" in attrs) == ("prompt_count" in attrs):
            raise serializers.ValidationError({"prompt_count": "give prompt_ids or prompt_count"})
        return attrs


class RoundSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=Round.Status.choices)
    model_version_ids = serializers.ListField(child=serializers.IntegerField())
    candidates_per_prompt = serializers.IntegerField()
    sampling_params = serializers.DictField()
    generation_total = serializers.IntegerField()
    generation_done = serializers.IntegerField()
    generation_failed = serializers.IntegerField()
    target_judgments = serializers.IntegerField(allow_null=True)
    deadline = serializers.DateTimeField(allow_null=True)
    train_on_close = serializers.BooleanField()
    continue_automatically = serializers.BooleanField()
    pairing = serializers.ChoiceField(choices=Round.Pairing.choices)
    previous = serializers.IntegerField(allow_null=True)
    close_reason = serializers.CharField()
    tasks = serializers.IntegerField()
    judgments = serializers.IntegerField()
    created_at = serializers.DateTimeField()


def _round_data(round_: Round) -> dict:
    return RoundSerializer(
        {
            "id": round_.pk,
            "name": round_.name,
            "status": round_.status,
            "model_version_ids": sorted(v.pk for v in round_.model_versions.all()),
            "candidates_per_prompt": round_.candidates_per_prompt,
            "sampling_params": round_.sampling_params,
            "generation_total": round_.generation_total,
            "generation_done": round_.generation_done,
            "generation_failed": round_.generation_failed,
            "target_judgments": round_.target_judgments,
            "deadline": round_.deadline,
            "train_on_close": round_.train_on_close,
            "continue_automatically": round_.continue_automatically,
            "pairing": round_.pairing,
            "previous": round_.previous_id,
            "close_reason": round_.close_reason,
            "tasks": round_.tasks.count(),
            "judgments": Judgment.objects.filter(task__round=round_).count(),
            "created_at": round_.created_at,
        }
    ).data


class RoundListView(APIView):
    @extend_schema(responses={200: RoundSerializer(many=True)}, summary="The project's rounds")
    def get(self, request: Request, slug: str) -> Response:
        project = access_project_by_slug(request_user(request), slug, min_role=Role.RESEARCHER)
        found = project.rounds.prefetch_related("model_versions").order_by("-created_at", "-id")
        return Response([_round_data(r) for r in found])

    @extend_schema(
        request=RoundCreateSerializer,
        responses={201: RoundSerializer, 400: OpenApiResponse(description="Bad settings")},
        summary="Create a draft round (researchers): prompts, model versions, sampling",
    )
    def post(self, request: Request, slug: str) -> Response:
        project = access_project_by_slug(request_user(request), slug, min_role=Role.RESEARCHER)
        data = RoundCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        ids = fields.pop("model_version_ids")
        versions = list(ModelVersion.objects.filter(pk__in=ids, enabled=True))
        if len(versions) != len(set(ids)):
            missing = sorted(set(ids) - {v.pk for v in versions})
            raise rounds.InvalidInput("model_version_ids", f"no enabled model version {missing}")
        round_ = rounds.round_create(
            project=project, model_versions=versions, created_by=request_user(request), **fields
        )
        return Response(_round_data(round_), status=status.HTTP_201_CREATED)


def _round_of(request: Request, slug: str, round_id: int) -> Round:
    project = access_project_by_slug(request_user(request), slug, min_role=Role.RESEARCHER)
    found = project.rounds.filter(pk=round_id).first()
    if found is None:
        raise AccessDenied(f"no round {round_id} in this project")
    return found


class RoundDetailView(APIView):
    @extend_schema(responses={200: RoundSerializer}, summary="A round and its progress")
    def get(self, request: Request, slug: str, round_id: int) -> Response:
        return Response(_round_data(_round_of(request, slug, round_id)))


class RoundStartView(APIView):
    @extend_schema(
        request=None,
        responses={202: RoundSerializer, 400: OpenApiResponse(description="Not a draft")},
        summary="Start bulk generation of a draft round (a Celery task; watch the progress)",
    )
    def post(self, request: Request, slug: str, round_id: int) -> Response:
        round_ = _round_of(request, slug, round_id)
        rounds.round_start(round=round_)
        round_.refresh_from_db()
        return Response(_round_data(round_), status=status.HTTP_202_ACCEPTED)


class RoundCloseView(APIView):
    @extend_schema(
        request=None,
        responses={200: RoundSerializer, 400: OpenApiResponse(description="Not open")},
        summary="Close a round by hand (it also closes at its target or deadline)",
    )
    def post(self, request: Request, slug: str, round_id: int) -> Response:
        round_ = _round_of(request, slug, round_id)
        if not rounds.round_close(round=round_, reason="by hand"):
            raise rounds.InvalidInput("status", f"a {round_.status} round cannot be closed")
        round_.refresh_from_db()
        return Response(_round_data(round_))


class VersionScoreSerializer(serializers.Serializer):
    model_version_id = serializers.IntegerField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field, not Field.label
    score = serializers.FloatField(help_text="Bradley–Terry strength, 400·log10 scale, mean 0.")
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)


class HeadToHeadSerializer(serializers.Serializer):
    a = serializers.IntegerField()
    b = serializers.IntegerField()
    a_wins = serializers.IntegerField()
    b_wins = serializers.IntegerField()
    ties = serializers.IntegerField()
    a_win_rate = serializers.FloatField()
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)


class RoundReportSerializer(serializers.Serializer):
    judgments = serializers.IntegerField()
    annotators = serializers.IntegerField()
    annotator_hours = serializers.FloatField()
    ties = serializers.IntegerField()
    both_bad = serializers.IntegerField()
    krippendorff_alpha = serializers.FloatField(allow_null=True)
    versions = VersionScoreSerializer(many=True)
    head_to_head = HeadToHeadSerializer(many=True)


class RoundReportView(APIView):
    @extend_schema(
        responses={200: RoundReportSerializer},
        summary="A round's judgments, annotator hours, agreement and version win rates",
    )
    def get(self, request: Request, slug: str, round_id: int) -> Response:
        round_ = _round_of(request, slug, round_id)
        return Response(RoundReportSerializer(rounds.round_report(round=round_)).data)
