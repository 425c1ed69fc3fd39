"""The core type-checks under ``mypy --strict`` (configured in pyproject: files = src/spikedetect/core)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import spikedetect.core

REPO = Path(spikedetect.core.__file__).resolve().parents[3]


def test_mypy_is_configured_strict_on_the_core() -> None:
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]
    assert cfg["strict"] is True
    assert "src/spikedetect/core" in cfg["files"]


def test_mypy_strict_on_core() -> None:
    # a cold cache takes ~10 s on this machine; a warm one well under a second
    proc = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success" in proc.stdout
