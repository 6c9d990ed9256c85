"""Faults of a real lab wire, injected between `run --port socket://` and a real emulated STM32.

`tiny-profiler emulate` serves QEMU running the real firmware; tests/faultproxy.py sits between it and
the profiler and damages the wire. Each test checks what a user gets: the exit code, one line on stderr
and no traceback, an end within the deadline, a session file that parses to its last line and closes
with `error` + `summary` where the session failed, and every TOKEN frame the proxy passed on intact in
the file. Deadlines are set short (--hello-timeout/--frame-timeout) so no test waits out the defaults.
"""

from __future__ import annotations

import json
import random
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from profiler.link.protocol import Frame, Hello, MsgType, hello_payload, parse_event
from profiler.sinks.jsonl import read_jsonl
from tests.cli import CLI
from tests.faultproxy import ESP32_ROM_BANNER, FaultProxy, Faults
from tests.processes import free_port, stop

pytestmark = pytest.mark.qemu
FRAME_TIMEOUT_S = 4.0
HELLO_TIMEOUT_S = 6.0
TOKENS, REPEAT, WARMUP = 16, 5, 1


@dataclass
class Board:
    """An emulated board served on a TCP port, with QEMU's QMP monitor for a real system_reset."""

    process: subprocess.Popen[str]
    port: int
    qmp: socket.socket  # negotiated up front, so a reset costs one round trip when it is due

    def qemu_pid(self) -> int:
        found = subprocess.run(["pgrep", "-f", f"port={self.port},server=on"], capture_output=True, text=True,
                               check=True)
        return int(found.stdout.split()[0])

    def system_reset(self) -> None:
        """Reset the machine through QMP: the firmware reboots, the UART's TCP connection stays.

        The CPU is stopped first, so the reset lands within a few instructions of the call, not after
        whatever the board computes while QMP answers.
        """
        for command in ("stop", "system_reset", "cont"):
            _qmp(self.qmp, command)


@pytest.fixture
def board(firmware_image: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[Board]:
    qmp_port = free_port()
    monkeypatch.setenv("TINY_PROFILER_QEMU_ARGS", f"-qmp tcp:127.0.0.1:{qmp_port},server=on,wait=off")
    process = subprocess.Popen([*CLI, "emulate", "--device", "stm32", "--model", "demo", "--serial", "socket"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        found = re.search(r"socket://127\.0\.0\.1:(\d+)", process.stdout.readline())
        assert found, process.communicate(timeout=10)
        with socket.create_connection(("127.0.0.1", qmp_port), timeout=10) as qmp:
            qmp.makefile("r").readline()  # the greeting
            _qmp(qmp, "qmp_capabilities")
            yield Board(process, int(found.group(1)), qmp)
    finally:
        stop(process)


def _qmp(qmp: socket.socket, command: str) -> None:
    """One QMP command, waiting for its return (events in between are skipped)."""
    qmp.sendall(json.dumps({"execute": command}).encode() + b"\n")
    reply = b""
    while b'"return"' not in reply:
        chunk = qmp.recv(4096)
        assert chunk, "QEMU closed its QMP monitor"
        reply += chunk


@dataclass
class Outcome:
    code: int
    stderr: str
    seconds: float
    records: list[dict[str, Any]]


def _run(proxy: FaultProxy, out: Path, hello_s: float = HELLO_TIMEOUT_S, frame_s: float = FRAME_TIMEOUT_S,
         tokens: int = TOKENS, extra: tuple[str, ...] = (),
         device: tuple[str, ...] = ("--device", "stm32")) -> Outcome:
    started = time.monotonic()
    result = subprocess.run([*CLI, "run", *device, "--port", proxy.url, "--no-flash", "--model", "demo",
                             "--tokens", str(tokens), "--repeat", str(REPEAT), "--warmup", str(WARMUP),
                             "--hello-timeout", str(hello_s), "--frame-timeout", str(frame_s), "--out", str(out),
                             *extra],
                            capture_output=True, text=True, timeout=300, check=False)
    seconds = time.monotonic() - started
    files = [p for p in out.glob("*.jsonl") if not p.name.endswith(".trace.jsonl")]
    records = read_jsonl(files[0]) if files else []
    assert "Traceback" not in result.stderr, result.stderr
    return Outcome(result.returncode, result.stderr, seconds, records)


def _wire_tokens(records: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """(wire repetition, index) of the token records: measured repetition r went out as RUN r + warmup."""
    return [(r["repetition"] + (0 if r["warmup"] else WARMUP), r["index"]) for r in records if r["type"] == "token"]


def _check_failed(outcome: Outcome, code: int, kind: str, proxy: FaultProxy) -> str:
    """A failed session: its exit code, one line on stderr, a closed file holding every token passed on."""
    assert outcome.code == code, outcome.stderr
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1, outcome.stderr
    records = outcome.records
    assert records[0]["type"] == "session"
    assert records[-2]["type"] == "error" and records[-2]["kind"] == kind and records[-2]["exit_code"] == code
    assert records[-1]["type"] == "summary" and records[-1]["status"] == "failed" and not records[-1]["valid"]
    assert _wire_tokens(records) == proxy.tokens_passed
    assert outcome.seconds < HELLO_TIMEOUT_S + FRAME_TIMEOUT_S + 10  # one wait ran out, and only one
    return lines[0]


def test_rom_banner_and_random_bytes_before_hello_still_give_a_valid_run(board: Board, tmp_path: Path) -> None:
    noise = bytes(random.Random(7).randrange(256) for _ in range(500))
    with FaultProxy(board.port, Faults(preamble=ESP32_ROM_BANNER + noise)) as proxy:
        outcome = _run(proxy, tmp_path, device=())  # no --device: the board names itself in its HELLO
    assert outcome.code == 0, outcome.stderr
    assert outcome.records[0]["device"] == "stm32f405"
    summary = outcome.records[-1]
    assert summary["status"] == "ok" and summary["valid"] and summary["reference_match"]
    assert summary["frames_corrupt"] == summary["frames_lost"] == 0  # the banner is boot noise, not frames
    assert _wire_tokens(outcome.records) == proxy.tokens_passed and len(proxy.tokens_passed) == TOKENS * 6


def test_noise_trickle_after_the_40th_token_ends_the_run_by_its_deadline(board: Board, tmp_path: Path) -> None:
    with FaultProxy(board.port, Faults(noise_after_tokens=40, noise_bytes_per_s=25)) as proxy:
        outcome = _run(proxy, tmp_path)
    line = _check_failed(outcome, 8, "timeout", proxy)
    assert len(proxy.tokens_passed) == 40
    assert re.search(r"\d+ bytes of noise", line), line
    assert outcome.seconds < FRAME_TIMEOUT_S + 10


# With a power source, token records wait for their energy until the repetition ends: a link that closes
# first must not take them along.
@pytest.mark.parametrize(("tokens", "extra"), [(24, ()), (38, ("--power", "model"))])
def test_link_closed_right_after_the_nth_token_keeps_all_n_tokens(board: Board, tmp_path: Path, tokens: int,
                                                                  extra: tuple[str, ...]) -> None:
    with FaultProxy(board.port, Faults(close_after_tokens=tokens)) as proxy:
        outcome = _run(proxy, tmp_path, extra=extra)
    _check_failed(outcome, 8, "disconnect", proxy)
    assert sum(r["type"] == "token" for r in outcome.records) == tokens


def test_a_10_s_stall_is_silence_past_the_frame_deadline(board: Board, tmp_path: Path) -> None:
    with FaultProxy(board.port, Faults(stall_after_tokens=20, stall_s=10)) as proxy:
        outcome = _run(proxy, tmp_path)
    line = _check_failed(outcome, 8, "timeout", proxy)
    assert line.split(": ", 1)[-1].startswith("silence"), line
    assert outcome.seconds < FRAME_TIMEOUT_S + 10


def test_a_10_s_stall_inside_the_frame_deadline_is_waited_through(board: Board, tmp_path: Path) -> None:
    with FaultProxy(board.port, Faults(stall_after_tokens=20, stall_s=10)) as proxy:
        outcome = _run(proxy, tmp_path, frame_s=15)
    assert outcome.code == 0, outcome.stderr
    summary = outcome.records[-1]
    assert summary["status"] == "ok" and summary["frames_lost"] == summary["frames_corrupt"] == 0
    assert _wire_tokens(outcome.records) == proxy.tokens_passed and len(proxy.tokens_passed) == TOKENS * 6


def test_qemu_killed_mid_run_is_a_disconnect_with_every_token_kept(board: Board, tmp_path: Path) -> None:
    def kill_at(count: int) -> None:
        if count == 30:
            subprocess.run(["kill", "-KILL", str(board.qemu_pid())], check=True)

    with FaultProxy(board.port, Faults(on_token=kill_at)) as proxy:
        outcome = _run(proxy, tmp_path)
    _check_failed(outcome, 8, "disconnect", proxy)
    assert len(proxy.tokens_passed) >= 30


@pytest.mark.parametrize("boot_hello_lost", [False, True])
def test_board_reset_mid_repetition_is_an_event_and_the_run_goes_on(
    board: Board, tmp_path: Path, boot_hello_lost: bool
) -> None:
    """A real system_reset after token 1 of measured repetition 1 (of 56: the board must still be in it), the
    link kept. With its boot HELLO lost, the sequence numbers that start again give the reset away."""
    tokens = 56

    def reset_at(count: int) -> None:
        if count == (WARMUP + 1) * tokens + 2:
            board.system_reset()

    def lose(side: str, frame: Frame) -> bool:
        return boot_hello_lost and side == "board" and frame.type == MsgType.HELLO and frame.seq == 0

    with FaultProxy(board.port, Faults(on_token=reset_at, lose=lose)) as proxy:
        outcome = _run(proxy, tmp_path, tokens=tokens)
    assert outcome.code == 1, outcome.stderr  # finished, but one repetition of five is not a good one
    records = outcome.records
    (reset,) = [r for r in records if r["type"] == "event" and r["kind"] == "board_reset"]
    reps = [r for r in records if r["type"] == "repetition" and not r["warmup"]]
    assert [r["repetition"] for r in reps] == list(range(REPEAT))
    assert [r["valid"] for r in reps] == [True, False, True, True, True]
    assert reps[1]["reasons"][0] == "board reset" and reset["repetition"] == 1 and reset["phase"] == "decode"
    assert all(r["matches_reference"] for r in reps if r["valid"])
    summary = records[-1]
    assert summary["type"] == "summary" and summary["status"] == "invalid" and summary["frames_lost"] == 0
    assert _wire_tokens(records) == proxy.tokens_passed


def test_board_reset_between_repetitions_is_an_event_and_every_repetition_counts(
    board: Board, tmp_path: Path
) -> None:
    """Reset right before the RUN of measured repetition 2 goes out: that RUN reaches the board while it
    boots (and is sent again when the board says it is idle) or after (and runs); nothing is cut short."""
    def reset_before_run(side: str, frame: Frame) -> bool:
        if side == "host" and frame.type == MsgType.RUN and frame.payload[:2] == (2 + WARMUP).to_bytes(2, "little"):
            board.system_reset()
        return False

    with FaultProxy(board.port, Faults(lose=reset_before_run)) as proxy:
        outcome = _run(proxy, tmp_path)
    assert outcome.code == 0, outcome.stderr
    records = outcome.records
    (reset,) = [r for r in records if r["type"] == "event" and r["kind"] == "board_reset"]
    assert reset["repetition"] == 2 and "before repetition 2 began" in reset["message"]
    assert records[-1]["status"] == "ok" and records[-1]["repetitions"] == REPEAT
    assert _wire_tokens(records) == proxy.tokens_passed and len(proxy.tokens_passed) == TOKENS * 6


def test_one_percent_corruption_and_drops_each_way_end_in_an_honest_file(board: Board, tmp_path: Path) -> None:
    # A 95-byte HELLO crosses intact one time in seven and a RUN's end (STATUS, MEM, DONE) one in three:
    # deadlines long enough for the asking again to get through.
    with FaultProxy(board.port, Faults(seed=3, corrupt=0.01, drop=0.01)) as proxy:
        outcome = _run(proxy, tmp_path, hello_s=30, frame_s=20)
    assert outcome.code in (0, 1), outcome.stderr  # finished: the board was asked again, never waited out
    summary = outcome.records[-1]
    assert summary["type"] == "summary" and summary["frames_corrupt"] + summary["frames_lost"] > 0
    assert summary["repetitions"] == REPEAT
    assert sorted(_wire_tokens(outcome.records)) == sorted(proxy.tokens_passed)
    for rep in (r for r in outcome.records if r["type"] == "repetition" and r["valid"]):
        assert rep["tokens_generated"] == TOKENS and rep["matches_reference"]


def test_lost_hello_run_mem_and_done_are_asked_again_and_the_run_stays_valid(board: Board, tmp_path: Path) -> None:
    """Each lost once: the first HELLO, the RUN of repetition 2, the MEM and DONE of repetition 3."""
    lost: list[tuple[str, int]] = []

    def lose(side: str, frame: Frame) -> bool:
        rep = int.from_bytes(frame.payload[:2], "little")
        key = {("board", MsgType.HELLO): ("HELLO", 0), ("host", MsgType.RUN): ("RUN", rep),
               ("board", MsgType.MEM): ("MEM", rep), ("board", MsgType.DONE): ("DONE", rep)}.get((side, frame.type))
        if key is None or key in lost or key[1] != {"HELLO": 0, "RUN": 2 + WARMUP}.get(key[0], 3 + WARMUP):
            return False
        lost.append(key)
        return True

    with FaultProxy(board.port, Faults(lose=lose)) as proxy:
        outcome = _run(proxy, tmp_path)
    assert outcome.code == 0, outcome.stderr
    assert sorted(lost) == [("DONE", 4), ("HELLO", 0), ("MEM", 4), ("RUN", 3)]
    summary = outcome.records[-1]
    assert summary["status"] == "ok" and summary["valid"] and summary["repetitions"] == REPEAT
    assert summary["frames_lost"] == 2  # MEM and DONE: counted on the wire, recovered for the repetition
    assert _wire_tokens(outcome.records) == proxy.tokens_passed and len(proxy.tokens_passed) == TOKENS * 6


def _hello_with(**fields: int) -> Any:
    def rewrite(frame: Frame) -> bytes | None:
        if frame.type != MsgType.HELLO:
            return None
        hello = parse_event(Frame(frame.type, 1, frame.payload))
        assert isinstance(hello, Hello)
        return hello_payload(Hello(**{**hello.__dict__, **fields}))
    return rewrite


def _token_id(token_id: int) -> Any:
    def rewrite(frame: Frame) -> bytes | None:
        if frame.type != MsgType.TOKEN:
            return None
        return frame.payload[:6] + token_id.to_bytes(2, "little") + frame.payload[8:]
    return rewrite


@pytest.mark.parametrize(("rewrite", "field"), [
    (_hello_with(timer_hz=0), "timer_hz"),
    (_hello_with(model_status=17), "model_status"),
    (_token_id(60_000), "token_id"),
])
def test_out_of_range_fields_are_protocol_errors_naming_the_field(
    board: Board, tmp_path: Path, rewrite: Any, field: str
) -> None:
    with FaultProxy(board.port, Faults(rewrite=rewrite)) as proxy:
        outcome = _run(proxy, tmp_path)
    assert outcome.code == 8, outcome.stderr
    (line,) = outcome.stderr.strip().splitlines()
    assert field in line and "internal error" not in line
    if outcome.records:
        assert outcome.records[-2]["type"] == "error" and outcome.records[-1]["type"] == "summary"
