from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.exports import EXPORT_FORMATS, export_write_jsonl
from annotation.models import Project


class Command(BaseCommand):
    help = "Export a project's judgments as a dataset file (JSON Lines)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument("--format", default="trl-preference", choices=EXPORT_FORMATS)
        parser.add_argument("--out", required=True, type=Path, help="Output .jsonl path.")

    def handle(self, *args, project: str, format: str, out: Path, **options) -> None:
        found = Project.objects.filter(slug=project).first()
        if found is None:
            raise CommandError(f"no project with slug {project!r}")
        rows = export_write_jsonl(project=found, fmt=format, out=Path(out))
        self.stdout.write(f"wrote {rows} rows to {out}")
