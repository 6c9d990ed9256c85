"""Short labels that say what differs between the runs compared, and a title for what they share.

A session header holds many facts; two runs usually differ in one or two of
them (the kernel set, the quantization, the board). Each column gets a label
made of the facets that differ among the columns shown, in a fixed order, and
the facets they all share become the title. Runs that differ in nothing but
their files are told apart by their run name (the file or directory given),
shortened when it is the default `<time>-<board>-<model>-<id>` file name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from profiler.compare.load import Column

Facet = Callable[[dict[str, Any]], str]
DEFAULT_NAME = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-.+-([0-9a-f]{6})[0-9a-f]*$")


def _kernels(header: dict[str, Any]) -> str:
    firmware = str(header.get("firmware_id") or "")
    return firmware.partition("+")[2]


def _prompt(header: dict[str, Any]) -> str:
    text = str(header.get("prompt") or "")
    return f'prompt "{text[:14]}…"' if len(text) > 15 else f'prompt "{text}"'


# Name, how to read it from a header, whether the board already implies it (then it is left out of a
# label when the boards differ: another board has another firmware build anyway).
FACETS: tuple[tuple[str, Facet, bool], ...] = (
    ("board", lambda h: str(h.get("board", "?")), False),
    ("emulated", lambda h: "emulated" if h.get("emulated") else "hardware", False),
    ("model", lambda h: str(h.get("model", "?")), False),
    ("model hash", lambda h: f"sha {str(h.get('model_sha256'))[:8]}", False),
    ("quantization", lambda h: str(h.get("quantization", "?")), False),
    ("kernels", _kernels, False),
    ("firmware", lambda h: str(h.get("firmware_id") or "?").partition("+")[0], True),
    ("arithmetic", lambda h: str(h.get("arithmetic") or "f32"), True),
    ("tokens", lambda h: f"{h.get('tokens')} tokens", False),
    ("prompt", _prompt, False),
)


def run_name(source: str) -> str:
    """The name a run argument goes by: a directory's or file's stem, default file names shortened."""
    stem = source.rstrip("/").rsplit("/", 1)[-1].removesuffix(".jsonl")
    found = DEFAULT_NAME.match(stem)
    if found:
        _, month, day, hh, mm, ss, sid = found.groups()
        return f"{month}-{day} {hh}:{mm}:{ss} {sid}"
    return stem or source


def facet_values(header: dict[str, Any]) -> dict[str, str]:
    """Every facet of one header, by name."""
    return {name: read(header) for name, read, _ in FACETS}


def differing_facets(headers: Sequence[dict[str, Any]]) -> list[str]:
    """Facets whose value is not the same in every header, minus those the board implies when boards differ."""
    values = [facet_values(h) for h in headers]
    differ = [name for name, _, _ in FACETS if len({v[name] for v in values}) > 1]
    implied = {name for name, _, by_board in FACETS if by_board}
    if "board" in differ:
        differ = [name for name in differ if name not in implied]
    if "model" in differ:
        differ = [name for name in differ if name != "model hash"]
    return differ


def title_of(headers: Sequence[dict[str, Any]]) -> str:
    """What every run shares, `·`-separated; the board carries `(emulated)` when all are emulated."""
    if not headers:
        return ""
    values = [facet_values(h) for h in headers]
    shared = [name for name, _, _ in FACETS if len({v[name] for v in values}) == 1]
    parts: list[str] = []
    for name in shared:
        value = values[0][name]
        if name == "emulated":
            continue
        if name == "board" and "emulated" in shared:
            value += " (emulated)" if values[0]["emulated"] == "emulated" else ""
        if not value or name in ("model hash", "firmware", "arithmetic"):
            continue  # detail that would crowd the title; the legend and the environment table have it
        parts.append(value)
    return " · ".join(parts)


@dataclass(frozen=True)
class Legend:
    """One row of the legend table: a short label and the full names behind it."""

    label: str
    run: str
    files: tuple[str, ...]
    board: str
    model: str
    quantization: str
    firmware_id: str


def assign_labels(columns: Sequence[Column]) -> str:
    """Give every column a short label in place (unique), keep its former name as `full_name`; returns the title."""
    headers = [c.header for c in columns]
    differ = differing_facets(headers)
    for column in columns:
        column.full_name = column.full_name or column.label
        values = facet_values(column.header)
        column.label = " · ".join(values[name] or f"no {name}" for name in differ)
    counts: dict[str, int] = {}
    for column in columns:
        counts[column.label] = counts.get(column.label, 0) + 1
    for column in columns:
        if counts[column.label] > 1 or not column.label:
            name = run_name(column.source)
            column.label = f"{column.label} · {name}" if column.label else name
    seen: dict[str, int] = {}
    for column in columns:
        seen[column.label] = seen.get(column.label, 0) + 1
        if seen[column.label] > 1:
            column.label = f"{column.label} #{seen[column.label]}"
    return title_of(headers)


def legend(columns: Sequence[Column]) -> list[Legend]:
    """The legend table's rows, one per column."""
    return [Legend(c.label, c.source, tuple(s.path.name for s in c.sessions), str(c.header.get("board")),
                   str(c.header.get("model")), str(c.header.get("quantization")), str(c.header.get("firmware_id")))
            for c in columns]
