"""Training jobs: create, run in a GPU worker, cancel, reap; and the rounds that train on close.

The job row is the source of truth. Every status change out of `running` is a conditional
UPDATE (healthchecks-style), so the worker, a researcher's cancel and the reaper can race
without one overwriting another: whoever moves the row first wins, the others see 0 rows.
"""

import json
import shutil
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import cast

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from annotation import rounds as round_services
from annotation.exports import export_create, export_path, export_run
from annotation.models import Project, Round
from models_serving.models import ModelEndpoint, ModelVersion

from .child import child_start, child_stop, free_port, recipe_command, recipe_launch
from .job_config import JOB_DEFAULTS, LAUNCH_FIELDS, job_config_validate
from .models import TrainingJob
from .progress import (
    Progress,
    last_line,
    log_tail,
    progress_fold,
    progress_read,
    snapshot_describe,
)

LOCAL_ENDPOINT = "local"


class TrainingError(Exception):
    """A job that cannot go on; the message becomes the job's error."""


def training_job_create(
    *,
    project: Project,
    created_by: User | None,
    config: dict,
    kind: str = TrainingJob.Kind.DPO,
    round: Round | None = None,
) -> TrainingJob:
    """Queue a job; InvalidInput (a 400 naming the field) for a setting its recipe lacks."""
    checked = job_config_validate(kind=kind, config=config)
    job = TrainingJob.objects.create(
        project=project, created_by=created_by, config=checked, kind=kind, round=round
    )
    training_job_enqueue(job)
    return job


def training_job_enqueue(job: TrainingJob) -> None:
    from .tasks import run_training_job

    # After commit, so the worker can never look for a row that is not there yet.
    transaction.on_commit(lambda: run_training_job.delay(job.pk))


def training_job_cancel(*, job: TrainingJob) -> bool:
    """Queued or running → cancelled; a running job's worker then stops its child process.

    False when the job had already finished (nothing to cancel).
    """
    now = timezone.now()
    cancelled = TrainingJob.objects.filter(
        pk=job.pk, status__in=[TrainingJob.Status.QUEUED, TrainingJob.Status.RUNNING]
    ).update(status=TrainingJob.Status.CANCELLED, finished_at=now)
    if cancelled:
        _after_finish(job)
    job.refresh_from_db()
    return cancelled == 1


def training_job_claim(job_id: int) -> bool:
    """Move queued → running exactly once; a redelivered message finds nothing to claim."""
    now = timezone.now()
    claimed = TrainingJob.objects.filter(pk=job_id, status=TrainingJob.Status.QUEUED).update(
        status=TrainingJob.Status.RUNNING, started_at=now, heartbeat_at=now
    )
    return claimed == 1


def training_job_run(*, job_id: int) -> None:
    if not training_job_claim(job_id):
        return
    job = TrainingJob.objects.select_related("project", "round").get(pk=job_id)
    try:
        _train(job)
    except TrainingError as exc:
        _finish(job, TrainingJob.Status.FAILED, error=str(exc))
    except Exception as exc:  # the row must never stay 'running' after the task is gone
        _finish(job, TrainingJob.Status.FAILED, error=f"{type(exc).__name__}: {exc}")
        raise


def _train(job: TrainingJob) -> None:
    if job.kind == TrainingJob.Kind.DPO:
        registration_endpoint()  # a misconfigured endpoint fails now, not after the GPU time
    launch = _launch(job)
    workdir = _workdir(job)
    _export_snapshot(job)
    config_path = workdir / "recipe-config.json"
    config_path.write_text(json.dumps(_recipe_config(job, workdir), indent=2))
    output_dir = workdir / "checkpoint"
    try:
        returncode = _run_child(job, workdir, config_path, launch)
    finally:
        # What a killed or stopped recipe left half-written; a finished run renamed it away.
        shutil.rmtree(output_dir.with_name(output_dir.name + ".tmp"), ignore_errors=True)
    if returncode is None:
        return  # cancelled or reaped while it ran: the row already says so
    if returncode != 0 or not (output_dir / "metrics.json").exists():
        raise TrainingError(_exit_message(returncode, workdir / "train.log"))
    metrics = json.loads((output_dir / "metrics.json").read_text())
    # The per-step curve is metrics_history on the row; metrics.json keeps the full one.
    metrics.pop("loss_history", None)
    training_job_complete(job=job, checkpoint=output_dir, metrics=metrics)


def _launch(job: TrainingJob) -> dict:
    """How to start the recipe: the job's launcher settings, else this worker's."""
    try:
        launcher, processes = recipe_launch(
            job.config,
            default_launcher=settings.TRAINING_LAUNCHER,
            default_processes=settings.TRAINING_NUM_PROCESSES,
        )
    except ValueError as exc:
        raise TrainingError(f"Cannot launch the recipe: {exc}.") from None
    port = free_port() if launcher == "accelerate" and processes > 1 else None
    return {"launcher": launcher, "num_processes": processes, "port": port}


def _workdir(job: TrainingJob) -> Path:
    # The start time keeps a reset database's reused ids off an older job's directory.
    started = job.started_at or timezone.now()
    workdir = Path(settings.CHECKPOINT_ROOT) / f"job-{job.pk}-{started:%Y%m%dT%H%M%S}"
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


def _export_snapshot(job: TrainingJob) -> None:
    """Export the judgments to an immutable snapshot and pin the job to its exact content."""
    options: dict = {"format": "trl-preference"}
    # DPO learns on-policy from its round; a reward model from every judgment so far
    # (it scores any policy's samples, and a round alone is a few dozen pairs).
    if job.round_id and job.kind == TrainingJob.Kind.DPO:
        options["filters"] = {"rounds": [job.round_id]}
    queued = export_create(project=job.project, options=options, created_by=job.created_by)
    export = export_run(snapshot_id=queued.pk)
    if export is None:  # only a row someone else claimed; this one was just created
        raise TrainingError(f"export {queued.pk} was built elsewhere")
    path = export_path(export)
    data = snapshot_describe(path)
    _save(
        job,
        export=export,
        data_path=str(path),
        data_rows=data.rows,
        data_snapshot_id=data.sha256,
        judgment_count=data.judgment_count,
        judgment_max_id=data.judgment_max_id,
    )
    if data.rows == 0:
        raise TrainingError("No preference pairs to train on yet.")


def _recipe_config(job: TrainingJob, workdir: Path) -> dict:
    recipe_settings = {k: v for k, v in job.config.items() if k not in LAUNCH_FIELDS}
    if isinstance(recipe_settings.get("deepspeed"), dict):
        # In the job's directory on CHECKPOINT_ROOT, which every node of a launch can read.
        deepspeed_path = workdir / "deepspeed.json"
        deepspeed_path.write_text(json.dumps(recipe_settings["deepspeed"], indent=2))
        recipe_settings["deepspeed"] = str(deepspeed_path)
    config = {
        **JOB_DEFAULTS[job.kind],
        **recipe_settings,
        "data_path": job.data_path,
        "data_snapshot_id": job.data_snapshot_id,
        "model_path": _base_model(job),
        "output_dir": str(workdir / "checkpoint"),
    }
    if job.kind == TrainingJob.Kind.DPO:
        config["ref_logps_cache_dir"] = str(settings.TRAINING_REF_LOGPS_DIR)
    return config


def _base_model(job: TrainingJob) -> str:
    """Reward models start from the reward backbone; DPO from what the round sampled.

    On-policy: a round's DPO job continues from the newest checkpoint the round sampled
    from (its model name is the checkpoint path), else from the base policy.
    """
    if job.kind == TrainingJob.Kind.REWARD_MODEL:
        return str(settings.TRAINING_BASE_REWARD_MODEL)
    if job.round_id:
        round_ = cast(Round, job.round)  # round_id is set
        sampled = round_.model_versions.filter(kind=ModelVersion.Kind.CHECKPOINT)
        newest = sampled.order_by("-created_at", "-pk").first()
        if newest is not None and Path(newest.model_name).is_dir():
            return newest.model_name
    return str(settings.TRAINING_BASE_POLICY)


def _run_child(job: TrainingJob, workdir: Path, config_path: Path, launch: dict) -> int | None:
    """Run the recipe, folding its progress into the row; its exit code, None if stopped."""
    progress_path, log_path = workdir / "progress.jsonl", workdir / "train.log"
    child = child_start(
        recipe_command(job.kind, config_path, progress_path, **launch),
        cwd=settings.BASE_DIR,
        stdout_path=workdir / "stdout.log",  # the metrics JSON; metrics.json has it too
        stderr_path=log_path,
    )
    progress = Progress(job.progress_step, job.progress_total, job.metrics_history)
    offset = 0
    try:
        while True:
            exited = _wait(child, settings.TRAINING_POLL_SECONDS)
            events, offset = progress_read(progress_path, offset)
            progress = progress_fold(progress, events)
            if not _beat(job, progress, log_tail(log_path), new_points=bool(events)):
                return None
            if exited:
                return child.returncode
    finally:
        child_stop(child)  # returns at once if it already exited
        TrainingJob.objects.filter(pk=job.pk).update(log_tail=log_tail(log_path))


def _wait(child: subprocess.Popen[bytes], seconds: float) -> bool:
    try:
        child.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


def _beat(job: TrainingJob, progress: Progress, tail: str, *, new_points: bool) -> bool:
    """Heartbeat and progress in one UPDATE; False once the job is no longer ours to run."""
    fields: dict = {
        "heartbeat_at": timezone.now(),
        "progress_step": progress.step,
        "progress_total": progress.total,
        "log_tail": tail,
    }
    if new_points:
        fields["metrics_history"] = progress.history
    beat = TrainingJob.objects.filter(pk=job.pk, status=TrainingJob.Status.RUNNING).update(**fields)
    for name, value in fields.items():
        setattr(job, name, value)
    return beat == 1


def _exit_message(returncode: int, log_path: Path) -> str:
    if returncode < 0:
        return f"The recipe was killed by signal {-returncode}; no checkpoint was registered."
    cause = last_line(log_tail(log_path)) if returncode else "it wrote no metrics.json"
    return f"The recipe exited with code {returncode}: {cause}"


def training_job_complete(*, job: TrainingJob, checkpoint: Path, metrics: dict) -> bool:
    """Running → succeeded, registering a DPO checkpoint in the same transaction.

    False (and nothing registered) when the job was cancelled or reaped meanwhile.
    """
    with transaction.atomic():
        locked = (
            TrainingJob.objects.select_for_update(of=("self",))
            .select_related("project", "round")
            .filter(pk=job.pk, status=TrainingJob.Status.RUNNING)
            .first()
        )
        if locked is None:
            return False
        now = timezone.now()
        _save(
            locked,
            status=TrainingJob.Status.SUCCEEDED,
            finished_at=now,
            heartbeat_at=now,
            metrics=metrics,
            checkpoint_path=str(checkpoint),
        )
        if locked.kind == TrainingJob.Kind.DPO:
            _save(locked, registered_version=_register(locked))
        _after_finish(locked)
    return True


def registration_endpoint() -> ModelEndpoint:
    """Where new DPO checkpoints are registered: TRAINING_REGISTER_ENDPOINT, by name.

    The default, "local", is created for MODEL_BASE_URL (the embedded `transformers serve`,
    which loads any checkpoint directory a request names, or the configured vLLM); another
    name must exist already, so a typo in the setting cannot invent an endpoint.
    """
    name = settings.TRAINING_REGISTER_ENDPOINT
    endpoint = ModelEndpoint.objects.filter(name=name).first()
    if endpoint is not None:
        return endpoint
    if name != LOCAL_ENDPOINT:
        raise TrainingError(f"TRAINING_REGISTER_ENDPOINT names no model endpoint: {name!r}")
    kind = (
        ModelEndpoint.Kind.TRANSFORMERS_SERVE
        if settings.MODEL_SERVER_EMBEDDED
        else ModelEndpoint.Kind.VLLM
    )
    api_key = "" if settings.MODEL_API_KEY == "EMPTY" else settings.MODEL_API_KEY
    vllm = kind == ModelEndpoint.Kind.VLLM
    endpoint, _ = ModelEndpoint.objects.get_or_create(
        name=name,
        defaults={
            "base_url": settings.MODEL_BASE_URL,
            "kind": kind,
            "api_key": api_key,
            "supports_n": settings.MODEL_SUPPORTS_N,
            "supports_logprobs": vllm,
            # The docker-compose vLLM runs with --enable-lora and runtime LoRA loading.
            "supports_lora": vllm and settings.MODEL_SUPPORTS_LORA,
        },
    )
    return endpoint


def _register(job: TrainingJob) -> ModelVersion:
    """The DPO checkpoint as a model version, made sampleable with no manual step.

    On `transformers serve` its path is the `model` requested (loaded on demand); on vLLM a
    LoRA adapter is hot-loaded under the checkpoint id and a full checkpoint gets a new server
    (models_serving.services.version_make_sampleable). Until then the version is pending.
    """
    from models_serving.services import checkpoint_register

    source = f"round {cast(Round, job.round).name}" if job.round_id else "all judgments"
    return checkpoint_register(
        endpoint=registration_endpoint(),
        path=job.checkpoint_path,
        checkpoint_id=f"{job.project.slug}-dpo-job-{job.pk}",
        label=f"{job.project.slug} DPO job {job.pk} ({source})"[:200],
        notes=(
            f"Training job {job.pk}: data snapshot {job.data_snapshot_id}, "
            f"{job.judgment_count} judgments up to id {job.judgment_max_id}."
        ),
    )


def _save(job: TrainingJob, **fields) -> None:
    for name, value in fields.items():
        setattr(job, name, value)
    job.save(update_fields=list(fields))


def _finish(job: TrainingJob, status: str, **fields) -> bool:
    """Running → ``status`` unless someone (cancel, reaper) finished the job first."""
    now = timezone.now()
    finished = TrainingJob.objects.filter(pk=job.pk, status=TrainingJob.Status.RUNNING).update(
        status=status, finished_at=now, heartbeat_at=now, **fields
    )
    if finished:
        _after_finish(job)
    return finished == 1


def _after_finish(job: TrainingJob) -> None:
    if job.round_id:
        round_id = job.round_id
        transaction.on_commit(lambda: training_round_advance(round_id=round_id))


def training_round_start(
    *,
    round_id: int,
    kinds: list[str] | None = None,
    config: dict[str, dict] | None = None,
) -> list[TrainingJob]:
    """A closed round that asked for it: train a reward model and a DPO policy on it.

    A round-close trigger may narrow ``kinds`` and add ``config`` overrides by kind (over
    TRAINING_ROUND_CONFIG).
    """
    round_ = Round.objects.select_related("project").get(pk=round_id)
    if not round_.train_on_close:
        return []
    kinds = kinds or [TrainingJob.Kind.REWARD_MODEL, TrainingJob.Kind.DPO]
    config = config or {}
    with transaction.atomic():
        moved = round_services.round_set_status(
            round_id=round_id, status=Round.Status.TRAINING, expected=[Round.Status.CLOSED]
        )
        if not moved:
            return []  # another listener already started it
        return [
            training_job_create(
                project=round_.project,
                created_by=round_.created_by,
                config={**settings.TRAINING_ROUND_CONFIG.get(kind, {}), **config.get(kind, {})},
                kind=kind,
                round=round_,
            )
            for kind in kinds
        ]


def training_round_advance(*, round_id: int) -> None:
    """When all of a round's jobs are finished: done (and maybe the next round) or failed."""
    jobs = list(TrainingJob.objects.filter(round_id=round_id))
    if not jobs or any(j.status not in TrainingJob.FINISHED for j in jobs):
        return
    round_ = Round.objects.get(pk=round_id)
    if any(j.status != TrainingJob.Status.SUCCEEDED for j in jobs):
        round_services.round_set_status(
            round_id=round_id, status=Round.Status.FAILED, expected=[Round.Status.TRAINING]
        )
        return
    if not round_services.round_set_status(
        round_id=round_id, status=Round.Status.DONE, expected=[Round.Status.TRAINING]
    ):
        return
    version = next((j.registered_version for j in jobs if j.registered_version_id), None)
    if round_.continue_automatically and version is not None:
        round_services.round_continue(round=round_, version=version)


STALE_ERROR = "The worker stopped reporting (killed or lost); no checkpoint was registered."


def training_jobs_reap_stale(*, now: datetime | None = None) -> int:
    """Fail running jobs whose worker stopped sending heartbeats (killed, OOM, node lost).

    Retrying is explicit (a new job): the old worker may still be alive behind a partition,
    and its own next heartbeat will find the job failed and stop its child.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.TRAINING_HEARTBEAT_TIMEOUT)
    stale = TrainingJob.objects.filter(status=TrainingJob.Status.RUNNING, heartbeat_at__lt=cutoff)
    reaped = 0
    for job in stale.only("pk", "round_id"):
        if stale.filter(pk=job.pk).update(
            status=TrainingJob.Status.FAILED, finished_at=now, error=STALE_ERROR
        ):
            reaped += 1
            _after_finish(job)
    return reaped
