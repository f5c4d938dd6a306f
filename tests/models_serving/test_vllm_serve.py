"""A new full checkpoint on vLLM gets its own `vllm serve` process (blue/green).

The command line is checked as such; the start, the health wait, the switch and the retiring
of older servers run end to end with tests/fake_vllm_server.py standing in for the `vllm`
executable (it answers like vLLM; vLLM itself cannot run here).
"""

import asyncio
import json
import os
import shlex
import socket
import stat
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from django.db import connection, connections

from config.celery import app as celery_app
from fake_vllm_server import FakeVLLM
from models_serving import selectors, services, tasks, vllm_server
from models_serving.client import ChatClient, ModelVersionDisabled, SamplingParams
from models_serving.models import ModelEndpoint, ModelVersion

ROOT = Path(__file__).resolve().parents[2]
FAKE_VLLM = ROOT / "tests" / "fake_vllm_server.py"


# --- the command line and environment --------------------------------------------------------


def test_command_line_pins_generation_config_and_names_the_model():
    argv = vllm_server.vllm_serve_command(
        "/ckpt/job-9/checkpoint",
        port=8101,
        host="0.0.0.0",
        served_model_name="/ckpt/job-9/checkpoint",
        enable_lora=True,
        extra_args=["--gpu-memory-utilization", "0.45"],
    )
    assert argv == [
        "vllm",
        "serve",
        "/ckpt/job-9/checkpoint",
        "--generation-config",
        "vllm",
        "--host",
        "0.0.0.0",
        "--port",
        "8101",
        "--served-model-name",
        "/ckpt/job-9/checkpoint",
        "--enable-lora",
        "--gpu-memory-utilization",
        "0.45",
    ]
    plain = vllm_server.vllm_serve_command("/m", port=8000, executable="/opt/vllm/bin/vllm")
    assert plain[0] == "/opt/vllm/bin/vllm" and "--enable-lora" not in plain
    assert plain[plain.index("--served-model-name") + 1] == "/m"


def test_environment_never_turns_on_dev_mode_and_carries_the_key():
    base = {"PATH": "/bin", "VLLM_SERVER_DEV_MODE": "1", "VLLM_API_KEY": "stale"}
    env = vllm_server.vllm_serve_env(base, enable_lora=True, api_key="sk-new")
    assert "VLLM_SERVER_DEV_MODE" not in env
    assert env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    assert env["VLLM_API_KEY"] == "sk-new" and env["PATH"] == "/bin"
    bare = vllm_server.vllm_serve_env(
        {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True", "VLLM_API_KEY": "x"}, enable_lora=False
    )
    assert bare == {}


def test_ports_come_from_the_range_skipping_taken_and_busy_ones():
    assert vllm_server.port_range("8100-8102") == range(8100, 8103)
    assert vllm_server.port_range("9000") == range(9000, 9001)
    for bad in ("0-10", "9-3", "x"):
        with pytest.raises(ValueError):
            vllm_server.port_range(bad)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ports = range(port, port + 3)
        assert vllm_server.free_port(ports, "127.0.0.1", {port + 1}) == port + 2
        with pytest.raises(RuntimeError, match="no free port"):
            vllm_server.free_port(range(port, port + 1), "127.0.0.1")


def test_server_root_is_where_health_lives():
    assert vllm_server.server_root("http://vllm:8000/v1") == "http://vllm:8000"
    assert vllm_server.server_root("http://vllm:8000/v1/") == "http://vllm:8000"
    assert vllm_server.server_root("http://proxy/models") == "http://proxy/models"


def test_serve_checkpoint_runs_on_the_gpu_queue():
    celery_app.loader.import_default_modules()
    assert "models_serving.tasks.serve_checkpoint" in celery_app.tasks
    route = celery_app.amqp.router.route({}, "models_serving.tasks.serve_checkpoint")
    assert route["queue"].name == "gpu"
    load = celery_app.amqp.router.route({}, "models_serving.tasks.load_version")
    assert load["queue"].name == "default"


# --- starting, switching, retiring -----------------------------------------------------------


@pytest.fixture(autouse=True)
def queued(monkeypatch) -> list[int]:
    """serve_checkpoint as queued after commit (tests run it themselves, without a broker)."""
    sent: list[int] = []
    monkeypatch.setattr(tasks.serve_checkpoint, "delay", sent.append)
    return sent


@pytest.fixture
def fake_vllm_cli(tmp_path: Path, settings, monkeypatch) -> Path:
    """`vllm` on this machine: the fake server, started the way vLLM would be."""
    executable = tmp_path / "bin" / "vllm"
    executable.parent.mkdir()
    executable.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_VLLM}" "$@"\n')
    executable.chmod(executable.stat().st_mode | stat.S_IXUSR)
    record = tmp_path / "started.json"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        first = sock.getsockname()[1]
    settings.VLLM_EXECUTABLE = str(executable)
    settings.VLLM_SERVE_BIND = settings.VLLM_SERVE_HOST = "127.0.0.1"
    settings.VLLM_SERVE_PORTS = f"{first}-{min(first + 40, 65535)}"
    settings.VLLM_SERVE_EXTRA_ARGS = "--gpu-memory-utilization 0.45"
    settings.VLLM_SERVE_STARTUP_TIMEOUT = 60.0
    settings.VAR_DIR = tmp_path / "var"
    monkeypatch.setenv("FAKE_VLLM_RECORD", str(record))
    monkeypatch.setattr(vllm_server, "POLL_SECONDS", 0.1)
    yield record
    for endpoint in ModelEndpoint.objects.filter(process_pid__isnull=False):
        vllm_server.stop_server(endpoint.process_pid, urlsplit(endpoint.base_url).port, timeout=5)


@pytest.fixture
def _pool_closed():
    yield
    # The switching thread hands its connection back to the pool, which would keep it open
    # and stop the test database from being dropped.
    if hasattr(connection, "close_pool"):
        connection.close_pool()


@pytest.fixture
def origin():
    """The vLLM already serving (the docker-compose one): it must keep serving throughout."""
    with FakeVLLM(api_key="sk-vllm") as server:
        yield server


def full_checkpoint(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir()
    (path / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    return path


def local_endpoint(origin: FakeVLLM) -> ModelEndpoint:
    return ModelEndpoint.objects.filter(name="local").first() or services.model_endpoint_create(
        name="local",
        base_url=origin.base_url,
        api_key="sk-vllm",
        kind="vllm",
        supports_n=True,
        supports_logprobs=True,
        max_concurrency=12,
        default_sampling_params={"max_tokens": 48},
    )


def register(origin: FakeVLLM, path: Path, job: int) -> ModelVersion:
    return services.checkpoint_register(
        endpoint=local_endpoint(origin),
        path=str(path),
        checkpoint_id=f"demo-dpo-job-{job}",
        label=f"job {job}",
    )


def chat(config) -> str:
    async def go():
        client = ChatClient(config)
        try:
            [candidate] = await client.generate(
                [{"role": "user", "content": "Hi"}], k=1, params=SamplingParams(), base_seed=2
            )
            return candidate.content
        finally:
            await client.close()

    return asyncio.run(go())


@pytest.mark.django_db
def test_a_full_checkpoint_on_vllm_is_queued_for_a_new_server(
    origin, tmp_path, queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        version = register(origin, full_checkpoint(tmp_path, "ckpt"), job=1)
    assert (version.kind, version.model_name, version.status) == (
        "checkpoint",
        str(tmp_path / "ckpt"),
        "pending",
    )
    assert version.status_detail == "starting a vLLM server for it"
    assert queued == [version.pk]
    assert origin.requests == []  # nothing is asked of the running server


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
def test_blue_green_the_old_server_serves_until_the_new_one_lists_the_checkpoint(
    _pool_closed, origin, fake_vllm_cli, tmp_path, monkeypatch, settings
):
    monkeypatch.setenv("VLLM_SERVER_DEV_MODE", "1")  # set on the worker: must not pass on
    monkeypatch.setenv("FAKE_VLLM_STARTUP_SECONDS", "3")
    origin_version = services.model_version_create(
        endpoint=local_endpoint(origin), model_name="/models/policy", label="base"
    )
    path = full_checkpoint(tmp_path, "c1")
    version = register(origin, path, job=1)

    def serve() -> None:
        try:
            services.checkpoint_serve(version_id=version.pk)
        finally:
            connections.close_all()  # this thread's connection, or the database stays in use

    switched = threading.Thread(target=serve)
    switched.start()
    # While the new server loads, the version is pending and the old server answers.
    deadline = time.monotonic() + 20
    while "vLLM starting on" not in ModelVersion.objects.get(pk=version.pk).status_detail:
        assert time.monotonic() < deadline, "the new server was never started"
        time.sleep(0.05)
    assert chat(selectors.server_config_for(origin_version)) in {
        "Paris is the capital.",
        "It is Paris.",
    }
    assert ModelVersion.objects.get(pk=version.pk).status == "pending"
    # The broker redelivers the message while the first worker still waits for its server:
    # the copy finds the version claimed and returns at once, starting nothing.
    redelivered_at = time.monotonic()
    copy = services.checkpoint_serve(version_id=version.pk)
    assert (copy.status, time.monotonic() - redelivered_at < 1.0) == ("pending", True)
    switched.join(timeout=60)
    assert not switched.is_alive()

    version.refresh_from_db()
    served = version.endpoint
    assert (version.status, served.kind) == ("ready", "vllm")
    assert served.pk != origin_version.endpoint_id and served.process_pid
    assert served.process_host == socket.gethostname()
    port = urlsplit(served.base_url).port
    assert served.base_url == f"http://127.0.0.1:{port}/v1"
    assert version.status_detail == f"served by a new vLLM server at {served.base_url}"
    # It inherits the old endpoint's settings, key included.
    assert (served.supports_n, served.max_concurrency, served.api_key) == (True, 12, "sk-vllm")
    assert served.default_sampling_params == {"max_tokens": 48}

    started = json.loads(fake_vllm_cli.read_text())
    assert started["argv"][:4] == ["serve", str(path), "--generation-config", "vllm"]
    assert started["argv"][started["argv"].index("--port") + 1] == str(port)
    assert "--gpu-memory-utilization" in started["argv"]
    assert "--enable-lora" not in started["argv"]
    assert started["env"] == {"VLLM_API_KEY": "sk-vllm"}  # no dev mode, no LoRA updating
    assert "sk-vllm" not in " ".join(started["argv"])

    # Sampling the version now reaches the new server; the old one is untouched and enabled.
    assert chat(selectors.server_config_for(version))
    origin_endpoint = ModelEndpoint.objects.get(pk=origin_version.endpoint_id)
    assert origin_endpoint.enabled and origin_endpoint.process_pid is None
    log = Path(settings.VAR_DIR) / "vllm" / f"version-{version.pk}-port-{port}.log"
    assert "serving on port" in log.read_text()

    # A newer checkpoint, one started server kept: the first is stopped and switched off.
    settings.VLLM_MAX_STARTED_SERVERS = 1
    newer = register(origin, full_checkpoint(tmp_path, "c2"), job=2)
    newer = services.checkpoint_serve(version_id=newer.pk)
    assert newer.status == "ready" and newer.endpoint_id != served.pk
    served.refresh_from_db()
    assert not served.enabled and served.last_health_detail.startswith("retired")
    assert not vllm_server._alive(served.process_pid)
    with pytest.raises(ModelVersionDisabled):
        selectors.server_config_for(ModelVersion.objects.get(pk=version.pk))
    assert chat(selectors.server_config_for(newer))
    assert ModelEndpoint.objects.get(pk=origin_version.endpoint_id).enabled
    # A redelivered message for a version already served does nothing.
    assert services.checkpoint_serve(version_id=newer.pk).endpoint_id == newer.endpoint_id
    assert ModelEndpoint.objects.filter(process_pid__isnull=False).count() == 2


@pytest.mark.django_db
def test_a_server_that_dies_while_starting_fails_the_version(
    origin, fake_vllm_cli, tmp_path, monkeypatch, settings
):
    monkeypatch.setenv("FAKE_VLLM_EXIT_CODE", "3")
    version = register(origin, full_checkpoint(tmp_path, "c1"), job=1)
    version = services.checkpoint_serve(version_id=version.pk)
    assert version.status == "failed"
    assert version.status_detail.startswith("vLLM exited with code 3 before serving (log: ")
    log = Path(version.status_detail.split("(log: ")[1].rstrip(")"))
    assert "CUDA out of memory" in log.read_text()
    assert not ModelEndpoint.objects.filter(process_pid__isnull=False).exists()
    assert version.endpoint.name == "local"


@pytest.mark.django_db
def test_a_server_that_never_answers_is_stopped_and_the_version_fails(
    origin, fake_vllm_cli, tmp_path, monkeypatch, settings
):
    monkeypatch.setenv("FAKE_VLLM_STARTUP_SECONDS", "60")
    settings.VLLM_SERVE_STARTUP_TIMEOUT = 1.0
    version = register(origin, full_checkpoint(tmp_path, "c1"), job=1)
    version = services.checkpoint_serve(version_id=version.pk)
    assert version.status == "failed"
    assert "did not serve the checkpoint within 1 s" in version.status_detail
    pid = json.loads(fake_vllm_cli.read_text())["pid"]
    assert not vllm_server._alive(pid)


@pytest.mark.django_db
def test_no_vllm_executable_fails_the_version(origin, tmp_path, settings):
    settings.VLLM_EXECUTABLE = str(tmp_path / "no-such-vllm")
    settings.VAR_DIR = tmp_path
    version = register(origin, full_checkpoint(tmp_path, "c1"), job=1)
    version = services.checkpoint_serve(version_id=version.pk)
    assert version.status == "failed"
    assert version.status_detail.startswith(f"could not start {str(tmp_path / 'no-such-vllm')!r}")
    assert os.listdir(tmp_path / "vllm")  # the log it would have written to is there


def test_compose_starts_vllm_as_arbiter_expects():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    vllm = compose["services"]["vllm"]
    argv = shlex.split(vllm["command"])
    assert argv[argv.index("--generation-config") + 1] == "vllm"
    assert "--enable-lora" in argv
    assert vllm["environment"]["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    app = compose["x-app"]["environment"]
    assert app["MODEL_SUPPORTS_LORA"] == "true" and app["VLLM_SERVE_HOST"] == "gpu-worker"
    for service in compose["services"].values():
        assert "VLLM_SERVER_DEV_MODE" not in (service.get("environment") or {})
