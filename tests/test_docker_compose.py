"""No Docker engine runs here, so check that the compose file points at real entry points."""

import importlib
import re
import shlex
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
ROUTED_QUEUES = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}


def _argv(service: str) -> list[str]:
    command = SERVICES[service]["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


def _procfile_argv(process: str) -> list[str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    command = next(line.split(":", 1)[1] for line in lines if line.startswith(f"{process}:"))
    return shlex.split(command)


def test_all_services_are_there():
    assert set(SERVICES) >= {"postgres", "redis", "web", "worker", "gpu-worker", "beat", "vllm"}


@pytest.mark.parametrize("service", ["worker", "gpu-worker", "beat"])
def test_celery_services_name_the_real_app(service):
    argv = _argv(service)
    assert argv[0] == "celery"
    module = argv[argv.index("-A") + 1]
    app = importlib.import_module(module).celery_app
    assert app.main == "arbiter"


def test_worker_queues_cover_every_routed_queue():
    consumed = set()
    for service in ("worker", "gpu-worker"):
        argv = _argv(service)
        consumed |= set(argv[argv.index("-Q") + 1].split(","))
    assert consumed >= ROUTED_QUEUES | {settings.CELERY_TASK_DEFAULT_QUEUE}


def test_gpu_worker_takes_only_gpu_queue_one_at_a_time_on_a_gpu():
    argv = _argv("gpu-worker")
    assert argv[argv.index("-Q") + 1] == "gpu"
    assert argv[argv.index("--concurrency") + 1] == "1"
    devices = SERVICES["gpu-worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia"


def test_web_runs_migrations_and_the_asgi_app():
    command = " ".join(_argv("web"))
    for name in re.findall(r"manage\.py (\w+)", command):
        assert name in get_commands(), f"manage.py has no command {name!r}"
    # The server module (one socket per worker) and the ASGI app it serves.
    server = re.search(r"python -m (\S+)", command).group(1)
    serve = importlib.import_module(server)
    module, attr = serve.APP.split(":")
    assert callable(getattr(importlib.import_module(module), attr))
    workers = serve.parse_args(
        command.split(server, 1)[1].replace("$${WEB_WORKERS:-2}", "2").split()
    )
    assert workers.host == "0.0.0.0" and workers.workers == 2


def test_vllm_serves_the_model_the_app_requests():
    vllm = SERVICES["vllm"]
    assert vllm["image"].startswith("vllm/vllm-openai")
    app_env = SERVICES["web"]["environment"]
    assert app_env["VLLM_BASE_URL"].startswith("http://vllm:")
    model_arg = _argv("vllm")[_argv("vllm").index("--model") + 1]
    assert model_arg == app_env["VLLM_MODEL"]


def test_dockerfile_exists_for_the_build():
    assert (ROOT / "Dockerfile").exists()


def test_beat_reads_its_schedule_from_the_database_in_compose_and_procfile():
    argv = _argv("beat")
    scheduler = argv[argv.index("--scheduler") + 1]
    module, attr = scheduler.split(":")
    assert getattr(importlib.import_module(module), attr).__name__ == "DatabaseScheduler"
    procfile = (ROOT / "Procfile").read_text().splitlines()
    [beat] = [line for line in procfile if line.startswith("beat:")]
    assert f"--scheduler {scheduler}" in beat


@pytest.mark.parametrize("argv", [_argv("gpu-worker"), _procfile_argv("gpu")])
def test_gpu_workers_run_one_job_at_a_time_each_in_a_fresh_process(argv):
    assert argv[argv.index("-Q") + 1] == "gpu"
    for flag in ("--concurrency", "--max-tasks-per-child", "--prefetch-multiplier"):
        assert argv[argv.index(flag) + 1] == "1", flag


def test_checkpoints_are_one_volume_where_they_are_trained_and_served():
    root = SERVICES["gpu-worker"]["environment"]["CHECKPOINT_ROOT"]
    for service in ("gpu-worker", "web", "vllm"):
        mounts = {
            volume.split(":")[1]: volume.split(":")[0] for volume in SERVICES[service]["volumes"]
        }
        assert mounts.get(root) == "checkpoints", service
    assert "checkpoints" in COMPOSE["volumes"]
