from rest_framework import serializers

from .answers import FLAGS, LABELS
from .models import LIVE_MAX_CANDIDATES, Interface, Project, Role

INT32_MAX = 2**31 - 1  # PositiveIntegerField columns
INT64_MAX = 2**63 - 1  # BigIntegerField columns


def refuse_nul_in_json(value):
    """Postgres text and jsonb reject NUL characters; refuse them at the edge instead of a 500."""
    if isinstance(value, str):
        if "\x00" in value:
            raise serializers.ValidationError("NUL characters are not allowed")
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_nul_in_json(key)
            refuse_nul_in_json(item)
    elif isinstance(value, list):
        for item in value:
            refuse_nul_in_json(item)
    return value


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=256, style={"input_type": "password"})


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices, allow_null=True)


class PromptMessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["system", "user", "assistant"])
    content = serializers.CharField(allow_blank=True, trim_whitespace=False)


class CandidateSerializer(serializers.Serializer):
    label = serializers.CharField()  # type: ignore[assignment]  # a field, not Field.label
    content = serializers.CharField(allow_blank=True, trim_whitespace=False)


class ScalePointSerializer(serializers.Serializer):
    value = serializers.IntegerField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field, not Field.label
    winner = serializers.ChoiceField(choices=["A", "B"], allow_null=True)
    strength = serializers.IntegerField()


class ProjectBriefSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    guidelines = serializers.CharField(allow_blank=True)


class AssignmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = ProjectBriefSerializer()
    prompt = PromptMessageSerializer(many=True)
    candidates = CandidateSerializer(many=True)
    interface = serializers.ChoiceField(choices=Interface.choices)
    scale = ScalePointSerializer(many=True)
    allow_both_bad = serializers.BooleanField()
    rating_rubric = serializers.DictField(child=serializers.CharField())
    rating_aspects = serializers.ListField(child=serializers.CharField())
    guidelines_version = serializers.IntegerField()
    expires_at = serializers.DateTimeField()


class NextAssignmentSerializer(serializers.Serializer):
    assignment = AssignmentSerializer(allow_null=True)


_DATETIME = serializers.DateTimeField()


def assignment_data(display: dict | None) -> dict | None:
    """``AssignmentSerializer(display).data``, built directly.

    The annotator loop returns one of these per call, and instantiating the nested
    serializer tree cost more CPU than the rest of the response; the schema still comes
    from AssignmentSerializer, and tests/annotation/test_api.py checks the two agree.
    """
    if display is None:
        return None
    project = display["project"]
    return {
        "id": display["id"],
        "project": {"slug": project.slug, "name": project.name, "guidelines": project.guidelines},
        "prompt": [{"role": m["role"], "content": m["content"]} for m in display["prompt"]],
        "candidates": [
            {"label": c["label"], "content": c["content"]} for c in display["candidates"]
        ],
        "interface": display["interface"],
        "scale": [
            {
                "value": p["value"],
                "label": p["label"],
                "winner": p["winner"],
                "strength": p["strength"],
            }
            for p in display["scale"]
        ],
        "allow_both_bad": display["allow_both_bad"],
        "rating_rubric": {str(k): str(v) for k, v in display["rating_rubric"].items()},
        "rating_aspects": [str(a) for a in display["rating_aspects"]],
        "guidelines_version": display["guidelines_version"],
        "expires_at": _DATETIME.to_representation(display["expires_at"]),
    }


def judgment_data(judgment) -> dict:
    """``JudgmentSerializer(judgment).data``, built directly (see ``assignment_data``)."""
    return {
        "id": judgment.pk,
        "kind": judgment.kind,
        "choice": judgment.choice,
        "both_bad": judgment.both_bad,
        "created_at": _DATETIME.to_representation(judgment.created_at),
    }


class RewriteSerializer(serializers.Serializer):
    label = serializers.ChoiceField(choices=list(LABELS))  # type: ignore[assignment]  # a field, not Field.label
    content = serializers.CharField(max_length=100_000, trim_whitespace=False)


class JudgmentCreateSerializer(serializers.Serializer):
    choice = serializers.IntegerField(
        allow_null=True,
        required=False,
        default=None,
        help_text="A value of the assignment's scale (its `scale[].value`); null if both_bad.",
    )
    both_bad = serializers.BooleanField(required=False, default=False)
    ranking = serializers.ListField(
        child=serializers.ChoiceField(choices=list(LABELS)),
        max_length=len(LABELS),
        required=False,
        allow_null=True,
        default=None,
        help_text="Ranking tasks: candidate labels, best first.",
    )
    ratings = serializers.DictField(
        child=serializers.DictField(child=serializers.IntegerField()),
        required=False,
        allow_null=True,
        default=None,
        help_text='Rating tasks: {"A": {"overall": 1-5, "<aspect>": 1-5}, ...}.',
    )
    thumbs = serializers.ChoiceField(
        choices=["up", "down"], required=False, allow_null=True, default=None
    )
    rewrite = RewriteSerializer(required=False, allow_null=True, default=None)
    flags = serializers.ListField(
        child=serializers.ChoiceField(choices=FLAGS), max_length=len(FLAGS), default=list
    )
    idempotency_key = serializers.RegexField(
        r"^[A-Za-z0-9_-]{8,64}$",
        help_text="Client-generated key (e.g. a UUID); a repeat returns the first judgment.",
        error_messages={"invalid": "Use 8-64 letters, digits, '-' or '_' (a UUID works)."},
    )
    time_spent_ms = serializers.IntegerField(min_value=0, max_value=24 * 3600 * 1000, default=0)
    comment = serializers.CharField(allow_blank=True, max_length=5000, default="")


class JudgmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    choice = serializers.IntegerField(allow_null=True)
    both_bad = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class SubmitAndNextSerializer(serializers.Serializer):
    judgment = JudgmentSerializer()
    next = AssignmentSerializer(allow_null=True)


class SkipSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, help_text="Why this task is skipped.")


class ProjectSummarySerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices)


class ProjectSettingsSerializer(serializers.ModelSerializer):
    custom_scale = serializers.JSONField(required=False, validators=[refuse_nul_in_json])
    rating_rubric = serializers.DictField(
        child=serializers.CharField(max_length=500), required=False
    )
    rating_aspects = serializers.ListField(
        child=serializers.SlugField(max_length=40), max_length=10, required=False
    )

    def validate_rating_rubric(self, value: dict) -> dict:
        if set(value) != {"1", "2", "3", "4", "5"}:
            raise serializers.ValidationError("give the wording of each point, keys '1' to '5'")
        return value

    def validate_rating_aspects(self, value: list[str]) -> list[str]:
        if len(set(value)) != len(value) or "overall" in value:
            raise serializers.ValidationError("aspects must be unique and not 'overall'")
        return value

    class Meta:
        model = Project
        fields = [
            "slug",
            "name",
            "guidelines",
            "guidelines_version",
            "scale_kind",
            "custom_scale",
            "allow_both_bad",
            "overlap",
            "max_pending",
            "lease_seconds",
            "gold_rate",
            "reask_rate",
            "rating_rubric",
            "rating_aspects",
            "created_at",
        ]
        read_only_fields = ["slug", "guidelines_version", "created_at"]
        extra_kwargs = {
            "overlap": {"min_value": 1, "max_value": 50},
            "max_pending": {"min_value": 1, "max_value": 50},
            "lease_seconds": {"min_value": 30, "max_value": 7 * 24 * 3600},
            "gold_rate": {"min_value": 0.0, "max_value": 0.5},
            "reask_rate": {"min_value": 0.0, "max_value": 0.5},
            "guidelines": {"max_length": 100_000},
        }


class GuidelinesVersionSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    text = serializers.CharField(allow_blank=True)
    created_by = serializers.CharField(
        source="created_by.username", allow_null=True, default=None, help_text="Who wrote it."
    )
    created_at = serializers.DateTimeField()


class PromptImportSerializer(serializers.Serializer):
    file = serializers.FileField(
        max_length=255, help_text="A .jsonl or .csv file of prompts (at most 20 MB)."
    )

    def validate_file(self, value):
        if value.size > 20 * 1024 * 1024:
            raise serializers.ValidationError("the file is larger than 20 MB")
        return value


class LineErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    field = serializers.CharField()
    message = serializers.CharField()


class PromptImportReportSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    duplicates = serializers.ListField(child=serializers.IntegerField())
    errors = LineErrorSerializer(many=True)  # type: ignore[assignment]  # a field, not .errors


class QualityFiguresSerializer(serializers.Serializer):
    n_judgments = serializers.IntegerField()
    n_gold = serializers.IntegerField()
    n_reask_pairs = serializers.IntegerField()
    n_shared_tasks = serializers.IntegerField()
    judgments_per_hour = serializers.FloatField(allow_null=True)
    gold_accuracy = serializers.FloatField(allow_null=True)
    self_consistency = serializers.FloatField(allow_null=True)
    position_a_rate = serializers.FloatField(allow_null=True)
    longer_wins_rate = serializers.FloatField(allow_null=True)
    tie_rate = serializers.FloatField(allow_null=True)
    mean_time_ms = serializers.FloatField(allow_null=True)


class ProjectQualitySerializer(QualityFiguresSerializer):
    krippendorff_alpha = serializers.FloatField(allow_null=True)
    fleiss_kappa = serializers.FloatField(allow_null=True)
    cohen_kappa = serializers.FloatField(allow_null=True)


class AnnotatorQualitySerializer(QualityFiguresSerializer):
    annotator_id = serializers.IntegerField()
    annotator = serializers.CharField()
    agreement_with_others = serializers.FloatField(allow_null=True)


class QualityReportSerializer(serializers.Serializer):
    project = ProjectQualitySerializer()
    annotators = AnnotatorQualitySerializer(many=True)


class SessionStartSerializer(serializers.Serializer):
    system = serializers.CharField(
        max_length=20_000, allow_blank=True, default="", trim_whitespace=False
    )
    model_version_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        min_length=1,
        max_length=2,
        help_text="Researchers only: the versions live candidates are sampled from (default: "
        "the project's buffer version, else the newest enabled one). Never shown to annotators.",
    )
    candidates_per_turn = serializers.IntegerField(
        min_value=2,
        max_value=LIVE_MAX_CANDIDATES,
        default=2,
        help_text="Replies streamed per turn: 2 are compared on the project's scale, "
        f"3 to {LIVE_MAX_CANDIDATES} are ranked best to worst.",
    )


class SessionMessageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    role = serializers.ChoiceField(choices=["system", "user", "assistant"])
    content = serializers.CharField(allow_blank=True, trim_whitespace=False)


class SessionTurnSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.ChoiceField(choices=["awaiting_candidates", "judging", "judged"])
    assignment = AssignmentSerializer(allow_null=True)


class SessionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.SlugField()
    status = serializers.ChoiceField(choices=["open", "ended"])
    candidates_per_turn = serializers.IntegerField()
    messages = SessionMessageSerializer(many=True)
    turn = SessionTurnSerializer(allow_null=True)


class SessionSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["open", "ended"])
    created_at = serializers.DateTimeField()
    turns = serializers.IntegerField(help_text="User turns written so far.")
    title = serializers.CharField(
        allow_blank=True, help_text="The first user message, shortened; empty before one."
    )


class UserTurnSerializer(serializers.Serializer):
    content = serializers.CharField(max_length=100_000, trim_whitespace=False)

    def validate_content(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("write a message")
        return value


class CandidateInSerializer(serializers.Serializer):
    content = serializers.CharField(max_length=100_000, allow_blank=True, trim_whitespace=False)
    model_name = serializers.CharField(max_length=500)
    sampling_params = serializers.DictField(default=dict, validators=[refuse_nul_in_json])
    seed = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=-INT64_MAX, max_value=INT64_MAX
    )
    finish_reason = serializers.CharField(max_length=32, allow_blank=True, default="")
    prompt_tokens = serializers.IntegerField(
        min_value=0, max_value=INT32_MAX, required=False, allow_null=True
    )
    completion_tokens = serializers.IntegerField(
        min_value=0, max_value=INT32_MAX, required=False, allow_null=True
    )
    latency_ms = serializers.IntegerField(min_value=0, max_value=INT32_MAX, default=0)


class CandidatesAttachSerializer(serializers.Serializer):
    candidates = CandidateInSerializer(many=True)


class GoldMarkSerializer(serializers.Serializer):
    chosen = serializers.IntegerField(
        allow_null=True, help_text="The completion id that should win; null if a tie is right."
    )


class GoldTaskSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    is_gold = serializers.BooleanField()
    gold_answer = serializers.JSONField()


class MemberSerializer(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices)


class MemberAddSerializer(serializers.Serializer):
    username = serializers.RegexField(r"^[\w.@+-]{1,150}$", max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)


class MemberAddedSerializer(MemberSerializer):
    invite_path = serializers.CharField(
        help_text="One-time link for a new account to set its password; empty if it existed."
    )


class InviteAcceptSerializer(serializers.Serializer):
    uid = serializers.CharField(max_length=64)
    token = serializers.CharField(max_length=128)
    password = serializers.CharField(max_length=256, style={"input_type": "password"})


class TaskListQuerySerializer(serializers.Serializer):
    interface = serializers.ChoiceField(choices=Interface.choices, required=False)
    kind = serializers.ChoiceField(choices=["pairwise", "live_turn"], required=False)
    is_gold = serializers.BooleanField(required=False, allow_null=True, default=None)
    ordering = serializers.ChoiceField(
        choices=["id", "-id", "created_at", "-created_at", "slots_taken", "-slots_taken"],
        default="id",
    )
    # Postgres takes OFFSET as a bigint; anything past the last task is an empty page anyway.
    offset = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0)
    limit = serializers.IntegerField(min_value=1, max_value=200, default=50)

    def validate(self, attrs: dict) -> dict:
        unknown = set(self.initial_data) - set(self.fields)
        if unknown:
            name = sorted(unknown)[0]
            raise serializers.ValidationError({name: ["not a filter this list accepts"]})
        return attrs


class TaskCandidateRowSerializer(serializers.Serializer):
    completion_id = serializers.IntegerField()
    position = serializers.IntegerField()
    content = serializers.CharField(source="completion.content")
    model_name = serializers.CharField(source="completion.model_name")


class TaskRowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    interface = serializers.CharField()
    kind = serializers.CharField()
    is_gold = serializers.BooleanField()
    gold_answer = serializers.JSONField()
    overlap = serializers.IntegerField()
    slots_taken = serializers.IntegerField()
    n_judgments = serializers.IntegerField()
    prompt = PromptMessageSerializer(many=True, source="prompt.messages")
    candidates = TaskCandidateRowSerializer(many=True, source="candidates.all")


class TaskPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    results = TaskRowSerializer(many=True)
