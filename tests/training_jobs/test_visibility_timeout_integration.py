"""A training task outlives the broker's visibility timeout: the redelivery does nothing.

Celery #5935: with the Redis transport, a message a worker has not acknowledged within
`visibility_timeout` is put back on the queue (kombu's `restore_visible`, swept from every
consuming worker's event loop) and another worker runs it again, while the first is still
at it. Training tasks are acks_late and run far longer than any sensible timeout, so this will
happen; the claim (queued → running in one conditional UPDATE) is what makes it harmless.

Here two production-shaped gpu workers (prefork, concurrency 1, a fresh process per task)
share a 2-second visibility timeout, swept every second. One runs a DPO job; the other
receives the same message again while the job is training, finds the row already running,
and does nothing.
"""

import json
import re
import time

import pytest
from rest_framework.test import APIClient

from annotation.models import ExportSnapshot, Role
from factories import member
from models_serving.models import ModelVersion
from training_jobs.models import TrainingJob

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TASK = "training_jobs.tasks.run_training_job"
TRANSPORT = {"visibility_timeout": 2, "unacked_restore_interval": 1, "unacked_restore_throttle": 1}


@pytest.fixture
def gpu_workers(start_worker, tmp_path):
    env = {
        "CELERY_BROKER_TRANSPORT_OPTIONS": json.dumps(TRANSPORT),
        "CHECKPOINT_ROOT": str(tmp_path / "checkpoints"),  # the volume both nodes mount
    }
    pool = ("--concurrency", "1", "--max-tasks-per-child", "1", "--prefetch-multiplier", "1")
    workers = [
        start_worker(name, queues="gpu", pool=pool, env=env, wait=False)
        for name in ("gpu-a", "gpu-b")
    ]
    for worker in workers:
        worker.wait_ready()
    return workers


def deliveries(workers: list, task_id: str) -> list[str]:
    """The names of the workers that received the task's message, once per delivery."""
    pattern = re.compile(rf"Task {re.escape(TASK)}\[{re.escape(task_id)}\] received")
    return [worker.log.parent.name for worker in workers for _ in pattern.finditer(worker.text())]


def task_ids(workers: list) -> set[str]:
    pattern = re.compile(rf"Task {re.escape(TASK)}\[([0-9a-f-]+)\] received")
    return {task_id for worker in workers for task_id in pattern.findall(worker.text())}


def test_a_task_longer_than_the_visibility_timeout_trains_once(
    gpu_workers, judged_project, wait_finished
):
    project = judged_project("visibility", 8)
    client = APIClient()
    client.force_authenticate(member(project, Role.RESEARCHER))
    response = client.post(
        "/api/v1/training-jobs/",
        {"project": project.slug, "kind": "dpo", "config": {"max_steps": 20}},
        format="json",
    )
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]

    deadline = time.monotonic() + 120
    while len(ids := task_ids(gpu_workers)) == 0 or len(deliveries(gpu_workers, *ids)) < 2:
        assert time.monotonic() < deadline, "no redelivery:\n" + gpu_workers[0].text()[-2000:]
        time.sleep(0.2)
    (task_id,) = ids
    redelivered = TrainingJob.objects.get(pk=job_id)
    # The second delivery came while the first was still training: the dangerous case.
    assert redelivered.status == TrainingJob.Status.RUNNING
    first, second = deliveries(gpu_workers, task_id)[:2]
    assert first != second  # the busy worker holds its one prefetch slot; the idle one took it

    job = wait_finished(job_id, gpu_workers[0])

    assert job.status == TrainingJob.Status.SUCCEEDED, f"{job.error}\n{job.log_tail}"
    assert job.started_at == redelivered.started_at  # claimed once
    assert ExportSnapshot.objects.filter(project=project).count() == 1  # exported once
    assert ModelVersion.objects.filter(model_name=job.checkpoint_path).count() == 1
    workdirs = list((gpu_workers[0].training_dir).glob(f"job-{job_id}-*"))
    assert len(workdirs) == 1
    steps = [
        json.loads(line)["step"]
        for line in (workdirs[0] / "progress.jsonl").read_text().splitlines()
    ]
    assert steps == list(range(1, 21))  # one recipe ran, start to end
    # Every delivery finished as a task: none raised, and only one trained.
    done = sum(
        len(re.findall(rf"Task {re.escape(TASK)}\[{task_id}\] succeeded in", w.text()))
        for w in gpu_workers
    )
    assert done == len(deliveries(gpu_workers, task_id)) >= 2
