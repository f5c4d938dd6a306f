"""The demo that `make run` seeds: users, a project, prompts, and generated pairs."""

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import transaction

from models_serving.client import SamplingParams, ServerConfig, generate_many

from . import services
from .models import Membership, Project, Prompt, Role
from .prompt_import import messages_content_hash

DEMO_PROJECT_SLUG = "demo"
# Development-only credentials, printed by `seed_demo`; never use them in production.
DEMO_USERS: list[tuple[str, str, Role]] = [
    ("admin", "arbiter-admin", Role.ADMIN),
    ("researcher", "arbiter-researcher", Role.RESEARCHER),
    ("annotator1", "arbiter-annotator1", Role.ANNOTATOR),
    ("annotator2", "arbiter-annotator2", Role.ANNOTATOR),
]
DEMO_GUIDELINES = """\
Pick the response that is more **helpful, honest and harmless**.

- Prefer answers that address the request directly and correctly.
- Use "much better" only when the difference is clear at a glance.
- Choose *Tie* when neither response is meaningfully better.
"""
DEMO_PROMPTS = [
    "Explain what a hash map is to a new programmer.",
    "Write a haiku about autumn rain.",
    "What are three tips for staying focused while studying?",
    "Summarise the water cycle in two sentences.",
    "How do I reverse a list in Python?",
    "Suggest a name for a bakery that specialises in sourdough.",
    "Why is the sky blue?",
    "Give me a packing list for a weekend hiking trip.",
    "What is the difference between weather and climate?",
    "Write a polite email declining a meeting invitation.",
    "Explain recursion with a simple example.",
    "What should I consider when adopting a dog?",
    "Describe the taste of a lemon to someone who has never had one.",
    "How does a bicycle stay upright while moving?",
    "List some healthy breakfast ideas.",
    "What is photosynthesis?",
    "Translate 'good morning' into French, Spanish and German.",
    "Give a short motivational message for someone starting a new job.",
    "What is the Pythagorean theorem?",
    "How can I make my home more energy efficient?",
]
DEMO_SAMPLING = SamplingParams(temperature=1.0, top_p=0.95, max_tokens=48)


@dataclass
class DemoReport:
    created_users: list[str] = field(default_factory=list)
    prompts_created: int = 0
    completions_created: int = 0
    tasks: int = 0
    generation_errors: list[str] = field(default_factory=list)


@transaction.atomic
def demo_seed_rows(report: DemoReport) -> Project:
    """Users, project and prompts; running it again changes nothing."""
    project = Project.objects.filter(slug=DEMO_PROJECT_SLUG).first()
    if project is None:
        project = services.project_create(
            slug=DEMO_PROJECT_SLUG, name="Demo: helpfulness", guidelines=DEMO_GUIDELINES
        )
    User = get_user_model()
    for username, password, role in DEMO_USERS:
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_password(password)
            user.is_staff = user.is_superuser = role == Role.ADMIN
            user.save()
            report.created_users.append(username)
        Membership.objects.get_or_create(project=project, user=user, defaults={"role": role})
    for index, text in enumerate(DEMO_PROMPTS):
        _, created = Prompt.objects.get_or_create(
            project=project,
            external_id=f"demo-{index:03d}",
            defaults={
                "messages": [{"role": "user", "content": text}],
                "content_hash": messages_content_hash([{"role": "user", "content": text}]),
            },
        )
        report.prompts_created += int(created)
    return project


def demo_generate_pairs(project: Project, server: ServerConfig, report: DemoReport) -> None:
    """Two candidates per prompt that lacks them, then one pairwise task per prompt."""
    missing = [p for p in project.prompts.order_by("id") if p.completions.count() < 2]
    if missing:
        results = generate_many(server, [p.messages for p in missing], k=2, params=DEMO_SAMPLING)
        for prompt, result in zip(missing, results, strict=True):
            if isinstance(result, Exception):
                report.generation_errors.append(f"prompt {prompt.pk}: {result}")
                continue
            for index, candidate in enumerate(result):
                services.completion_store(prompt=prompt, candidate_index=index, candidate=candidate)
                report.completions_created += 1
    for prompt in project.prompts.order_by("id"):
        services.task_create_pair(prompt=prompt)
    report.tasks = project.tasks.count()


def demo_prompts_missing_completions(project: Project) -> int:
    return sum(1 for p in project.prompts.all() if p.completions.count() < 2)
