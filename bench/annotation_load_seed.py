"""Seed data for `bench/annotation_load.py`: one project, N pairwise tasks, M annotators.

Run by the benchmark in a subprocess with `DATABASE_URL` pointing at the bench database
(never at a real one). Rows are written with bulk_create so 20,000 tasks take seconds.
Prints one JSON object as the last line: the annotators' API tokens and the table names
the benchmark checks with plain SQL (taken from the models, so a renamed model is followed).
"""

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BATCH = 2000
# About the length of a short chat answer, so response bodies are not trivially small.
ANSWER = "Here is a step-by-step answer with enough detail to judge. " * 8


def seed(*, tasks: int, annotators: int) -> list[str]:
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from rest_framework.authtoken.models import Token

    from annotation import services
    from annotation.models import Completion, Membership, Prompt, Role, Task, TaskCandidate

    with transaction.atomic():
        project = services.project_create(slug="bench", name="Load benchmark")
        prompts = Prompt.objects.bulk_create(
            [
                Prompt(project=project, messages=[{"role": "user", "content": f"Question {i}?"}])
                for i in range(tasks)
            ],
            batch_size=BATCH,
        )
        completions = Completion.objects.bulk_create(
            [
                Completion(prompt=p, candidate_index=k, content=f"{k}: {ANSWER}", model_name="m")
                for p in prompts
                for k in (0, 1)
            ],
            batch_size=BATCH,
        )
        task_rows = Task.objects.bulk_create(
            [Task(project=project, prompt=p, overlap=1) for p in prompts], batch_size=BATCH
        )
        TaskCandidate.objects.bulk_create(
            [
                TaskCandidate(task=task, completion=completions[2 * i + k], position=k)
                for i, task in enumerate(task_rows)
                for k in (0, 1)
            ],
            batch_size=BATCH,
        )
        users = get_user_model().objects.bulk_create(
            [get_user_model()(username=f"bench{i}", password="!") for i in range(annotators)]
        )
        Membership.objects.bulk_create(
            [Membership(project=project, user=u, role=Role.ANNOTATOR) for u in users]
        )
        tokens = Token.objects.bulk_create([Token(user=u, key=Token.generate_key()) for u in users])
    return [t.key for t in tokens]


def table_names() -> dict[str, str]:
    from annotation.models import Assignment, Task

    judgment = Assignment._meta.get_field("judgment").related_model
    return {
        "judgment": judgment._meta.db_table,
        "assignment": Assignment._meta.db_table,
        "task": Task._meta.db_table,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, required=True)
    parser.add_argument("--annotators", type=int, required=True)
    args = parser.parse_args()
    if "arbiter_bench" not in os.environ.get("DATABASE_URL", ""):
        sys.exit("refusing to seed: DATABASE_URL is not the arbiter_bench database")
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    tokens = seed(tasks=args.tasks, annotators=args.annotators)
    print(json.dumps({"tokens": tokens, "tables": table_names()}))


if __name__ == "__main__":
    main()
