import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from models_serving.local_server import local_server_command


class Command(BaseCommand):
    help = "Serve the tiny local policy with `transformers serve` (the embedded stand-in for vLLM)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=settings.LOCAL_MODEL_PORT)
        parser.add_argument("--host", default="127.0.0.1")

    def handle(self, *args, port: int, host: str, **options) -> None:
        model_dir = settings.TINY_POLICY_DIR
        if not model_dir.exists():
            raise CommandError(f"no model at {model_dir}; run `python manage.py build_tiny_models`")
        # Unpinned: checkpoints that training registers are served on request too.
        argv = local_server_command(model_dir, port, host, pinned=False)
        self.stdout.write(f"serving {model_dir} at http://{host}:{port}/v1")
        self.stdout.flush()
        # Replace this process so the supervisor's signals reach the server directly.
        os.execv(argv[0], argv)
