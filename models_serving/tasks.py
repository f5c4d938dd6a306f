from celery import shared_task

from . import services
from .client import ModelServerUnavailable

LOAD_RETRIES = 6  # 10 s, 20 s, ... 320 s: about ten minutes for a server that is restarting


@shared_task(name="models_serving.tasks.check_endpoints")
def check_endpoints() -> dict[str, bool]:
    """Beat: /health and /v1/models of every enabled endpoint, recorded on its row."""
    return services.endpoints_check_all()


@shared_task(
    bind=True,
    name="models_serving.tasks.load_version",
    acks_late=True,
    max_retries=LOAD_RETRIES,
)
def load_version(self, version_id: int) -> str:
    """A new version on a running server (a LoRA adapter hot-loaded, or just listed).

    Default queue: the work is HTTP to the model server. Retried while the server does not
    answer; after the last retry the version is marked failed with the reason.
    """
    try:
        return services.version_load(version_id=version_id).status
    except ModelServerUnavailable as exc:
        if self.request.retries >= LOAD_RETRIES:
            services.version_load_gave_up(version_id=version_id, reason=str(exc))
            return "failed"
        raise self.retry(countdown=10 * 2**self.request.retries) from exc


@shared_task(name="models_serving.tasks.serve_checkpoint", acks_late=True)
def serve_checkpoint(version_id: int) -> str:
    """gpu queue (CELERY_TASK_ROUTES): start a vLLM server for a full checkpoint, switch to it."""
    return services.checkpoint_serve(version_id=version_id).status
