"""The package type-checks under ``mypy --strict`` (configured in pyproject: files = src/spikedetect):
the core, both shells and the CLIs."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import spikedetect.core

REPO = Path(spikedetect.core.__file__).resolve().parents[3]


def test_mypy_is_configured_strict_on_the_whole_package() -> None:
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]
    assert cfg["strict"] is True
    assert cfg["files"] == ["src/spikedetect"]
    assert not [o for o in cfg.get("overrides", []) if str(o.get("module", "")).startswith("spikedetect")]


def test_mypy_strict_on_the_package() -> None:
    # a cold cache takes ~40 s on this machine; a warm one a few seconds
    proc = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success" in proc.stdout
