from rest_framework import serializers

from .models import Role


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
    label = serializers.CharField()
    content = serializers.CharField(allow_blank=True, trim_whitespace=False)


class ScalePointSerializer(serializers.Serializer):
    value = serializers.IntegerField()
    label = serializers.CharField()


class ProjectBriefSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    guidelines = serializers.CharField(allow_blank=True)


class AssignmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = ProjectBriefSerializer()
    prompt = PromptMessageSerializer(many=True)
    candidates = CandidateSerializer(many=True)
    scale = ScalePointSerializer(many=True)
    expires_at = serializers.DateTimeField()


class NextAssignmentSerializer(serializers.Serializer):
    assignment = AssignmentSerializer(allow_null=True)


class JudgmentCreateSerializer(serializers.Serializer):
    choice = serializers.IntegerField(
        help_text="A value of the assignment's scale (its `scale[].value`)."
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
    choice = serializers.IntegerField()
    created_at = serializers.DateTimeField()
