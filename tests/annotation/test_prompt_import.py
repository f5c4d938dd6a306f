import csv
import hashlib
import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotation.prompt_import import (
    ImportResult,
    LineError,
    ParsedPrompt,
    messages_content_hash,
    parse_prompt_file,
)


def jsonl(*rows: object) -> bytes:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows).encode()


def parse_jsonl(*rows: object, **limits: int) -> ImportResult:
    return parse_prompt_file(jsonl(*rows), filename="prompts.jsonl", **limits)


def parse_csv(text: str, **limits: int) -> ImportResult:
    return parse_prompt_file(text.encode(), filename="prompts.csv", **limits)


def only_error(result: ImportResult) -> LineError:
    assert result.prompts == []
    assert len(result.errors) == 1, result.errors
    return result.errors[0]


def user(content: str) -> dict:
    return {"role": "user", "content": content}


def assistant(content: str) -> dict:
    return {"role": "assistant", "content": content}


def system(content: str) -> dict:
    return {"role": "system", "content": content}


# --- the two JSONL shapes -------------------------------------------------------------------


def test_prompt_shape_with_system_id_and_metadata():
    result = parse_jsonl(
        {"prompt": "Hi", "system": "Be brief.", "id": "p-1", "metadata": {"topic": "greeting"}}
    )
    assert result.errors == [] and result.duplicates == []
    [prompt] = result.prompts
    assert prompt == ParsedPrompt(
        line=1,
        messages=[system("Be brief."), user("Hi")],
        external_id="p-1",
        metadata={"topic": "greeting"},
        content_hash=messages_content_hash([system("Be brief."), user("Hi")]),
    )


def test_prompt_shape_without_optional_fields():
    [prompt] = parse_jsonl({"prompt": "Hi"}).prompts
    assert (prompt.messages, prompt.external_id, prompt.metadata) == ([user("Hi")], "", {})


def test_blank_system_prompt_means_no_system_message():
    [prompt] = parse_jsonl({"prompt": "Hi", "system": "  "}).prompts
    assert prompt.messages == [user("Hi")]


def test_messages_shape_keeps_a_multi_turn_prefix():
    messages = [system("S"), user("U1"), assistant("A1"), user("U2")]
    [prompt] = parse_jsonl({"messages": messages, "id": "m-1", "metadata": {"k": [1]}}).prompts
    assert prompt.messages == messages
    assert (prompt.external_id, prompt.metadata) == ("m-1", {"k": [1]})


def test_content_is_kept_verbatim():
    content = '  <b>bold</b> & "quoted"\n\ttrailing  '
    [prompt] = parse_jsonl({"prompt": content}).prompts
    assert prompt.messages[0]["content"] == content


def test_integer_id_is_stored_as_string():
    [prompt] = parse_jsonl({"prompt": "Hi", "id": 42}).prompts
    assert prompt.external_id == "42"


@pytest.mark.parametrize("bad_id", [True, 1.5, ["a"], {"a": 1}])
def test_id_must_be_a_string_or_integer(bad_id):
    assert only_error(parse_jsonl({"prompt": "Hi", "id": bad_id})).field == "id"


def test_overlong_id_is_refused():
    assert only_error(parse_jsonl({"prompt": "Hi", "id": "x" * 201})).field == "id"


@pytest.mark.parametrize("ext", [".jsonl", ".ndjson", ".json", ".JSONL"])
def test_jsonl_extensions(ext):
    result = parse_prompt_file(jsonl({"prompt": "Hi"}), filename=f"upload{ext}")
    assert len(result.prompts) == 1


@pytest.mark.parametrize("filename", ["prompts.txt", "prompts.xlsx", "prompts"])
def test_unsupported_extension_raises(filename):
    with pytest.raises(ValueError, match=r"unsupported file type .*; use \.jsonl or \.csv"):
        parse_prompt_file(b'{"prompt": "Hi"}', filename=filename)


# --- file-level handling --------------------------------------------------------------------


def test_blank_lines_are_ignored_and_lines_keep_their_physical_number():
    result = parse_jsonl("", {"prompt": "a"}, "   ", "", {"prompt": "b"}, "")
    assert [p.line for p in result.prompts] == [2, 5]
    assert result.errors == []


def test_crlf_line_endings():
    data = b'{"prompt": "a"}\r\n{"prompt": "b"}\r\n'
    result = parse_prompt_file(data, filename="p.jsonl")
    assert [p.messages[0]["content"] for p in result.prompts] == ["a", "b"]


def test_utf8_bom_is_stripped():
    result = parse_prompt_file(b"\xef\xbb\xbf" + jsonl({"prompt": "caf\u00e9"}), filename="p.jsonl")
    assert result.errors == []
    assert result.prompts[0].messages == [user("caf\u00e9")]


def test_bom_before_csv_header_is_stripped():
    result = parse_prompt_file(b"\xef\xbb\xbfprompt\nHi\n", filename="p.csv")
    assert [p.messages for p in result.prompts] == [[user("Hi")]]


def test_invalid_utf8_is_a_single_file_error():
    error = only_error(parse_prompt_file(b'{"prompt": "\xff\xfe"}', filename="p.jsonl"))
    assert (error.line, error.field) == (0, "file")
    assert "UTF-8" in error.message


def test_empty_jsonl_file_has_nothing_to_import():
    assert parse_jsonl("") == ImportResult(prompts=[], errors=[], duplicates=[])


def test_too_many_lines_is_a_single_error_and_no_prompts():
    error = only_error(parse_jsonl({"prompt": "a"}, {"prompt": "b"}, {"prompt": "c"}, max_lines=2))
    assert error.field == "file"
    assert "2" in error.message


def test_blank_lines_do_not_count_towards_max_lines():
    result = parse_jsonl({"prompt": "a"}, "", "", {"prompt": "b"}, max_lines=2)
    assert len(result.prompts) == 2


# --- per-line errors ------------------------------------------------------------------------


def test_malformed_json_line_is_reported_and_the_rest_kept():
    result = parse_jsonl({"prompt": "a"}, '{"prompt": "b"', {"prompt": "c"})
    assert [p.line for p in result.prompts] == [1, 3]
    [error] = result.errors
    assert (error.line, error.field) == (2, "line")
    assert "invalid JSON" in error.message and "column" in error.message


@pytest.mark.parametrize("line", ['"just a string"', "[1, 2]", "3", "null"])
def test_line_must_be_a_json_object(line):
    error = only_error(parse_jsonl(line))
    assert error.field == "line" and "object" in error.message


@pytest.mark.parametrize(
    "line", ['{"prompt": "a", "metadata": {"x": NaN}}', '{"prompt": "a", "metadata": {"x": 1e999}}']
)
def test_non_finite_numbers_are_refused(line):
    # Postgres jsonb cannot store NaN or Infinity.
    assert "invalid JSON" in only_error(parse_jsonl(line)).message


def test_deeply_nested_json_is_an_error_not_a_crash():
    line = '{"prompt": "a", "metadata": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    assert only_error(parse_jsonl(line)).field == "line"


def test_unknown_key_is_named():
    error = only_error(parse_jsonl({"prompt": "a", "tags": ["x"]}))
    assert error.field == "tags" and "'tags'" in error.message


def test_system_key_is_unknown_in_the_messages_shape():
    error = only_error(parse_jsonl({"messages": [user("a")], "system": "S"}))
    assert error.field == "system"


def test_prompt_and_messages_together_are_refused():
    error = only_error(parse_jsonl({"prompt": "a", "messages": [user("a")]}))
    assert error.field == "messages"


def test_missing_prompt_is_refused():
    assert only_error(parse_jsonl({"id": "x"})).field == "prompt"


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"prompt": "a\x00b"}, "prompt"),
        ({"prompt": "a", "system": "s\x00"}, "system"),
        ({"messages": [user("ok"), assistant("a\x00"), user("b")]}, "messages[1].content"),
        ({"prompt": "a", "id": "x\x00"}, "id"),
        ({"prompt": "a", "metadata": {"k": ["v\x00"]}}, "metadata"),
        ({"prompt": "a", "metadata": {"k\x00": 1}}, "metadata"),
    ],
)
def test_nul_character_is_refused_and_named(row, field):
    error = only_error(parse_jsonl(row))
    assert error.field == field and "NUL" in error.message


def test_lone_surrogate_escape_is_refused():
    assert only_error(parse_jsonl('{"prompt": "a\\ud800b"}')).field == "prompt"


@pytest.mark.parametrize("messages", [[], "user: hi", None, {"role": "user", "content": "a"}])
def test_messages_must_be_a_non_empty_list(messages):
    assert only_error(parse_jsonl({"messages": messages})).field == "messages"


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ("hi", "messages[0]"),
        ({"role": "user"}, "messages[0].content"),
        ({"content": "hi"}, "messages[0].role"),
        ({"role": "user", "content": "hi", "name": "bob"}, "messages[0]"),
        ({"role": "tool", "content": "hi"}, "messages[0].role"),
        ({"role": "User", "content": "hi"}, "messages[0].role"),
        ({"role": "user", "content": 5}, "messages[0].content"),
    ],
)
def test_each_message_is_exactly_role_and_content(message, field):
    assert only_error(parse_jsonl({"messages": [message]})).field == field


def test_bad_role_is_named():
    error = only_error(parse_jsonl({"messages": [{"role": "bot", "content": "hi"}]}))
    assert error.field == "messages[0].role" and "'bot'" in error.message


@pytest.mark.parametrize(
    "messages",
    [
        [user("a"), system("S"), user("b")],
        [system("S"), system("T"), user("a")],
    ],
)
def test_system_message_only_first_and_only_once(messages):
    error = only_error(parse_jsonl({"messages": messages}))
    assert error.field == "messages[1].role" and "system" in error.message


@pytest.mark.parametrize(
    "messages",
    [[user("a"), assistant("b")], [system("S"), user("a"), assistant("b")], [system("S")]],
)
def test_last_message_must_be_from_the_user(messages):
    error = only_error(parse_jsonl({"messages": messages}))
    assert error.field == f"messages[{len(messages) - 1}].role"
    assert "last message" in error.message


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        ([assistant("a"), user("b")], "messages[0].role"),
        ([system("S"), assistant("a"), user("b")], "messages[1].role"),
        ([user("a"), user("b")], "messages[1].role"),
        ([user("a"), assistant("b"), assistant("c"), user("d")], "messages[2].role"),
    ],
)
def test_turns_must_alternate_starting_with_user(messages, field):
    error = only_error(parse_jsonl({"messages": messages}))
    assert error.field == field and "alternate" in error.message


@pytest.mark.parametrize("content", ["", "   ", "\n\t"])
def test_empty_content_is_refused(content):
    assert only_error(parse_jsonl({"prompt": content})).field == "prompt"
    assert only_error(parse_jsonl({"messages": [user(content)]})).field == "messages[0].content"


def test_content_over_max_chars_is_refused():
    result = parse_jsonl({"prompt": "x" * 10}, {"prompt": "y" * 11}, max_chars=10)
    assert [p.line for p in result.prompts] == [1]
    [error] = result.errors
    assert (error.line, error.field) == (2, "prompt")
    assert "10" in error.message


def test_system_over_max_chars_is_refused():
    error = only_error(parse_jsonl({"prompt": "a", "system": "s" * 11}, max_chars=10))
    assert error.field == "system"


@pytest.mark.parametrize("metadata", ["text", [1, 2], 3, True])
def test_metadata_must_be_an_object(metadata):
    error = only_error(parse_jsonl({"prompt": "a", "metadata": metadata}))
    assert error.field == "metadata" and "object" in error.message


def test_null_optional_fields_are_treated_as_absent():
    [prompt] = parse_jsonl({"prompt": "a", "system": None, "id": None, "metadata": None}).prompts
    assert (prompt.messages, prompt.external_id, prompt.metadata) == ([user("a")], "", {})


# --- duplicates -----------------------------------------------------------------------------


def test_duplicate_content_is_skipped_not_an_error():
    result = parse_jsonl({"prompt": "a", "id": "1"}, {"prompt": "b"}, {"prompt": "a", "id": "2"})
    assert [p.line for p in result.prompts] == [1, 2]
    assert result.duplicates == [3] and result.errors == []


def test_prompt_shape_and_messages_shape_hash_alike():
    result = parse_jsonl({"prompt": "a", "system": "S"}, {"messages": [system("S"), user("a")]})
    assert result.duplicates == [2]


def test_duplicate_external_id_is_skipped():
    result = parse_jsonl({"prompt": "a", "id": "x"}, {"prompt": "b", "id": "x"})
    assert [p.line for p in result.prompts] == [1]
    assert result.duplicates == [2]


def test_integer_and_string_ids_collide():
    result = parse_jsonl({"prompt": "a", "id": 7}, {"prompt": "b", "id": "7"})
    assert result.duplicates == [2]


def test_prompts_without_id_are_not_duplicates_of_each_other():
    result = parse_jsonl({"prompt": "a"}, {"prompt": "b", "id": ""})
    assert len(result.prompts) == 2 and result.duplicates == []


def test_invalid_line_does_not_claim_its_id():
    result = parse_jsonl({"prompt": "", "id": "x"}, {"prompt": "b", "id": "x"})
    assert [p.line for p in result.prompts] == [2]
    assert result.duplicates == []


def test_skipped_duplicate_does_not_hide_its_content():
    # Line 2 is dropped for its id, so its content was never kept and line 3 must survive.
    result = parse_jsonl({"prompt": "a", "id": "x"}, {"prompt": "b", "id": "x"}, {"prompt": "b"})
    assert [p.line for p in result.prompts] == [1, 3]
    assert result.duplicates == [2]


# --- content hash ---------------------------------------------------------------------------


def test_content_hash_is_sha256_of_canonical_role_content_pairs():
    messages = [system("S"), user("caf\u00e9 \u2603")]
    canonical = '[["system","S"],["user","caf\u00e9 \u2603"]]'
    assert messages_content_hash(messages) == hashlib.sha256(canonical.encode()).hexdigest()


def test_content_hash_ignores_key_order_and_distinguishes_roles():
    assert messages_content_hash([{"content": "a", "role": "user"}]) == messages_content_hash(
        [user("a")]
    )
    assert messages_content_hash([user("a")]) != messages_content_hash([system("a")])


# --- CSV ------------------------------------------------------------------------------------


def test_csv_with_quoted_multiline_field_and_system_column():
    text = (
        "id,system,prompt,metadata\n"
        'c-1,Be brief.,"line one\nline two, with comma",\n'
        'c-2,,plain,"{""lang"": ""en""}"\n'
    )
    result = parse_csv(text)
    assert result.errors == []
    first, second = result.prompts
    assert first.line == 2
    assert first.messages == [system("Be brief."), user("line one\nline two, with comma")]
    assert (first.external_id, first.metadata) == ("c-1", {})
    # The quoted newline puts the next record on physical line 4.
    assert second.line == 4
    assert second.messages == [user("plain")]
    assert (second.external_id, second.metadata) == ("c-2", {"lang": "en"})


def test_csv_prompt_column_alone_is_enough():
    result = parse_csv("prompt\r\nHi\r\nThere\r\n")
    assert [p.messages for p in result.prompts] == [[user("Hi")], [user("There")]]


def test_csv_unknown_column_stops_the_parse():
    error = only_error(parse_csv("prompt,score\nHi,1\n"))
    assert (error.line, error.field) == (1, "score")
    assert "'score'" in error.message


def test_csv_missing_prompt_column():
    error = only_error(parse_csv("id,system\n1,S\n"))
    assert (error.line, error.field) == (1, "prompt")


def test_csv_repeated_column():
    assert only_error(parse_csv("prompt,prompt\na,b\n")).field == "prompt"


def test_csv_without_header():
    assert only_error(parse_csv("")).field == "file"


def test_csv_row_with_wrong_number_of_fields():
    result = parse_csv("prompt,id\na,1\nb,2,extra\nc,3\n")
    assert [p.line for p in result.prompts] == [2, 4]
    assert [(e.line, e.field) for e in result.errors] == [(3, "line")]


def test_csv_bad_quoting_is_a_line_error():
    result = parse_csv('prompt,id\n"a"b,1\nc,2\n')
    assert [(e.line, e.field) for e in result.errors] == [(2, "line")]
    assert "invalid CSV" in result.errors[0].message
    assert [p.line for p in result.prompts] == [3]


def test_csv_metadata_must_be_a_json_object():
    result = parse_csv('prompt,metadata\na,"[1]"\nb,{oops\n')
    assert [(e.line, e.field) for e in result.errors] == [(2, "metadata"), (3, "metadata")]
    assert "invalid JSON" in result.errors[1].message


def test_csv_blank_rows_are_ignored():
    result = parse_csv("prompt,id\n\na,1\n,\n  ,  \nb,2\n")
    assert [p.line for p in result.prompts] == [3, 6]
    assert result.errors == []


def test_csv_empty_prompt_cell_is_an_error():
    result = parse_csv("prompt,id\n,1\n")
    assert [(e.line, e.field) for e in result.errors] == [(2, "prompt")]


def test_csv_nul_byte_is_refused():
    assert only_error(parse_csv("prompt\na\x00b\n")).field == "prompt"


def test_csv_too_many_rows():
    assert only_error(parse_csv("prompt\na\nb\nc\n", max_lines=2)).field == "file"
    assert len(parse_csv("prompt\na\nb\n", max_lines=2).prompts) == 2


def test_csv_duplicates_by_content_and_id():
    result = parse_csv("prompt,id\na,1\na,2\nb,1\n")
    assert [p.line for p in result.prompts] == [2]
    assert result.duplicates == [3, 4]


# --- properties -----------------------------------------------------------------------------


def assert_follows_message_rules(prompt: ParsedPrompt, max_chars: int) -> None:
    roles = [m["role"] for m in prompt.messages]
    assert roles, "messages must be non-empty"
    assert all(set(m) == {"role", "content"} for m in prompt.messages)
    assert all(isinstance(m["content"], str) and m["content"].strip() for m in prompt.messages)
    assert all("\x00" not in m["content"] for m in prompt.messages)
    assert all(len(m["content"]) <= max_chars for m in prompt.messages)
    turns = roles[1:] if roles[0] == "system" else roles
    assert turns == ["user", "assistant"] * (len(turns) // 2) + ["user"]
    assert isinstance(prompt.external_id, str) and isinstance(prompt.metadata, dict)
    assert prompt.content_hash == messages_content_hash(prompt.messages)


def assert_well_formed(result: ImportResult, max_chars: int = 100_000) -> None:
    for prompt in result.prompts:
        assert_follows_message_rules(prompt, max_chars)
    kept = [p.line for p in result.prompts]
    errored = {e.line for e in result.errors}
    assert not (set(kept) & errored) and not (set(kept) & set(result.duplicates))
    assert len({p.content_hash for p in result.prompts}) == len(result.prompts)
    ids = [p.external_id for p in result.prompts if p.external_id]
    assert len(set(ids)) == len(ids)


PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
FILENAMES = st.sampled_from(["p.jsonl", "p.csv"])
KEYS = st.sampled_from(["prompt", "system", "id", "metadata", "messages", "role", "content"])
# Repeated short texts make duplicates likely; blanks and NULs exercise the error paths.
texts = st.sampled_from(["a", "b", "  ", "x\x00y", '{"k": [1]}']) | st.text(max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(KEYS | st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=12,
)
ids = st.none() | st.booleans() | st.integers(-3, 3) | texts
roles = st.sampled_from(["system", "user", "assistant", "tool"])
message_dicts = st.fixed_dictionaries({"role": roles, "content": texts}) | json_values
# Mostly near-valid rows, so that the property also checks prompts the parser accepts.
rows = (
    st.fixed_dictionaries(
        {"prompt": texts}, optional={"system": texts, "id": ids, "metadata": json_values}
    )
    | st.fixed_dictionaries(
        {"messages": st.lists(message_dicts, max_size=5)},
        optional={"id": ids, "metadata": json_values},
    )
    | st.dictionaries(KEYS, json_values, max_size=4)
)
csv_headers = st.lists(st.sampled_from(["system", "id", "metadata"]), unique=True).flatmap(
    lambda optional: st.permutations(["prompt", *optional])
) | st.lists(KEYS | st.text(max_size=4), min_size=1, max_size=4)


@PROPERTY_SETTINGS
@given(data=st.binary(max_size=2000), filename=FILENAMES)
def test_arbitrary_bytes_never_raise(data, filename):
    assert_well_formed(parse_prompt_file(data, filename=filename))


@PROPERTY_SETTINGS
@given(text=st.text(max_size=2000), filename=FILENAMES)
def test_arbitrary_text_never_raises(text, filename):
    assert_well_formed(parse_prompt_file(text.encode("utf-8"), filename=filename))


@PROPERTY_SETTINGS
@given(
    lines=st.lists(rows.map(json.dumps) | st.text(max_size=30), max_size=8),
    max_chars=st.integers(1, 20),
)
def test_arbitrary_jsonl_rows_never_raise(lines, max_chars):
    data = "\n".join(lines).encode()
    assert_well_formed(parse_prompt_file(data, filename="p.jsonl", max_chars=max_chars), max_chars)


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    header = draw(csv_headers)
    # Usually as wide as the header, sometimes not, to hit the wrong-width error too.
    width = st.just(len(header)) | st.integers(0, 5)
    cells = draw(st.lists(width.flatmap(lambda n: st.lists(texts, min_size=n, max_size=n))))
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, *cells])
    return buffer.getvalue().encode()


@PROPERTY_SETTINGS
@given(data=csv_files())
def test_arbitrary_csv_rows_never_raise(data):
    assert_well_formed(parse_prompt_file(data, filename="p.csv"))


@st.composite
def valid_conversations(draw: st.DrawFn) -> list[dict]:
    content = st.text(min_size=1).filter(lambda s: s.strip() and "\x00" not in s)
    turns = 2 * draw(st.integers(0, 3)) + 1
    messages = [system(draw(content))] if draw(st.booleans()) else []
    for i in range(turns):
        messages.append((user if i % 2 == 0 else assistant)(draw(content)))
    return messages


@PROPERTY_SETTINGS
@given(messages=valid_conversations())
def test_valid_conversations_round_trip(messages):
    data = json.dumps({"messages": messages}).encode()
    for filename in ("p.jsonl", "p.ndjson"):
        result = parse_prompt_file(data, filename=filename)
        assert result.errors == []
        [prompt] = result.prompts
        assert prompt.messages == messages
        assert_follows_message_rules(prompt, 100_000)
