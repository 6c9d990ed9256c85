"""docs/jsonl.schema.json against the code that writes the files (profiler/records.py) and the prose that
explains them (docs/jsonl.md). Real files are validated after every test (conftest.py)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from profiler import records
from tests.jsonl_schema import SCHEMA_PATH, problems, validator

ROOT = Path(__file__).resolve().parent.parent
RECORDS = [c for c in vars(records).values()
           if isinstance(c, type) and issubclass(c, records.Record) and c is not records.Record]


def _schema() -> dict[str, Any]:
    return dict(json.loads(SCHEMA_PATH.read_text()))


def test_schema_has_every_field_records_write_and_requires_the_core_ones() -> None:
    defs = _schema()["$defs"]
    assert {c.type for c in RECORDS} == set(defs) == set(_schema()["properties"]["type"]["enum"])
    for cls in RECORDS:
        definition = defs[cls.type]
        fields = dataclasses.fields(cls)
        missing = {f.name for f in fields} - set(definition["properties"])
        assert not missing, f"add {sorted(missing)} of {cls.__name__} to docs/jsonl.schema.json ({cls.type})"
        if cls.__bases__ == (records.Record,):  # a record type's own class (a subclass, e.g. an event kind, adds)
            core = {f.name for f in fields
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
            assert set(definition["required"]) == core | {"type"}, cls.type


def test_jsonl_md_documents_every_field_of_the_schema() -> None:
    text = (ROOT / "docs" / "jsonl.md").read_text()
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)` \|(.*)$", text, re.MULTILINE)}
    for name, definition in _schema()["$defs"].items():
        assert name in rows, f"docs/jsonl.md has no row for `{name}` records"
        undocumented = [p for p in definition["properties"] if p != "type" and f"`{p}`" not in rows[name]]
        assert not undocumented, f"docs/jsonl.md's `{name}` row does not mention {undocumented}"


HEADER = {"type": "token", "repetition": 0, "warmup": False, "index": 0, "position": 5, "token_id": 7, "text": "a",
          "ticks": 100, "device_ms": 1.0}


@pytest.mark.parametrize(("record", "error"), [
    ({**HEADER}, None),
    ({**HEADER, "energy_mj": 0.7}, None),  # fields newer profilers add pass
    ({"type": "event", "kind": "board_reset", "message": "the board reset", "repetition": 2, "ticks": None}, None),
    ({"type": "summary", "status": "ok", "valid": True, "reasons": [], "repetitions": 5, "tokens_generated": 160,
      "predicted_decode_tokens_per_s": 190.0, "predicted_model": "cortex-m4 1"}, None),
    ({k: v for k, v in HEADER.items() if k != "ticks"}, "'ticks' is a required property"),
    ({**HEADER, "ticks": 1.5}, "1.5 is not of type 'integer'"),
    ({"type": "summary", "status": "ok", "valid": "yes", "reasons": [], "repetitions": 5, "tokens_generated": 1},
     "'yes' is not of type 'boolean'"),
    ({"type": "sample", "kind": "power", "repetition": 0, "warmup": False, "ticks": 1, "values": {"power_mw": None}},
     "None is not of type 'number'"),
    ({"type": "spans"}, "'spans' is not one of"),
])
def test_validator_requires_core_fields_and_allows_additions(tmp_path: Path, record: dict[str, Any],
                                                             error: str | None) -> None:
    found = [e.message for e in validator().iter_errors(record)]
    assert (error is None and not found) or (error is not None and any(error in m for m in found)), found
    if error is not None:  # and the file check names line and field
        path = tmp_path / "broken.jsonl"
        path.write_text(json.dumps(record) + "\n")
        assert problems(path) and problems(path)[0].startswith(f"{path}:1: ")
