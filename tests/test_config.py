"""tiny-profiler.toml through the real CLI: the file sets defaults, the environment overrides the file, an
option overrides both; mistakes are one line; docs/configuration.md names every variable the code reads."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from tests.cli import CLI
from tests.processes import free_port

ROOT = Path(__file__).resolve().parent.parent


def _cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("TINY_PROFILER_PUSHGATEWAY", "TINY_PROFILER_CONFIG")}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, env={**clean, **(env or {})},
                          timeout=120, check=False)


def _gateway(result: subprocess.CompletedProcess[str]) -> str:
    rows = json.loads(result.stdout)["checks"]
    return next(r["detail"] for r in rows if r["group"] == "export" and r["name"] == "pushgateway")


def test_file_then_environment_then_option(tmp_path: Path) -> None:
    file_url, env_url = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    (tmp_path / "tiny-profiler.toml").write_text(
        f'[run]\nmodel = "from-the-file"\ntokens = 4\n\n[export]\npushgateway = "{file_url}"\n')
    # The file's model is used (and refused: no such model); an option replaces it.
    from_file = _cli(tmp_path, "run", "--device", "stm32")
    assert from_file.returncode == 4 and "model from-the-file not found" in from_file.stderr, from_file.stderr
    from_option = _cli(tmp_path, "run", "--device", "stm32", "--model", "from-the-option")
    assert from_option.returncode == 4 and "model from-the-option not found" in from_option.stderr
    # [export] reaches every command that has the option; the environment variable wins over the file.
    assert _gateway(_cli(tmp_path, "doctor", "--json")).startswith(file_url)
    assert _gateway(_cli(tmp_path, "doctor", "--json", env={"TINY_PROFILER_PUSHGATEWAY": env_url})).startswith(env_url)
    # --config and $TINY_PROFILER_CONFIG name a file elsewhere; its relative paths are relative to it.
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "lab.toml").write_text('[run]\nquality_text = "texts/story.txt"\n')
    given = _cli(tmp_path, f"--config={other / 'lab.toml'}", "run", "--device", "stm32", "--model", "demo")
    assert given.returncode == 3 and f"cannot read --quality-text {other / 'texts' / 'story.txt'}" in given.stderr
    from_env = _cli(tmp_path, "run", "--device", "stm32", "--model", "demo",
                    env={"TINY_PROFILER_CONFIG": str(other / "lab.toml")})
    assert from_env.returncode == 3 and str(other / "texts" / "story.txt") in from_env.stderr, from_env.stderr


def test_config_mistakes_are_one_line_exit_3(tmp_path: Path) -> None:
    for text, needle in (('[run]\ntokenz = 3\n', "[run] has unknown key(s) tokenz; known: board"),
                         ('[run]\ntokens = "many"\n', "[run] tokens must be int, not 'many'"),
                         ('[nightly]\ntokens = 3\n', "[nightly] is not one of the tables bench, compare"),
                         ('[run\n', "is not valid TOML")):
        (tmp_path / "tiny-profiler.toml").write_text(text)
        result = _cli(tmp_path, "run", "--device", "stm32", "--model", "demo")
        assert result.returncode == 3, result.stderr
        assert result.stderr.count("\n") == 1 and needle in result.stderr, result.stderr
    missing = _cli(tmp_path, "--config", "absent.toml", "doctor")
    assert missing.returncode == 3 and "config file absent.toml not found" in missing.stderr


def test_every_environment_variable_the_code_reads_is_documented() -> None:
    documented = (ROOT / "docs" / "configuration.md").read_text()
    read = set()
    # tests/fakes/ are stand-ins for flashers, with their own private variables.
    for folder in ("profiler", "platforms", "scripts", "benchmarks", "tests"):
        for path in (p for p in (ROOT / folder).rglob("*.py") if "fakes" not in p.parts):
            text = path.read_text()
            read |= set(re.findall(r"environ(?:\.get)?[\[(]\s*\"([A-Z][A-Z0-9_]+)\"", text))
            read |= set(re.findall(r"\"(TINY_PROFILER_[A-Z0-9_]+)\"", text))
    read -= {"PATH", "COLUMNS"}
    assert {"TINY_PROFILER_PUSHGATEWAY", "TINY_PROFILER_CACHE", "TINY_PROFILER_LOCK_DIR"} <= read
    undocumented = sorted(v for v in read if f"`{v}`" not in documented)
    assert not undocumented, f"add to docs/configuration.md: {undocumented}"
