"""Parse an uploaded prompt file (JSONL or CSV) into validated prompts and per-line errors.

Pure and stdlib-only so it can be tested without a database: the service that stores prompts
calls `parse_prompt_file` and decides what to do with the errors. Nothing here raises on bad
file *content*; only an unsupported file type raises, because that is a caller decision.
"""

import csv
import hashlib
import io
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

ROLES = ("system", "user", "assistant")
PROMPT_KEYS = frozenset({"prompt", "system", "id", "metadata"})
MESSAGES_KEYS = frozenset({"messages", "id", "metadata"})
CSV_COLUMNS = PROMPT_KEYS
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson", ".json"})
CSV_SUFFIXES = frozenset({".csv"})
# Prompt.external_id is a CharField(max_length=200); a longer id would fail at INSERT time.
MAX_EXTERNAL_ID_CHARS = 200


@dataclass(frozen=True)
class ParsedPrompt:
    line: int
    messages: list[dict]
    external_id: str
    metadata: dict
    content_hash: str


@dataclass(frozen=True)
class LineError:
    line: int
    field: str
    message: str


@dataclass(frozen=True)
class ImportResult:
    prompts: list[ParsedPrompt]
    errors: list[LineError]
    duplicates: list[int]


class _Invalid(Exception):
    """One field of one line is invalid; the line is skipped and parsing goes on."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# A row as read from the file: its physical line and either its fields or why it could not be read.
_Row = tuple[int, dict[str, Any] | _Invalid]


def parse_prompt_file(
    data: bytes, *, filename: str, max_lines: int = 50_000, max_chars: int = 100_000
) -> ImportResult:
    """Validate every prompt in `data`; raise ValueError only for an unsupported file type."""
    read_rows = _reader_for(filename)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        message = f"file is not valid UTF-8 ({exc.reason} at byte {exc.start})"
        return ImportResult(prompts=[], errors=[LineError(0, "file", message)], duplicates=[])
    rows = read_rows(text, max_lines)
    if isinstance(rows, LineError):
        return ImportResult(prompts=[], errors=[rows], duplicates=[])
    return _collect(rows, max_chars=max_chars)


def messages_content_hash(messages: list[dict]) -> str:
    """Hex sha256 of the conversation's roles and contents, for de-duplication across imports."""
    pairs = [[message["role"], message["content"]] for message in messages]
    canonical = json.dumps(pairs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _reader_for(filename: str) -> Callable[[str, int], list[_Row] | LineError]:
    suffix = PurePath(filename).suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return _jsonl_rows
    if suffix in CSV_SUFFIXES:
        return _csv_rows
    raise ValueError(f"unsupported file type {suffix or '(none)'!r}; use .jsonl or .csv")


def _collect(rows: list[_Row], *, max_chars: int) -> ImportResult:
    prompts: list[ParsedPrompt] = []
    errors: list[LineError] = []
    duplicates: list[int] = []
    seen_hashes: set[str] = set()
    seen_ids: set[str] = set()
    for line, fields in rows:
        try:
            prompt = _prompt_from_row(line, fields, max_chars=max_chars)
        except _Invalid as exc:
            errors.append(LineError(line, exc.field, exc.message))
            continue
        if prompt.content_hash in seen_hashes or prompt.external_id in seen_ids:
            duplicates.append(line)
            continue
        # Only kept prompts count as "earlier": a skipped duplicate must not hide a later line.
        seen_hashes.add(prompt.content_hash)
        if prompt.external_id:  # "" means no id, so it never makes a duplicate
            seen_ids.add(prompt.external_id)
        prompts.append(prompt)
    return ImportResult(prompts=prompts, errors=errors, duplicates=duplicates)


# --- reading the two formats ---------------------------------------------------------------


def _physical_lines(text: str) -> Iterator[tuple[int, str]]:
    # Same line splitting as the csv module (\n, \r\n or \r), so both formats number lines alike.
    return enumerate(io.StringIO(text, newline=""), start=1)


def _too_many_lines(max_lines: int) -> LineError:
    return LineError(0, "file", f"the file has more than {max_lines} prompts; split it up")


def _jsonl_rows(text: str, max_lines: int) -> list[_Row] | LineError:
    lines = [(number, line) for number, line in _physical_lines(text) if line.strip()]
    if len(lines) > max_lines:
        return _too_many_lines(max_lines)
    return [(number, _jsonl_fields(line)) for number, line in lines]


def _jsonl_fields(line: str) -> dict[str, Any] | _Invalid:
    try:
        value = _load_json(line, field="line")
    except _Invalid as exc:
        return exc
    if not isinstance(value, dict):
        return _Invalid("line", f"expected a JSON object, got {_json_type(value)}")
    return value


def _csv_rows(text: str, max_lines: int) -> list[_Row] | LineError:
    # strict=True turns bad quoting into an error instead of silently gluing fields together.
    records = _csv_records(csv.reader(io.StringIO(text, newline=""), strict=True))
    header_line, header_cells = next(records, (1, []))
    header = _csv_header(header_cells)
    if isinstance(header, _Invalid):
        return LineError(header_line, header.field, header.message)
    rows: list[_Row] = []
    for line, cells in records:
        if len(rows) == max_lines:
            return _too_many_lines(max_lines)
        rows.append((line, cells if isinstance(cells, _Invalid) else _csv_fields(header, cells)))
    return rows


def _csv_records(reader: Any) -> Iterator[tuple[int, list[str] | _Invalid]]:
    """Non-blank records with the line each starts on; a malformed record does not stop the rest."""
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, _Invalid("line", f"invalid CSV: {exc}")
            continue
        # Spreadsheets export empty rows as ",,,"; treat them like blank lines.
        if any(cell.strip() for cell in cells):
            yield start, cells


def _csv_header(cells: list[str] | _Invalid) -> list[str] | _Invalid:
    if isinstance(cells, _Invalid):
        return cells
    if not cells:
        return _Invalid("file", "the CSV file is empty; expected a header row with 'prompt'")
    names = [cell.strip() for cell in cells]
    unknown = [name for name in names if name not in CSV_COLUMNS]
    if unknown:
        listed = ", ".join(repr(name) for name in unknown)
        allowed = ", ".join(sorted(CSV_COLUMNS))
        return _Invalid(
            unknown[0], f"unknown {_plural('column', unknown)} {listed}; allowed: {allowed}"
        )
    repeated = [name for name in names if names.count(name) > 1]
    if repeated:
        return _Invalid(repeated[0], f"column {repeated[0]!r} appears more than once")
    if "prompt" not in names:
        return _Invalid("prompt", "missing required column 'prompt'")
    return names


def _csv_fields(header: list[str], cells: list[str]) -> dict[str, Any] | _Invalid:
    if len(cells) != len(header):
        return _Invalid("line", f"expected {len(header)} fields as in the header, got {len(cells)}")
    # An empty optional cell means "not given", like a missing JSONL key.
    fields: dict[str, Any] = {
        name: cell
        for name, cell in zip(header, cells, strict=True)
        if name == "prompt" or cell.strip()
    }
    if "metadata" in fields:
        try:
            fields["metadata"] = _load_json(fields["metadata"], field="metadata")
        except _Invalid as exc:
            return exc
    return fields


def _load_json(text: str, *, field: str) -> Any:
    """json.loads, but every failure (and every value Postgres jsonb rejects) is an _Invalid."""
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise _Invalid(field, f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise _Invalid(field, "invalid JSON: nested too deeply") from None
    except ValueError as exc:  # from the hooks below, or an integer of more than 4300 digits
        raise _Invalid(field, f"invalid JSON: {exc}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"{literal} is out of range")
    return value


# --- validating one row ---------------------------------------------------------------------


def _prompt_from_row(
    line: int, fields: dict[str, Any] | _Invalid, *, max_chars: int
) -> ParsedPrompt:
    if isinstance(fields, _Invalid):  # the reader could not even read this row
        raise fields
    _check_keys(fields)
    if "messages" in fields:
        messages = _checked_messages(fields["messages"], max_chars=max_chars)
    else:
        messages = _messages_from_prompt(fields, max_chars=max_chars)
    return ParsedPrompt(
        line=line,
        messages=messages,
        external_id=_checked_external_id(fields.get("id")),
        metadata=_checked_metadata(fields.get("metadata")),
        content_hash=messages_content_hash(messages),
    )


def _check_keys(fields: dict[str, Any]) -> None:
    if "messages" in fields and "prompt" in fields:
        raise _Invalid("messages", "give either 'prompt' or 'messages', not both")
    allowed = MESSAGES_KEYS if "messages" in fields else PROMPT_KEYS
    unknown = sorted(key for key in fields if key not in allowed)
    if unknown:
        listed = ", ".join(repr(key) for key in unknown)
        expected = ", ".join(sorted(allowed))
        raise _Invalid(
            unknown[0], f"unknown {_plural('key', unknown)} {listed}; allowed: {expected}"
        )
    if "messages" not in fields and "prompt" not in fields:
        raise _Invalid("prompt", "missing 'prompt' (or 'messages')")


def _messages_from_prompt(fields: dict[str, Any], *, max_chars: int) -> list[dict]:
    user = {"role": "user", "content": _checked_text(fields["prompt"], "prompt", max_chars)}
    system = fields.get("system")
    # A blank system prompt (e.g. an empty CSV cell) means "no system message".
    if system is None or (isinstance(system, str) and not system.strip()):
        return [user]
    return [{"role": "system", "content": _checked_text(system, "system", max_chars)}, user]


def _checked_messages(value: Any, *, max_chars: int) -> list[dict]:
    if not isinstance(value, list) or not value:
        raise _Invalid("messages", "must be a non-empty list of {role, content} objects")
    messages = [_checked_message(item, f"messages[{i}]", max_chars) for i, item in enumerate(value)]
    _check_turn_order([message["role"] for message in messages])
    return messages


def _checked_message(value: Any, field: str, max_chars: int) -> dict:
    if not isinstance(value, dict):
        raise _Invalid(
            field, f"must be an object with 'role' and 'content', got {_json_type(value)}"
        )
    for key in ("role", "content"):
        if key not in value:
            raise _Invalid(f"{field}.{key}", f"missing '{key}'")
    extra = sorted(key for key in value if key not in ("role", "content"))
    if extra:
        raise _Invalid(field, f"unknown key {extra[0]!r}; a message has only 'role' and 'content'")
    role = value["role"]
    if role not in ROLES:
        raise _Invalid(f"{field}.role", f"role must be one of {', '.join(ROLES)}, got {role!r:.40}")
    return {"role": role, "content": _checked_text(value["content"], f"{field}.content", max_chars)}


def _check_turn_order(roles: list[str]) -> None:
    start = 1 if roles[0] == "system" else 0
    for i in range(start, len(roles)):
        if roles[i] == "system":
            raise _Invalid(f"messages[{i}].role", "a system message may only come first")
        expected = "user" if (i - start) % 2 == 0 else "assistant"
        if roles[i] != expected:
            raise _Invalid(
                f"messages[{i}].role",
                f"expected '{expected}': turns alternate user, assistant, ... starting with user",
            )
    if roles[-1] != "user":
        raise _Invalid(
            f"messages[{len(roles) - 1}].role",
            "the last message must be from the user (the model answers it)",
        )


def _checked_text(value: Any, field: str, max_chars: int) -> str:
    """Content is kept verbatim: it is only sanitised when rendered."""
    if not isinstance(value, str):
        raise _Invalid(field, f"must be a string, got {_json_type(value)}")
    _check_storable(value, field)
    if not value.strip():
        raise _Invalid(field, "must not be empty")
    if len(value) > max_chars:
        raise _Invalid(field, f"is {len(value)} characters long; the limit is {max_chars}")
    return value


def _checked_external_id(value: Any) -> str:
    if value is None:
        return ""
    # bool is an int subclass, but `"id": true` is surely a mistake.
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _Invalid("id", f"must be a string or an integer, got {_json_type(value)}")
    _check_storable(value, "id")
    if len(value) > MAX_EXTERNAL_ID_CHARS:
        raise _Invalid("id", f"is longer than {MAX_EXTERNAL_ID_CHARS} characters")
    return value if value.strip() else ""


def _checked_metadata(value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Invalid("metadata", f"must be a JSON object, got {_json_type(value)}")
    # Iterative, because a deeply nested object that json.loads accepted could overflow recursion.
    pending: list[Any] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            _check_storable(item, "metadata")
    return value


def _check_storable(text: str, field: str) -> None:
    # Postgres text and jsonb reject NUL; a lone surrogate (a "\ud800" escape) is not UTF-8.
    if "\x00" in text:
        raise _Invalid(field, "contains a NUL character (\\x00), which cannot be stored")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _Invalid(field, "contains an unpaired UTF-16 surrogate escape") from None


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


def _plural(noun: str, items: list) -> str:
    return noun if len(items) == 1 else f"{noun}s"
