"""Shared fixtures: firmware built from this tree, in a cache private to the test session; every session
file a test writes is validated against docs/jsonl.schema.json when the test ends."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.jsonl_schema import check_tree

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _private_cache_and_cwd(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Tests build the firmware from this tree into their own cache, never the user's, and
    # run from a scratch directory so default outputs (results/, logs/) never land in the tree.
    os.environ["TINY_PROFILER_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.chdir(tmp_path_factory.mktemp("cwd"))


_VALIDATED: set[Path] = set()


@pytest.fixture(autouse=True)
def _session_files_match_the_schema(request: pytest.FixtureRequest,
                                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # After each test, every new session file under the test session's temporary root (tmp_path, mktemp'd
    # directories, the scratch working directory) must validate; a failure is this test's teardown error.
    yield
    problems = check_tree(tmp_path_factory.getbasetemp(), _VALIDATED)
    assert not problems, "session files break docs/jsonl.schema.json:\n" + "\n".join(problems[:20])


@pytest.fixture(scope="session")
def host_tools(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The firmware core built for the host: tp_protocol_test and tp_generate."""
    build = tmp_path_factory.mktemp("host-build")
    subprocess.run(["make", "-s", "-C", str(ROOT / "firmware"), "host", f"BUILD_DIR={build}"], check=True)
    return build


@pytest.fixture(scope="session", params=["rv32", "portable"])
def host_tools_fixed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The core built for the host with the fixed-point forward pass (FIXED_POINT=1), once with the
    RV32 kernels (KERNELS=rv32, core/matmul_fx_rv32.c) and once with the portable ones (KERNELS=portable)."""
    build = tmp_path_factory.mktemp(f"host-build-fixed-{request.param}")
    subprocess.run(["make", "-s", "-C", str(ROOT / "firmware"), "host", f"BUILD_DIR={build}", "FIXED_POINT=1",
                    f"KERNELS={request.param}"], check=True)
    return build


@pytest.fixture(scope="session")
def firmware_image():  # type: ignore[no-untyped-def]
    """The STM32F4 firmware image for the current sources."""
    from profiler.firmware import ensure_firmware

    return ensure_firmware("stm32f4")
