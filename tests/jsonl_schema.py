"""Every session file the tests write is checked against docs/jsonl.schema.json (see conftest.py)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from jsonschema import Draft202012Validator

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "docs" / "jsonl.schema.json"


@cache
def validator() -> Draft202012Validator:
    """The schema's validator (the schema itself checked first)."""
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def is_session_file(path: Path) -> bool:
    """A JSONL whose first line is a session header (traces, logs and other JSONL are not session files)."""
    if path.name.endswith(".trace.jsonl"):
        return False
    try:
        with path.open(encoding="utf-8") as lines:
            first = json.loads(lines.readline())
    except (OSError, ValueError):
        return False
    return isinstance(first, dict) and first.get("type") == "session"


def problems(path: Path) -> list[str]:
    """What in `path` breaks the schema, one line each (empty: the file is valid)."""
    found = []
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except ValueError:
            if number == len(lines) and not text.endswith("\n"):
                continue  # a last line cut by a kill: the file is valid up to it (docs/jsonl.md)
            found.append(f"{path}:{number}: not JSON")
            continue
        for error in validator().iter_errors(record):
            where = "/".join(str(p) for p in error.absolute_path) or "(record)"
            found.append(f"{path}:{number}: {record.get('type')} {where}: {error.message}")
    return found


def check_tree(root: Path, seen: set[Path]) -> list[str]:
    """Problems of every session file under `root` not checked before."""
    found: list[str] = []
    for path in sorted(root.rglob("*.jsonl")):
        if path not in seen and path.is_file() and is_session_file(path):
            seen.add(path)
            found += problems(path)
    return found
