"""The reference pass cache with the real forward pass of the bundled demo model, and the qemu:// port."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
import serial

import profiler.emulator  # noqa: F401 - registers the qemu:// handler, as every run does
from profiler.api import open_model, resolve_model_path
from profiler.models.reference import Reference
from profiler.reference_cache import ReferencePasses, port_fixed_point
from profiler.serial_urls.protocol_qemu import Serial as QemuSerial

PROMPT = (1, 403, 407, 261)


class CountingReference:
    """The real reference pass, counting how often it runs."""

    def __init__(self) -> None:
        self.model, _ = open_model(resolve_model_path("demo"))
        self.calls: list[tuple[int, float, int, bool]] = []

    def __call__(self, prompt: Sequence[int], n: int, temperature: float, seed: int, fixed_point: bool) -> list[int]:
        self.calls.append((n, temperature, seed, fixed_point))
        return Reference(self.model, fixed_point).generate(list(prompt), n, temperature, seed)


@pytest.fixture(scope="module")
def reference() -> CountingReference:
    return CountingReference()


def test_passes_are_computed_once_per_key_and_survive_the_process(tmp_path: Path,
                                                                  reference: CountingReference) -> None:
    reference.calls.clear()
    passes = ReferencePasses("sha-of-demo", reference, tmp_path)
    expected = Reference(reference.model).generate(list(PROMPT), 12, 0.0, 0)
    assert passes(PROMPT, 12, 0.0, 0, False) == expected
    # A later process (a new ReferencePasses on the same directory) reads it back instead of computing.
    assert ReferencePasses("sha-of-demo", reference, tmp_path).tokens(PROMPT, 12, 0.0, 0, False) == expected
    assert len(reference.calls) == 1
    # Every input is part of the key: tokens, seed and temperature, arithmetic, and the model.
    for args, sha in (((PROMPT, 8, 0.0, 0, False), "sha-of-demo"), ((PROMPT, 12, 0.9, 7, False), "sha-of-demo"),
                      ((PROMPT, 12, 0.0, 0, True), "sha-of-demo"), ((PROMPT, 12, 0.0, 0, False), "another-model")):
        ReferencePasses(sha, reference, tmp_path).tokens(*args)
    assert len(reference.calls) == 5 and len(list(tmp_path.glob("*.json"))) == 5
    # A torn entry is computed again and replaced.
    entry = tmp_path / f"{passes.key(PROMPT, 12, 0.0, 0, False)}.json"
    entry.write_text('{"tokens": [1, 2')
    assert ReferencePasses("sha-of-demo", reference, tmp_path).tokens(PROMPT, 12, 0.0, 0, False) == expected
    assert len(reference.calls) == 6 and json.loads(entry.read_text())["tokens"] == expected


def test_prefetch_runs_in_the_background_and_is_awaited_not_repeated(tmp_path: Path,
                                                                     reference: CountingReference) -> None:
    reference.calls.clear()
    passes = ReferencePasses("sha-of-demo", reference, tmp_path)
    passes.prefetch(PROMPT, 16, 0.0, 0, True)
    passes.prefetch(PROMPT, 16, 0.0, 0, True)  # asked twice while in flight: still one pass
    assert passes.tokens(PROMPT, 16, 0.0, 0, True) == Reference(reference.model, True).generate(list(PROMPT), 16,
                                                                                                 0.0, 0)
    assert reference.calls == [(16, 0.0, 0, True)]
    passes.prefetch(PROMPT, 16, 0.0, 0, True)  # cached now: no thread, no pass
    assert len(reference.calls) == 1


def test_the_prefetch_guesses_the_ports_arithmetic() -> None:
    assert port_fixed_point("riscv-virt") and port_fixed_point("esp32c3")
    assert not port_fixed_point("stm32f4") and not port_fixed_point("no-such-port")


def test_qemu_url_is_pyserials_socket_port_round_trip() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def echo() -> None:
        connection, _ = server.accept()
        with connection:
            connection.sendall(connection.recv(64).upper())

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    link = serial.serial_for_url(f"qemu://127.0.0.1:{port}", timeout=5)
    assert isinstance(link, QemuSerial)
    link.write(b"hello board")
    assert link.read(11) == b"HELLO BOARD"
    link.close()
    assert not link.is_open
    thread.join(5)
    server.close()
    with pytest.raises(serial.SerialException):
        serial.serial_for_url(f"qemu://127.0.0.1:{port}", timeout=1)  # refused, as socket:// is
