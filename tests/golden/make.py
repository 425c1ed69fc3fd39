"""The golden files of ``tests/test_golden.py``: what ``spikedetect replay`` writes, byte for byte.

Two inputs: the bundled sample (``src/spikedetect/data/sample-reports.jsonl.gz``) and the
scenario suite (``spikedetect simulate --seed 1 --peak-scale 0.25``, every outage kind and
trap). For each, the outage incident events (``--out``) and the region events
(``--regions-out``) are kept here gzipped (``mtime`` 0, so the same bytes give the same file).

A change meant to alter detection (a detector, scoring, grouping) changes them legitimately;
regenerate them, review ``git diff --stat tests/golden`` and commit them with that change:

    .venv/bin/python -m tests.golden.make

A restructuring must leave them untouched (the test fails on the first differing line).
"""

from __future__ import annotations

import gzip
import sys
import tempfile
from importlib import resources
from pathlib import Path

from click.testing import CliRunner

from spikedetect.cli import main

HERE = Path(__file__).parent
CASES = ("sample", "suite")
STREAMS = ("incidents", "regions")


def golden_path(case: str, stream: str) -> Path:
    return HERE / f"{case}-{stream}.jsonl.gz"


def _cli(*args: str) -> None:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    if result.exit_code != 0:
        raise RuntimeError(f"spikedetect {' '.join(args)} exited {result.exit_code}: {result.output}")


def replay_bytes(case: str, tmp: Path) -> dict[str, bytes]:
    """Run ``spikedetect replay`` on one case; returns the bytes of each stream."""
    if case == "sample":
        source = str(resources.files("spikedetect") / "data" / "sample-reports.jsonl.gz")
    elif case == "suite":
        source = str(tmp / "suite.jsonl")
        _cli("simulate", "--seed", "1", "--peak-scale", "0.25", "--out", source, "--no-progress")
    else:
        raise ValueError(f"unknown golden case {case!r}")
    out, regions = tmp / f"{case}-incidents.jsonl", tmp / f"{case}-regions.jsonl"
    _cli("replay", source, "--out", str(out), "--regions-out", str(regions), "--no-progress")
    return {"incidents": out.read_bytes(), "regions": regions.read_bytes()}


def read_golden(case: str, stream: str) -> bytes:
    return gzip.decompress(golden_path(case, stream).read_bytes())


def write_golden(case: str, stream: str, data: bytes) -> None:
    golden_path(case, stream).write_bytes(gzip.compress(data, compresslevel=9, mtime=0))


def main_make(argv: list[str]) -> None:
    for case in argv or CASES:
        with tempfile.TemporaryDirectory() as tmp:
            got = replay_bytes(case, Path(tmp))
        for stream, data in got.items():
            write_golden(case, stream, data)
            print(f"{golden_path(case, stream)}: {len(data.splitlines())} events")


if __name__ == "__main__":
    main_make(sys.argv[1:])
