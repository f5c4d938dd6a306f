from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from .likert import ScalePoint, scale_points

# A live turn streams this many replies at most, side by side (labels A-D).
LIVE_MAX_CANDIDATES = 4


class Role(models.TextChoices):
    ANNOTATOR = "annotator", "Annotator"
    RESEARCHER = "researcher", "Researcher"
    ADMIN = "admin", "Admin"


ROLE_RANK = {Role.ANNOTATOR: 1, Role.RESEARCHER: 2, Role.ADMIN: 3}


def default_rating_rubric() -> dict[str, str]:
    # The book's 1-5 wording (§11.2.2), as the default a project can reword.
    return {
        "5": "Excellent: accurate, clear and especially helpful",
        "4": "Good: accurate, clear and useful",
        "3": "Fair: acceptable but unremarkable",
        "2": "Poor: partly accurate but confusing or incomplete",
        "1": "Very poor: inaccurate or unhelpful",
    }


class Project(models.Model):
    class ScaleKind(models.TextChoices):
        FIVE_POINT = "five_point", "5-point with tie"
        EIGHT_POINT = "eight_point", "8-point without tie"
        CUSTOM = "custom", "Custom ordered scale"

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    guidelines = models.TextField(blank=True, default="")
    guidelines_version = models.PositiveIntegerField(default=1)
    scale_kind = models.CharField(
        max_length=16, choices=ScaleKind.choices, default=ScaleKind.FIVE_POINT
    )
    custom_scale = models.JSONField(
        default=list, blank=True, help_text="Points {value, label, winner, strength} if custom."
    )
    allow_both_bad = models.BooleanField(default=True)
    overlap = models.PositiveSmallIntegerField(
        default=1, help_text="Distinct annotators who judge each task."
    )
    max_pending = models.PositiveSmallIntegerField(
        default=1, help_text="Most tasks one annotator may hold at a time."
    )
    lease_seconds = models.PositiveIntegerField(
        default=30 * 60, help_text="How long a claimed task stays reserved for its annotator."
    )
    gold_rate = models.FloatField(default=0.0, help_text="Share of gold items interleaved.")
    reask_rate = models.FloatField(
        default=0.0, help_text="Share of swapped-order re-asks of an annotator's own pairs."
    )
    rating_rubric = models.JSONField(
        default=default_rating_rubric, blank=True, help_text="Wording of each 1-5 rating point."
    )
    rating_aspects = models.JSONField(
        default=list, blank=True, help_text="Extra 1-5 aspects, e.g. helpfulness, correctness."
    )
    buffer_size = models.PositiveIntegerField(
        default=0,
        help_text="Ready pairwise tasks kept generated ahead of annotators (0 = off).",
    )
    buffer_model_version = models.ForeignKey(
        "models_serving.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The version the buffer samples two candidates from.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.slug

    def scale(self) -> list[ScalePoint]:
        return scale_points(self.scale_kind, self.custom_scale)


class GuidelinesVersion(models.Model):
    """Every guidelines text a project ever had; judgments record the version number."""

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="guideline_versions"
    )
    version = models.PositiveIntegerField()
    text = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="uniq_guidelines_version"),
        ]

    def __str__(self) -> str:
        return f"{self.project_id} guidelines v{self.version}"


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="uniq_membership"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.project}: {self.role}"


class Conversation(models.Model):
    """A multi-turn session: a tree of messages, continued from the reply judged best.

    Single-turn prompts need no tree: their prefix is stored on the Prompt itself. A live
    session's every turn is a Prompt whose ``messages`` snapshot the exact prefix it was
    judged under (book §11.2.3) and whose ``leaf_message`` points into this tree.
    """

    class Status(models.TextChoices):
        OPEN = "open"
        ENDED = "ended"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="conversations")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="conversations"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    head = models.ForeignKey(
        "Message",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Where the conversation continues from.",
    )
    # Never shown to the annotator: candidates are labelled A/B only.
    model_versions = models.ManyToManyField(
        "models_serving.ModelVersion",
        blank=True,
        related_name="conversations",
        help_text="Live candidates are sampled from these in turn; set at session start.",
    )
    candidates_per_turn = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(2), MaxValueValidator(LIVE_MAX_CANDIDATES)],
        help_text="Replies streamed per turn: two are compared on the scale, more ranked.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"conversation {self.pk}"


class Message(models.Model):
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="message_nodes"
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    role = models.CharField(
        max_length=16, choices=[(r, r) for r in ("system", "user", "assistant")]
    )
    content = models.TextField()
    # Set when an assistant message is a candidate that won its turn.
    completion = models.OneToOneField(
        "Completion", null=True, blank=True, on_delete=models.PROTECT, related_name="message"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.role} message {self.pk}"

    def path(self) -> list["Message"]:
        """Root-to-here, the prefix a model sees."""
        node: Message | None = self
        chain = []
        while node is not None:
            chain.append(node)
            node = node.parent
        return chain[::-1]


class Prompt(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prompts")
    messages = models.JSONField(help_text="Conversation prefix: a list of {role, content}.")
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.CASCADE, related_name="turns"
    )
    leaf_message = models.OneToOneField(
        Message, null=True, blank=True, on_delete=models.CASCADE, related_name="turn"
    )
    external_id = models.CharField(max_length=200, blank=True, default="")
    content_hash = models.CharField(max_length=64, blank=True, default="", db_index=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"],
                condition=~models.Q(external_id=""),
                name="uniq_prompt_external_id",
            ),
        ]

    def __str__(self) -> str:
        return f"prompt {self.pk} ({self.project_id})"


class Round(models.Model):
    """An on-policy collection round: the project's prompts sampled from model versions,
    generated in bulk by a Celery task, then judged (book §11.2: weekly on-policy batches)."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        GENERATING = "generating", "Generating candidates"
        COLLECTING = "collecting", "Collecting judgments"
        CLOSED = "closed", "Closed"
        TRAINING = "training", "Training on its judgments"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rounds")
    name = models.CharField(max_length=200)
    model_versions = models.ManyToManyField(
        "models_serving.ModelVersion", related_name="rounds", help_text="Sampled in turn."
    )
    candidates_per_prompt = models.PositiveSmallIntegerField(default=2)
    sampling_params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    # Progress of bulk generation, for a progress bar: prompts done / failed of total.
    generation_total = models.PositiveIntegerField(default=0)
    generation_done = models.PositiveIntegerField(default=0)
    generation_failed = models.PositiveIntegerField(default=0)

    class Pairing(models.TextChoices):
        ON_POLICY = "on_policy", "Two samples of the newest version"
        VERSUS_PREVIOUS = "versus_previous", "Newest version against the previous one"

    pairing = models.CharField(
        max_length=16,
        choices=Pairing.choices,
        default=Pairing.ON_POLICY,
        help_text="How a round started automatically picks its versions.",
    )
    target_judgments = models.PositiveIntegerField(
        null=True, blank=True, help_text="Close the round once it has this many judgments."
    )
    deadline = models.DateTimeField(null=True, blank=True, help_text="Close the round then.")
    train_on_close = models.BooleanField(
        default=False, help_text="Train a reward model and a DPO policy when it closes."
    )
    continue_automatically = models.BooleanField(
        default=False,
        help_text="When training registers a new version, start the next round from it.",
    )
    previous = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="next"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.CharField(max_length=32, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"round {self.name} ({self.project_id})"


class RoundPrompt(models.Model):
    """A prompt of a round and how its generation went (retried, then reported on failure)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        FAILED = "failed"

    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="round_prompts")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="round_prompts")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["round", "prompt"], name="uniq_round_prompt"),
        ]

    def __str__(self) -> str:
        return f"prompt {self.prompt_id} of round {self.round_id}"


class Completion(models.Model):
    """A candidate assistant reply to a prompt, with how it was produced."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="completions")
    round = models.ForeignKey(
        Round, null=True, blank=True, on_delete=models.CASCADE, related_name="completions"
    )
    candidate_index = models.PositiveSmallIntegerField()
    content = models.TextField()
    model_name = models.CharField(max_length=500)
    model_version = models.ForeignKey(
        "models_serving.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="completions",
    )
    endpoint = models.ForeignKey(
        "models_serving.ModelEndpoint",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="completions",
    )
    sampling_params = models.JSONField(default=dict)
    seed = models.BigIntegerField(null=True, blank=True)
    finish_reason = models.CharField(max_length=32, blank=True, default="")
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    logprobs = models.JSONField(
        null=True, blank=True, help_text="[{token, logprob}] where the server returned them."
    )
    incomplete = models.BooleanField(
        default=False, help_text="Cut off (disconnect, timeout) before the model finished."
    )
    duplicate = models.BooleanField(
        default=False, help_text="Same text as another candidate even after regenerating."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # Makes generation idempotent: a retried or redelivered job cannot add a candidate
            # twice, per round (a prompt may be sampled again in a later round) or outside one.
            models.UniqueConstraint(
                fields=["round", "prompt", "candidate_index"], name="uniq_round_candidate"
            ),
            models.UniqueConstraint(
                fields=["prompt", "candidate_index"],
                condition=models.Q(round__isnull=True),
                name="uniq_candidate",
            ),
        ]

    def __str__(self) -> str:
        return f"completion {self.pk} of prompt {self.prompt_id}"


class Interface(models.TextChoices):
    """What an annotator is asked to do with a task's candidates."""

    PAIRWISE = "pairwise", "Compare two on a Likert scale"
    RANKING = "ranking", "Rank K candidates"
    RATING = "rating", "Rate each candidate 1-5"
    THUMBS = "thumbs", "Thumbs up or down on one candidate"


class Task(models.Model):
    """A prompt plus the candidates an annotator compares."""

    class Kind(models.TextChoices):
        PAIRWISE = "pairwise", "Pairwise from the queue"
        LIVE_TURN = "live_turn", "A turn of the owner's live session"

    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PAIRWISE)
    interface = models.CharField(
        max_length=16, choices=Interface.choices, default=Interface.PAIRWISE
    )
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="tasks")
    round = models.ForeignKey(
        Round, null=True, blank=True, on_delete=models.CASCADE, related_name="tasks"
    )
    completions = models.ManyToManyField(Completion, through="TaskCandidate", related_name="tasks")
    overlap = models.PositiveSmallIntegerField(default=1)
    is_gold = models.BooleanField(default=False)
    gold_answer = models.JSONField(
        null=True, blank=True, help_text='{"chosen": <completion id>} or {"tie": true}.'
    )
    reask_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="reasks"
    )
    reserved_for = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="A re-ask is only for the annotator who judged the original.",
    )
    # Denormalised count of live (pending or submitted) assignments, so a claim is one
    # conditional UPDATE instead of a locked COUNT.
    slots_taken = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # Claims scan only tasks with a free slot, not every finished one.
            models.Index(
                fields=["project", "id"],
                name="task_claimable_idx",
                condition=models.Q(
                    slots_taken__lt=models.F("overlap"),
                    is_gold=False,
                    reserved_for__isnull=True,
                    kind="pairwise",
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"task {self.pk}"


class TaskCandidate(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="candidates")
    completion = models.ForeignKey(Completion, on_delete=models.CASCADE)
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["task", "completion"], name="uniq_task_completion"),
            models.UniqueConstraint(fields=["task", "position"], name="uniq_task_position"),
        ]

    def __str__(self) -> str:
        return f"candidate {self.position} of task {self.task_id}"


class Assignment(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        SUBMITTED = "submitted"
        EXPIRED = "expired"
        SKIPPED = "skipped"

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    shown_order = models.JSONField(help_text="Completion ids in the order shown (A, B, ...).")
    claimed_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    skip_reason = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "annotator"], name="uniq_task_annotator"),
        ]
        indexes = [
            models.Index(fields=["annotator", "status"]),
            models.Index(fields=["status", "expires_at"]),
        ]

    def __str__(self) -> str:
        return f"assignment {self.pk} ({self.status})"

    def is_expired(self, now=None) -> bool:
        now = now or timezone.now()
        return self.status == self.Status.EXPIRED or (
            self.status == self.Status.PENDING and self.expires_at <= now
        )


class Judgment(models.Model):
    """One annotator's verdict on a task, stored as shown and in canonical form.

    Pairwise verdicts fill choice/chosen/rejected/strength; rankings fill ``ranking``
    (completion ids, best first); ratings fill ``ratings``; thumbs fill ``thumbs_up``.
    Any kind may carry a comment, flags and a rewrite of one candidate.
    """

    assignment = models.OneToOneField(Assignment, on_delete=models.PROTECT, related_name="judgment")
    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="judgments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="judgments"
    )
    choice = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Scale value as displayed; null when both are bad."
    )
    kind = models.CharField(max_length=16, choices=Interface.choices, default=Interface.PAIRWISE)
    scale_kind = models.CharField(max_length=16, default="five_point")
    both_bad = models.BooleanField(default=False)
    ranking = models.JSONField(null=True, blank=True, help_text="Completion ids, best first.")
    ratings = models.JSONField(
        null=True, blank=True, help_text='{"<completion id>": {"overall": 1-5, "<aspect>": 1-5}}'
    )
    thumbs_up = models.BooleanField(null=True, blank=True)
    rewrite_of = models.ForeignKey(
        Completion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    rewrite = models.TextField(blank=True, default="", help_text="An improved reply.")
    flags = models.JSONField(default=list, blank=True)
    shown_order = models.JSONField()
    chosen = models.ForeignKey(
        Completion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    rejected = models.ForeignKey(
        Completion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    strength = models.PositiveSmallIntegerField(help_text="0 tie or both bad; larger is stronger.")
    comment = models.TextField(blank=True, default="")
    time_spent_ms = models.PositiveIntegerField(default=0)
    guidelines_version = models.PositiveIntegerField()
    idempotency_key = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["annotator", "idempotency_key"], name="uniq_judgment_idempotency"
            ),
        ]

    def __str__(self) -> str:
        return f"judgment {self.pk}"


class ExportSnapshot(models.Model):
    """An immutable, versioned dataset export: its options, rows, content hash and card.

    Training jobs point at snapshots, so a checkpoint traces back to the judgments it saw.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="exports")
    format = models.CharField(max_length=32)
    file_format = models.CharField(max_length=16, default="jsonl")  # jsonl | parquet | hf
    options = models.JSONField(default=dict, help_text="Rules and filters, as given.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    judgments_total = models.PositiveIntegerField(default=0)  # for the progress bar
    judgments_done = models.PositiveIntegerField(default=0)
    row_count = models.PositiveIntegerField(null=True, blank=True)
    content_sha256 = models.CharField(max_length=64, blank=True, default="")
    file_name = models.CharField(max_length=200, blank=True, default="")
    card = models.TextField(blank=True, default="", help_text="The dataset card (README).")
    validation = models.JSONField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"export {self.pk} ({self.format})"
