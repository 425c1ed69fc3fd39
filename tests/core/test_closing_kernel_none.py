"""The closing kernel's entry points refuse None for their state objects (a TypeError), where a
typed argument without ``not None`` would let None through and crash the worker on its first
attribute read. Run in a child process: a crash fails the test instead of ending the run."""

from __future__ import annotations

import subprocess
import sys

import pytest

from spikedetect.kernel import load_compiled

KERNEL = load_compiled("_closing")
pytestmark = pytest.mark.skipif(KERNEL is None, reason="the compiled closing loops are not built (no C compiler)")

# entry point -> the state class it takes, and its arguments: "o" None, "0" the number 0 (C numbers
# are converted before the state's type is checked, so they must convert)
ENTRIES = {
    "composition_window": ("CompositionWindow", "ooo"),
    "composition_close": ("CompositionClose", "ooooo0o0"),
    "composition_front": ("CompositionArrays", "ooo"),
    "composition_back": ("CompositionArrays", "ooo0"),
    "fused_score_first": ("SeasonalViews", "ooooooo0ooo"),
    "fused_score_second": ("SeasonalViews", "oooooo0"),
    "fused_keep": ("SeasonalViews", "oo"),
    "fused_learn": ("SeasonalViews", "oooooooooo00o0"),
    "leaf_frame": ("LeafIndex", "ooooooooo"),
}

CHILD = """
import sys
from spikedetect.kernel import load_compiled
k = load_compiled("_closing")
name, kinds = sys.argv[1], sys.argv[2]
try:
    getattr(k, name)(*(None if c == "o" else 0 for c in kinds))
except TypeError as exc:
    print("TypeError", exc)
"""


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_an_entry_point_refuses_none_for_its_state(name: str) -> None:
    cls, kinds = ENTRIES[name]
    assert hasattr(KERNEL, name) and hasattr(KERNEL, cls)
    res = subprocess.run([sys.executable, "-c", CHILD, name, kinds], capture_output=True, text=True,
                         timeout=60, check=False)
    assert res.returncode == 0, f"{name}(None, ...) crashed the process (exit {res.returncode}): {res.stderr[-500:]}"
    assert res.stdout.startswith("TypeError") and cls in res.stdout, res.stdout
