import dataclasses

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from annotation import demo
from models_serving.client import server_config_from_settings
from models_serving.local_server import local_model_server, server_is_healthy


class Command(BaseCommand):
    help = "Create the demo users, project and prompts, and generate two candidates per prompt."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--no-generate", action="store_true", help="Only create users, project and prompts."
        )

    def handle(self, *args, no_generate: bool = False, **options) -> None:
        report = demo.DemoReport()
        project = demo.demo_seed_rows(report)
        if not no_generate and demo.demo_prompts_missing_completions(project):
            self._generate(project, report)
        self.stdout.write(
            f"demo project '{project.slug}': {project.prompts.count()} prompts "
            f"({report.prompts_created} new), {report.completions_created} completions generated, "
            f"{project.tasks.count()} pairs"
        )
        for error in report.generation_errors:
            self.stderr.write(f"generation failed: {error}")
        self.stdout.write("dev logins (username / password):")
        for username, password, role in demo.DEMO_USERS:
            self.stdout.write(f"  {role.value:<10} {username} / {password}")

    def _generate(self, project, report: demo.DemoReport) -> None:
        server = server_config_from_settings()
        if server_is_healthy(server.base_url):
            demo.demo_generate_pairs(project, server, report)
            return
        if not settings.MODEL_SERVER_EMBEDDED:
            raise CommandError(f"the model server at {server.base_url} is not answering")
        if not settings.TINY_POLICY_DIR.exists():
            raise CommandError(
                f"no model server at {server.base_url} and no tiny model at "
                f"{settings.TINY_POLICY_DIR}; run `python manage.py build_tiny_models` first"
            )
        self.stdout.write("starting the local model server to generate the demo pairs ...")
        with local_model_server(settings.TINY_POLICY_DIR, settings.LOCAL_MODEL_PORT) as base_url:
            local = dataclasses.replace(server, base_url=base_url)
            demo.demo_generate_pairs(project, local, report)
