"""Run by test_sqlite_embedded.py in a subprocess on the embedded SQLite default.

The annotator loop's plain SQL (annotation/queue_sql.py) must work there too: claim, show,
submit, a repeated submit, submit-and-next, an expired lease, and a token-authenticated call.
"""

import os
import sys
from datetime import timedelta
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from annotation.models import Assignment, Judgment, Task  # noqa: E402
from factories import ProjectFactory, member, multi_task, pair_task  # noqa: E402

assert settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")
call_command("migrate", verbosity=0)
project = ProjectFactory(lease_seconds=600, rating_aspects=["helpfulness"])
tasks = [pair_task(project) for _ in range(3)] + [multi_task(project, "rating", ["x", "y"])]
annotator = member(project)
client = APIClient()
client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=annotator).key}")

first = client.get("/api/v1/assignments/next/").json()["assignment"]
assert [c["label"] for c in first["candidates"]] == ["A", "B"], first
assert first["expires_at"].endswith("Z"), first
url = f"/api/v1/assignments/{first['id']}/submit-and-next/"
reply = client.post(url, {"choice": 1, "idempotency_key": "key-0001"}, format="json")
assert reply.status_code == 201, reply.content
again = client.post(url, {"choice": 1, "idempotency_key": "key-0001"}, format="json")
assert again.status_code == 200 and again.json()["judgment"] == reply.json()["judgment"]
second = reply.json()["next"]
assert second["id"] != first["id"]

Assignment.objects.filter(pk=second["id"]).update(expires_at=timezone.now() - timedelta(1))
late = client.post(
    f"/api/v1/assignments/{second['id']}/judgment/",
    {"choice": 2, "idempotency_key": "key-0002"},
    format="json",
)
assert late.status_code == 409, late.content

seen = {first["id"], second["id"]}
while (current := client.get("/api/v1/assignments/next/").json()["assignment"]) is not None:
    seen.add(current["id"])
    answer = (
        {"ratings": {"A": {"overall": 4, "helpfulness": 3}, "B": {"overall": 2}}}
        if current["interface"] == "rating"
        else {"choice": 5}
    )
    done = client.post(
        f"/api/v1/assignments/{current['id']}/judgment/",
        {**answer, "idempotency_key": f"key-{current['id']:04d}"},
        format="json",
    )
    assert done.status_code == 201, done.content

# The lapsed task is never offered to the same annotator again: 4 tasks, 3 judgments.
assert Judgment.objects.count() == 3, Judgment.objects.count()
assert sorted(Judgment.objects.values_list("task_id", flat=True)) == sorted(
    set(Judgment.objects.values_list("task_id", flat=True))
)
assert Task.objects.filter(pk__in=[t.pk for t in tasks], slots_taken__gt=1).count() == 0
print("sqlite annotator loop ok", len(seen))
