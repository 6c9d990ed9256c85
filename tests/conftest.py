"""Shared fixtures: firmware built from this tree, in a cache private to the test session."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _private_cache_and_cwd(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Tests build the firmware from this tree into their own cache, never the user's, and
    # run from a scratch directory so default outputs (results/, logs/) never land in the tree.
    os.environ["TINY_PROFILER_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.chdir(tmp_path_factory.mktemp("cwd"))


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
    from platforms.stm32 import Stm32Adapter
    from profiler.firmware import ensure_firmware

    return ensure_firmware("stm32f4", Stm32Adapter.toolchain)
