"""The frontend's API types are generated from frontend/openapi.json; it must match the server."""

import json
from pathlib import Path

from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent


def test_committed_schema_matches_the_api(tmp_path):
    out = tmp_path / "openapi.json"
    call_command("spectacular", format="openapi-json", file=str(out), fail_on_warn=True)
    committed = json.loads((ROOT / "frontend" / "openapi.json").read_text())
    assert json.loads(out.read_text()) == committed, "run `make schema` and commit the result"
