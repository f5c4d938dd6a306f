"""Dataset exports that stock tools load as they are, as immutable snapshots.

An export streams judgments from the database (a server-side cursor, in task order, at
constant memory), turns them into rows of one format (``export_rows``), writes JSON Lines
while hashing them, and then, if asked, converts that file to Parquet or an HF
``save_to_disk`` folder. The snapshot row records the options, row count, content hash
and a dataset card; files live under ``settings.EXPORTS_DIR`` with names we choose.
"""

import hashlib
import json
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from . import export_sql
from .answers import InvalidInput
from .export_rows import AGGREGATIONS, FORMATS, Record, Rules, rows
from .models import Completion, ExportSnapshot, Judgment, Project

EXPORT_FORMATS = FORMATS
FILE_FORMATS = ("jsonl", "parquet", "hf")
CHUNK = 1000


def annotator_pseudonym(user_id: int) -> str:
    # Stable per deployment, but not reversible to a user id without the secret key.
    digest = hashlib.sha256(f"{settings.SECRET_KEY}:annotator:{user_id}".encode()).hexdigest()
    return f"annotator-{digest[:10]}"


@dataclass(frozen=True)
class Filters:
    """Which judgments go in. Empty lists mean no restriction."""

    rounds: list[int] = field(default_factory=list)
    model_versions: list[int] = field(default_factory=list)  # every candidate from these
    since: str | None = None  # ISO datetime, inclusive
    until: str | None = None  # ISO datetime, exclusive
    guideline_versions: list[int] = field(default_factory=list)
    annotators: list[int] = field(default_factory=list)  # user ids


@dataclass(frozen=True)
class ExportRequest:
    format: str = "trl-preference"
    file_format: str = "jsonl"
    rules: Rules = Rules()
    filters: Filters = Filters()
    validate_tokenizer: str | None = None  # a tokenizer directory to check rows against
    max_length: int | None = None  # report rows whose prompt+reply tokens exceed it

    def options(self) -> dict:
        out = asdict(self)
        out["rules"]["margin_by_strength"] = {
            str(k): v for k, v in self.rules.margin_by_strength.items()
        }
        return out


def export_request_from(options: dict) -> ExportRequest:
    """Validate options (from the API, the command or a stored snapshot); 400s name fields."""
    options = dict(options)
    fmt = options.get("format", "trl-preference")
    if fmt not in FORMATS:
        raise InvalidInput("format", f"choose one of {', '.join(FORMATS)}")
    file_format = options.get("file_format", "jsonl")
    if file_format not in FILE_FORMATS:
        raise InvalidInput("file_format", f"choose one of {', '.join(FILE_FORMATS)}")
    raw_rules = dict(options.get("rules") or {})
    if "margin_by_strength" in raw_rules:
        raw_rules["margin_by_strength"] = {
            int(k): float(v) for k, v in raw_rules["margin_by_strength"].items()
        }
    try:
        rules = Rules(**raw_rules)
        filters = Filters(**(options.get("filters") or {}))
    except TypeError as exc:
        raise InvalidInput("rules", f"unknown option: {exc}") from exc
    for name, value, allowed in (
        ("ties", rules.ties, ("drop", "keep")),
        ("both_bad", rules.both_bad, ("drop", "keep")),
        ("aggregate", rules.aggregate, AGGREGATIONS),
    ):
        if value not in allowed:
            raise InvalidInput(name, f"choose one of {', '.join(allowed)}")
    for name in ("since", "until"):
        value = getattr(filters, name)
        if value is not None:
            try:
                datetime.fromisoformat(value)
            except ValueError as exc:
                raise InvalidInput(name, "give an ISO date or datetime") from exc
    return ExportRequest(
        format=fmt,
        file_format=file_format,
        rules=rules,
        filters=filters,
        validate_tokenizer=options.get("validate_tokenizer"),
        max_length=options.get("max_length"),
    )


def export_judgments(project: Project, filters: Filters):
    """The judgments an export may use: never gold items or re-asks (they measure people)."""
    judgments = Judgment.objects.filter(
        task__project=project, task__is_gold=False, task__reask_of__isnull=True
    )
    if filters.rounds:
        judgments = judgments.filter(task__round_id__in=filters.rounds)
    if filters.since:
        judgments = judgments.filter(created_at__gte=_moment(filters.since))
    if filters.until:
        judgments = judgments.filter(created_at__lt=_moment(filters.until))
    if filters.guideline_versions:
        judgments = judgments.filter(guidelines_version__in=filters.guideline_versions)
    if filters.annotators:
        judgments = judgments.filter(annotator_id__in=filters.annotators)
    return judgments


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


_RECORD_FIELDS = (
    "id",
    "task_id",
    "kind",
    "annotator_id",
    "created_at",
    "guidelines_version",
    "task__round_id",
    "task__prompt_id",
    "task__prompt__messages",
    "task__prompt__conversation_id",
    "shown_order",
    "choice",
    "strength",
    "chosen_id",
    "rejected_id",
    "both_bad",
    "ranking",
    "ratings",
    "thumbs_up",
    "rewrite_of_id",
    "rewrite",
    "flags",
    "comment",
    "time_spent_ms",
)


def export_records(project: Project, filters: Filters) -> Iterator[Record]:
    """Judgments as export records, grouped by task, a chunk of completions at a time."""
    values = (
        export_judgments(project, filters)
        .order_by("task_id", "id")
        .values_list(*_RECORD_FIELDS)
        .iterator(chunk_size=CHUNK)
    )
    chunk: list[tuple] = []
    for row in values:
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield from _records(chunk, filters)
            chunk = []
    yield from _records(chunk, filters)


def _records(chunk: list[tuple], filters: Filters) -> Iterator[Record]:
    ids = {cid for row in chunk for cid in row[10]}
    completions = {
        c["id"]: c
        for c in Completion.objects.filter(pk__in=ids).values(
            "id", "content", "model_version_id", "model_name", "round_id", "seed", "incomplete"
        )
    }
    allowed_versions = set(filters.model_versions)
    for row in chunk:
        data = dict(zip(_RECORD_FIELDS, row, strict=True))
        shown = data["shown_order"]
        versions = {completions[cid]["model_version_id"] for cid in shown}
        if allowed_versions and not versions <= allowed_versions:
            continue  # on-policy only: every candidate from the chosen versions
        ranking = data["ranking"]
        yield Record(
            judgment_id=data["id"],
            task_id=data["task_id"],
            kind=data["kind"],
            annotator=annotator_pseudonym(data["annotator_id"]),
            created_at=data["created_at"].isoformat(),
            guidelines_version=data["guidelines_version"],
            round_id=data["task__round_id"],
            prompt_id=data["task__prompt_id"],
            prompt=data["task__prompt__messages"],
            conversation_id=data["task__prompt__conversation_id"],
            contents={cid: completions[cid]["content"] for cid in shown},
            provenance={
                cid: {k: v for k, v in completions[cid].items() if k not in ("id", "content")}
                for cid in shown
            },
            shown_order=shown,
            choice=data["choice"],
            strength=data["strength"],
            chosen_id=data["chosen_id"],
            rejected_id=data["rejected_id"],
            both_bad=data["both_bad"],
            ranking=ranking,
            ratings=data["ratings"],
            thumbs_up=data["thumbs_up"],
            rewrite_of_id=data["rewrite_of_id"],
            rewrite=data["rewrite"],
            flags=data["flags"],
            comment=data["comment"],
            time_spent_ms=data["time_spent_ms"],
        )


# --- running a snapshot ------------------------------------------------------------------------


def export_create(*, project: Project, options: dict, created_by=None) -> ExportSnapshot:
    request = export_request_from(options)
    total = export_judgments(project, request.filters).count()
    return ExportSnapshot.objects.create(
        project=project,
        format=request.format,
        file_format=request.file_format,
        options=request.options(),
        judgments_total=total,
        created_by=created_by,
    )


def export_path(snapshot: ExportSnapshot) -> Path:
    """Where a snapshot's file lives; names are ours, and must stay inside EXPORTS_DIR."""
    root = Path(settings.EXPORTS_DIR).resolve()
    path = (root / snapshot.file_name).resolve()
    if not snapshot.file_name or root not in path.parents:
        raise InvalidInput("file", "this export has no file")
    return path


def export_run(*, snapshot_id: int) -> ExportSnapshot | None:
    """Build a queued snapshot once (a redelivered task finds it taken and does nothing)."""
    claimed = ExportSnapshot.objects.filter(
        pk=snapshot_id, status=ExportSnapshot.Status.QUEUED
    ).update(status=ExportSnapshot.Status.RUNNING)
    if not claimed:
        return None
    snapshot = ExportSnapshot.objects.select_related("project").get(pk=snapshot_id)
    try:
        _build(snapshot)
    except Exception as exc:
        ExportSnapshot.objects.filter(pk=snapshot_id).update(
            status=ExportSnapshot.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:500],
            finished_at=timezone.now(),
        )
        raise
    snapshot.refresh_from_db()
    return snapshot


def _build(snapshot: ExportSnapshot) -> None:
    request = export_request_from(snapshot.options)
    root = Path(settings.EXPORTS_DIR)
    root.mkdir(parents=True, exist_ok=True)
    stem = f"{snapshot.project.slug}-{snapshot.pk}-{snapshot.format}"
    jsonl = root / f"{stem}.jsonl"
    stats = _write_jsonl(snapshot, request, jsonl)
    name = jsonl.name
    if request.file_format == "parquet":
        name = _convert(jsonl, root / f"{stem}.parquet", parquet=True)
    elif request.file_format == "hf":
        name = _convert(jsonl, root / f"{stem}.hf", parquet=False)
    validation = None
    if request.validate_tokenizer:
        validation = validate_rows(jsonl, request.validate_tokenizer, request.max_length)
    if request.file_format != "jsonl":
        jsonl.unlink()
    ExportSnapshot.objects.filter(pk=snapshot.pk).update(
        status=ExportSnapshot.Status.SUCCEEDED,
        row_count=stats.rows,
        content_sha256=stats.sha256,
        file_name=name,
        card=dataset_card(snapshot, request, stats, validation),
        validation=validation,
        judgments_done=snapshot.judgments_total,
        finished_at=timezone.now(),
    )


@dataclass
class WriteStats:
    rows: int = 0
    sha256: str = ""


def export_lines(project: Project, request: ExportRequest) -> Iterator[str]:
    """The export's JSON Lines (without newlines), from Postgres directly where it can."""
    if export_sql.eligible(request.format, request.rules):
        yield from export_sql.trl_preference_lines(project.pk, request.filters, request.rules)
        return
    records = export_records(project, request.filters)
    for row in rows(request.format, records, request.rules):
        yield json.dumps(row, ensure_ascii=False, sort_keys=True)


def _write_jsonl(snapshot: ExportSnapshot, request: ExportRequest, out: Path) -> WriteStats:
    stats = WriteStats()
    digest = hashlib.sha256()
    tmp = out.with_name(out.name + ".partial")
    with tmp.open("w", encoding="utf-8") as fh:
        for line in export_lines(snapshot.project, request):
            data = line + "\n"
            digest.update(data.encode())
            fh.write(data)
            stats.rows += 1
            if stats.rows % (10 * CHUNK) == 0:  # rows track judgments closely enough for a bar
                done = min(stats.rows, snapshot.judgments_total)
                ExportSnapshot.objects.filter(pk=snapshot.pk).update(judgments_done=done)
    tmp.replace(out)
    stats.sha256 = digest.hexdigest()
    return stats


def export_provenance(project: Project, filters: Filters) -> dict:
    """What the card says about where the data came from (aggregates, not a second pass)."""
    from django.db.models import Count, Max, Min

    judgments = export_judgments(project, filters)
    span = judgments.aggregate(
        first=Min("created_at"),
        last=Max("created_at"),
        annotators=Count("annotator", distinct=True),
    )
    return {
        **span,
        "guideline_versions": sorted(set(judgments.values_list("guidelines_version", flat=True))),
        "rounds": dict(judgments.values_list("task__round_id").annotate(n=Count("id")).order_by()),
        "versions": dict(
            Completion.objects.filter(tasks__judgments__in=judgments)
            .values_list("model_version_id")
            .annotate(n=Count("id"))
            .order_by()
        ),
    }


def _convert(jsonl: Path, out: Path, *, parquet: bool) -> str:
    import datasets

    loaded = datasets.Dataset.from_json(str(jsonl), cache_dir=str(jsonl.parent / ".cache"))
    if parquet:
        loaded.to_parquet(str(out))
        return out.name
    if out.exists():
        shutil.rmtree(out)
    loaded.save_to_disk(str(out))
    archive = shutil.make_archive(str(out), "zip", root_dir=out)  # one file to download
    return Path(archive).name


def dataset_card(
    snapshot: ExportSnapshot, request: ExportRequest, stats: WriteStats, validation: dict | None
) -> str:
    rules = request.rules
    origin = export_provenance(snapshot.project, request.filters)
    lines = [
        f"# {snapshot.project.name}: {request.format} export #{snapshot.pk}",
        "",
        f"- rows: {stats.rows} (from {snapshot.judgments_total} judgments)",
        f"- content sha256 (JSON Lines): `{stats.sha256}`",
        f"- file: {request.file_format}; created {timezone.now():%Y-%m-%d %H:%M} UTC",
        f"- scale: {snapshot.project.scale_kind}",
        f"- ties: {rules.ties}; both bad: {rules.both_bad}; minimum strength: "
        f"{rules.min_strength}; several annotators per task: {rules.aggregate}; margin by "
        f"strength: {rules.margin_by_strength}; final turn only: {rules.final_turn_only}",
        "- gold items and swapped re-asks are never exported",
        f"- filters: {asdict(request.filters)}",
        "",
        "## Provenance",
        f"- annotators: {origin['annotators']} (pseudonymous ids in the rows)",
        f"- guideline versions: {origin['guideline_versions']}",
        f"- judged between {origin['first']} and {origin['last']}",
        f"- judged candidates by model version id: {origin['versions']}",
        f"- judgments by round id: {origin['rounds']}",
    ]
    if validation:
        lines += ["", "## Tokenizer check", f"```\n{json.dumps(validation, indent=2)}\n```"]
    return "\n".join(lines) + "\n"


def validate_rows(jsonl: Path, tokenizer_dir: str, max_length: int | None) -> dict:
    """Render rows with the target tokenizer's chat template and check what TRL assumes.

    For every row: the prompt's tokens are a prefix of prompt+reply, there is a single BOS,
    and (with ``max_length``) how many rows are longer, which TRL would drop or truncate.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    report: Counter[str] = Counter()
    with jsonl.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            replies = [row[k] for k in ("chosen", "rejected", "completion") if k in row]
            if "messages" in row:
                prompt, replies = row["messages"][:-1], [row["messages"][-1:]]
            else:
                prompt = row.get("prompt")
            if not prompt or not replies:
                report["rows_not_checked"] += 1
                continue
            report["rows_checked"] += 1
            head = _tokens(tokenizer, prompt, generation_prompt=True)
            longest = 0
            for reply in replies:
                full = _tokens(tokenizer, prompt + reply, generation_prompt=False)
                longest = max(longest, len(full))
                if full[: len(head)] != head:
                    report["prompt_not_a_prefix"] += 1
                bos = tokenizer.bos_token_id
                if bos is not None and full.count(bos) != 1:
                    report["not_single_bos"] += 1
            if max_length is not None and longest > max_length:
                report["rows_over_max_length"] += 1
    out = {"tokenizer": str(tokenizer_dir), "max_length": max_length}
    for key in ("rows_checked", "rows_not_checked", "prompt_not_a_prefix", "not_single_bos"):
        out[key] = report[key]
    out["rows_over_max_length"] = report["rows_over_max_length"] if max_length else None
    return out


def _tokens(tokenizer, messages: list[dict], *, generation_prompt: bool) -> list[int]:
    ids = tokenizer.apply_chat_template(
        messages, tokenize=True, add_generation_prompt=generation_prompt
    )
    if isinstance(ids, dict) or hasattr(ids, "keys"):  # some versions return a BatchEncoding
        ids = ids["input_ids"]
    return list(ids)


# --- the foundation's helper, kept for training jobs and the command ---------------------------


def export_stream(*, project: Project, fmt: str, out, options: dict | None = None) -> int:
    """Write one export's JSON Lines to the text stream ``out`` as rows come; returns rows."""
    request = export_request_from({**(options or {}), "format": fmt})
    count = 0
    for line in export_lines(project, request):
        out.write(line + "\n")
        count += 1
    return count


def export_write_jsonl(
    *, project: Project, fmt: str, out: Path, options: dict | None = None
) -> int:
    """Write one export to ``out`` atomically (no snapshot row); returns the number of rows."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    with tmp.open("w", encoding="utf-8") as fh:
        count = export_stream(project=project, fmt=fmt, out=fh, options=options)
    tmp.replace(out)
    return count
