"""Real Celery workers on the test database, and judged projects for them to train on."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from annotation import services
from factories import ProjectFactory, member, pair_task
from training_jobs.models import TrainingJob

ROOT = Path(__file__).resolve().parents[2]


class Worker:
    """A `celery worker` process on the gpu and default queues, logging to a file.

    The keywords make variants: another name (two workers at once), other queues, a prefork
    pool as in production instead of solo, extra environment (checked by the worker's
    settings), and not waiting for it to be ready (to start several side by side).
    """

    def __init__(
        self,
        directory: Path,
        *,
        name: str = "test",
        queues: str = "gpu,default",
        pool: tuple[str, ...] = ("-P", "solo"),
        env: dict[str, str] | None = None,
        wait: bool = True,
    ) -> None:
        self.directory = directory
        self.log = directory / "worker.log"
        training_dir = str(directory / "training")
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),  # the test database pytest-django created
            "CHECKPOINT_ROOT": training_dir,
            "ARBITER_TRAINING_DIR": training_dir,
            "ARBITER_EXPORTS_DIR": str(directory / "exports"),
            "ARBITER_REF_LOGPS_DIR": str(directory / "ref-logps"),
            "TRAINING_POLL_SECONDS": "0.3",
            **(env or {}),
        }
        self.training_dir = Path(env["CHECKPOINT_ROOT"])
        _purge_queues(["gpu", "default"])  # stale messages from an earlier run name other rows
        directory.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "celery", "-A", "config", "worker"),
                    *("-Q", queues, *pool, "-n", f"{name}-{os.getpid()}@%h"),
                    *("--purge", "--without-gossip", "--without-mingle", "-l", "info"),
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait:
            self.wait_ready()

    def __getitem__(self, name: str):
        # The older dict-shaped fixture: worker["process"], worker["log"], worker["training_dir"].
        return {"process": self.process, "log": self.log, "training_dir": self.training_dir}[name]

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def tasks_done(self) -> int:
        text = self.text()
        return text.count("] succeeded in ") + text.count("] raised unexpected")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.text():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.3)
        pytest.fail("celery worker did not start:\n" + self.text()[-3000:])


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _purge_queues(queues: list[str]) -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        for queue in queues:
            try:
                conn.default_channel.queue_purge(queue)
            except Exception:  # a queue that was never declared has nothing to purge
                pass


@pytest.fixture(scope="module")
def celery_worker(tmp_path_factory, tiny_models, django_db_setup) -> Iterator[Worker]:
    """One worker for a module's tests: starting one costs seconds of imports."""
    assert settings.CELERY_BROKER_URL.startswith("redis://"), "integration tests need Redis"
    worker = Worker(tmp_path_factory.mktemp("worker"))
    yield worker
    worker.stop()


@pytest.fixture
def own_worker(tmp_path, tiny_models) -> Iterator[Worker]:
    """A worker of the test's own, for tests that kill it."""
    worker = Worker(tmp_path)
    yield worker
    worker.stop()


@pytest.fixture
def start_worker(tmp_path, tiny_models) -> Iterator[Callable[..., Worker]]:
    """Start workers of the test's own, variants included (see Worker); all stopped after."""
    started: list[Worker] = []

    def start(name: str, **options) -> Worker:
        worker = Worker(tmp_path / name, name=name, **options)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def judged_project() -> Callable:
    """A project whose annotator preferred the clear answer in each of ``pairs`` tasks."""

    def make(slug: str, pairs: int):
        project = ProjectFactory(slug=slug)
        for n in range(pairs):
            pair_task(project, texts=(f"A clear helpful answer number {n}.", f"bad {n} nonsense"))
        annotator = member(project)
        for n in range(pairs):
            assignment = services.assignment_claim_next(annotator=annotator)
            good = assignment.task.completions.get(content__startswith="A clear").pk
            choice = 1 if assignment.shown_order[0] == good else 5
            services.judgment_submit(
                assignment=assignment, choice=choice, idempotency_key=f"{slug}-{n:06d}"
            )
        return project

    return make


def wait_for(
    job_id: int, worker: Worker, done: Callable[[TrainingJob], bool], timeout: float = 300
) -> TrainingJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = TrainingJob.objects.get(pk=job_id)
        if done(job):
            return job
        if worker.process.poll() is not None:
            pytest.fail("celery worker died:\n" + worker.text()[-3000:])
        time.sleep(0.3)
    pytest.fail(f"job {job_id} is still {job.status} after {timeout}s:\n" + worker.text()[-3000:])


@pytest.fixture
def wait_until() -> Callable[..., TrainingJob]:
    return wait_for


@pytest.fixture
def wait_finished() -> Callable[..., TrainingJob]:
    def wait(job_id: int, worker: Worker, timeout: float = 300) -> TrainingJob:
        return wait_for(job_id, worker, lambda job: job.status in TrainingJob.FINISHED, timeout)

    return wait


@pytest.fixture
def wait_training() -> Callable[..., TrainingJob]:
    """Until the recipe has logged its first optimizer step."""

    def wait(job_id: int, worker: Worker, timeout: float = 300) -> TrainingJob:
        return wait_for(job_id, worker, lambda job: job.progress_step >= 1, timeout)

    return wait


def recipe_pids(job: TrainingJob) -> list[int]:
    """Processes running this job's recipe (found by its work directory on the command line)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # exited while we looked
        if any(f"/job-{job.pk}-".encode() in arg for arg in argv) and b"-m" in argv:
            found.append(int(proc.name))
    return found


@pytest.fixture
def recipe_processes() -> Callable[[TrainingJob], list[int]]:
    return recipe_pids


def wait_gone(pids: list[int], timeout: float = 40) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{pid}").exists() and not _zombie(pid) for pid in pids):
            return True
        time.sleep(0.2)
    return False


def _zombie(pid: int) -> bool:
    try:
        return ") Z " in Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False


@pytest.fixture
def processes_gone() -> Callable[..., bool]:
    return wait_gone


@pytest.fixture
def kill() -> Callable[[int], None]:
    return lambda pid: os.kill(pid, signal.SIGKILL)
