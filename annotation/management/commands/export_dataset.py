import shutil
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.answers import InvalidInput
from annotation.export_rows import AGGREGATIONS
from annotation.exports import (
    EXPORT_FORMATS,
    FILE_FORMATS,
    export_create,
    export_path,
    export_run,
)
from annotation.models import Project


def _ids(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


class Command(BaseCommand):
    help = (
        "Export a project's judgments as an immutable snapshot (recorded like the API's) and "
        "copy its file to --out. Every format and option of the API is here."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument("--format", default="trl-preference", choices=EXPORT_FORMATS)
        parser.add_argument("--file-format", default="jsonl", choices=FILE_FORMATS)
        parser.add_argument("--out", required=True, type=Path, help="Where to copy the file.")
        parser.add_argument("--ties", default="drop", choices=["drop", "keep"])
        parser.add_argument("--both-bad", default="drop", choices=["drop", "keep"])
        parser.add_argument("--min-strength", type=int, default=1)
        parser.add_argument("--aggregate", default="all", choices=AGGREGATIONS)
        parser.add_argument("--final-turn-only", action="store_true")
        parser.add_argument("--seed", type=int, default=0, help="ratings-pairs' random pick")
        parser.add_argument("--rounds", type=_ids, default=[], help="Comma-separated ids.")
        parser.add_argument("--model-versions", type=_ids, default=[], help="On-policy only.")
        parser.add_argument("--annotators", type=_ids, default=[], help="User ids.")
        parser.add_argument("--guideline-versions", type=_ids, default=[])
        parser.add_argument("--since", default=None, help="ISO date, inclusive.")
        parser.add_argument("--until", default=None, help="ISO date, exclusive.")
        parser.add_argument("--validate-tokenizer", default=None, help="Tokenizer directory.")
        parser.add_argument("--max-length", type=int, default=None)

    def handle(self, *args, **o) -> None:
        project = Project.objects.filter(slug=o["project"]).first()
        if project is None:
            raise CommandError(f"no project with slug {o['project']!r}")
        options = {
            "format": o["format"],
            "file_format": o["file_format"],
            "rules": {
                "ties": o["ties"],
                "both_bad": o["both_bad"],
                "min_strength": o["min_strength"],
                "aggregate": o["aggregate"],
                "final_turn_only": o["final_turn_only"],
                "seed": o["seed"],
            },
            "filters": {
                "rounds": o["rounds"],
                "model_versions": o["model_versions"],
                "annotators": o["annotators"],
                "guideline_versions": o["guideline_versions"],
                "since": o["since"],
                "until": o["until"],
            },
            "validate_tokenizer": o["validate_tokenizer"],
            "max_length": o["max_length"],
        }
        try:
            snapshot = export_run(snapshot_id=export_create(project=project, options=options).pk)
        except InvalidInput as exc:
            raise CommandError(f"{exc.field}: {exc}") from exc
        assert snapshot is not None
        out = Path(o["out"])
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(export_path(snapshot), out)
        self.stdout.write(
            f"wrote {snapshot.row_count} rows to {out} (snapshot {snapshot.pk}, "
            f"sha256 {snapshot.content_sha256[:12]})"
        )
        if snapshot.validation:
            self.stdout.write(f"tokenizer check: {snapshot.validation}")
