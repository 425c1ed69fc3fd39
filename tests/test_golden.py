"""Golden files: ``spikedetect replay`` writes the same bytes as recorded, on the bundled sample
and on the scenario suite (outage incidents and region events).

A detector change that alters them on purpose regenerates them with
``.venv/bin/python -m tests.golden.make`` (see tests/golden/make.py); any other change
(restructuring, speed) must leave them as they are.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.golden.make import CASES, STREAMS, read_golden, replay_bytes

pytestmark = pytest.mark.timeout(300)


def first_difference(want: bytes, got: bytes) -> str:
    a, b = want.splitlines(), got.splitlines()
    for n, (x, y) in enumerate(zip(a, b, strict=False), 1):
        if x != y:
            return f"line {n} differs:\n  golden: {x[:300]!r}\n  now:    {y[:300]!r}"
    return f"golden has {len(a)} lines, now {len(b)}"


@pytest.mark.parametrize("case", CASES)
def test_replay_bytes_match_golden(case: str, tmp_path: Path) -> None:
    got = replay_bytes(case, tmp_path)
    for stream in STREAMS:
        want = read_golden(case, stream)
        assert want.count(b"\n") > 10, f"golden {case}-{stream} is nearly empty"
        assert got[stream] == want, (
            f"{case}-{stream}: {first_difference(want, got[stream])}\n"
            "(a deliberate detector change: .venv/bin/python -m tests.golden.make)"
        )
