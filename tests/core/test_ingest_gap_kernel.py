"""The ingest-gap detector's compiled quiet pass (``gap_quiet_learn``, ``_closing_sums.pxi``)
against its pure-Python steps: two detectors fed the same windows - one over leaf frames with the
compiled closing loops, one walking the leaf dicts in pure Python - give the same events and the
same state (``repr``: shares bit for bit, in the same order) window after window, while sources go
silent and come back, new sources join, a service's count model is not judged, a source is named
``"*"``, a service loses its global key, and shares start cold or warm (more than ``MAX_SOURCES``
of them too)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.core.kernels import using_kernel
from tests.core.test_leaves import MODULES  # (every module's kernel switched: the pure world)

from spikedetect.core.detectors import SeasonalBaseline
from spikedetect.core.ingest_gap import ALL, IngestGapDetector, ServiceGaps
from spikedetect.core.keyspace import Keyspace
from spikedetect.core.leaf_window import LeafWindow
from spikedetect.core.leaves import LeafTable
from spikedetect.kernel import load_compiled

KERNEL = load_compiled("_closing")
needs_kernel = pytest.mark.skipif(KERNEL is None, reason="the compiled closing loops are not built (no C compiler)")
SERVICES = ["ig", "fb", "wa"]
SOURCES = ["app", "web", "ios", "unknown", ALL]
REGIONS = ["US", "US/CA", "DE"]

service_window = st.tuples(
    st.dictionaries(st.tuples(st.sampled_from(REGIONS), st.sampled_from(["c0", "c1"]),
                              st.sampled_from(SOURCES[:3] + SOURCES[:3] + SOURCES[3:])),
                    st.sampled_from([1, 2, 7, 40, 300, 5000]), max_size=8),
    st.booleans() | st.just(True),  # its count model judged
    st.booleans() | st.just(False))  # its global key gone this window
warm_state = st.one_of(st.none(), st.tuples(
    st.dictionaries(st.sampled_from(SOURCES + [f"s{i}" for i in range(8)]), st.sampled_from([0.001, 0.04, 0.3, 0.6]),
                    min_size=1, max_size=10),
    st.sampled_from([0.0, 150.0, 5000.0, 1e9])))


def _run(kernel: Any, starts: list[Any], windows: list[list[Any]], mu: float = 40.0, phi: float = 1.5) -> list[str]:
    det = IngestGapDetector(60_000, {"params_hash": "x"})
    for svc, start in zip(SERVICES, starts, strict=True):
        if start is not None:
            det.services[svc] = ServiceGaps(dict(start[0]), start[1])
    ks, table, out = Keyspace(SeasonalBaseline(60_000)), LeafTable(), []
    for w, per_window in enumerate(windows):
        with using_kernel(MODULES, kernel):
            per_service = {svc: leaf for svc, (leaf, _, _) in zip(SERVICES, per_window, strict=False) if leaf}
            window = LeafWindow.of(table, ks, per_service) if kernel is not None else LeafWindow(per_service)
            assert (window.frame is not None) == (kernel is not None)
            index = {(svc, ALL): i for i, svc in enumerate(SERVICES)
                     if not (i < len(per_window) and per_window[i][2])}
            observed = np.array([float(sum(per_service.get(svc, {}).values())) for svc in SERVICES])
            judged = np.array([i >= len(per_window) or per_window[i][1] for i in range(len(SERVICES))])
            args = (index, observed, np.full(3, mu), np.full(3, phi), judged, list(per_service))
            events = det.close_window(w * 60_000, window, *args)
        out.append(repr(events) + repr(det.to_dict()))
    return out


@needs_kernel
@settings(max_examples=300, deadline=None)
@given(st.lists(warm_state, min_size=3, max_size=3), st.lists(st.lists(service_window, max_size=3), min_size=1,
                                                              max_size=30))
def test_the_compiled_quiet_pass_is_the_python_steps(starts: list[Any], windows: list[list[Any]]) -> None:
    assert _run(KERNEL, starts, windows) == _run(None, starts, windows)


@needs_kernel
@settings(max_examples=300, deadline=None)
@given(st.lists(warm_state, min_size=3, max_size=3), st.lists(st.lists(service_window, max_size=3), min_size=1,
                                                              max_size=30),
       st.sampled_from([0.0, 0.5, 3.0, 12.0, 40.0, 400.0]), st.sampled_from([1.0, 1.00005, 1.3, 4.0, 40.0]))
def test_runs_that_go_on_or_end_in_the_compiled_pass_are_the_python_steps(
        starts: list[Any], windows: list[list[Any]], mu: float, phi: float) -> None:
    """Expectations low and high, overdispersion at and above one: runs that start, go on for
    many windows or end without turning silent (the compiled pass), and those that do (Python)."""
    assert _run(KERNEL, starts, windows, mu, phi) == _run(None, starts, windows, mu, phi)


def _count_left(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Per window from now on, how many services the compiled pass left to the Python steps."""
    left: list[int] = []
    call = KERNEL.gap_quiet_learn

    def counted(order: list[str], *a: Any) -> list[str]:
        rest: list[str] = call(order, *a)
        left.append(len(rest))
        return rest
    monkeypatch.setattr(KERNEL, "gap_quiet_learn", counted)
    return left


@needs_kernel
def test_quiet_services_learn_in_the_kernel_and_a_silent_source_opens_a_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Warm shares, then "web" silent (a gap opens and closes), then quiet again: the kernel
    handled the quiet windows (the Python steps saw only the others), the same events and state."""
    normal = [({("US", "c0", "app"): 60, ("US", "c1", "web"): 30, ("DE", "c0", "ios"): 5}, True, False)]
    silent = [({("US", "c0", "app"): 60, ("DE", "c0", "ios"): 5}, True, False)]
    windows = [normal] * 30 + [silent] * 6 + [normal] * 10
    left = _count_left(monkeypatch)
    got = _run(KERNEL, [None, None, None], windows)
    assert got == _run(None, [None, None, None], windows)
    assert len(left) == len(windows) and left.count(0) > 30 and 0 < sum(left) < len(windows)
    assert '"opened"' in "".join(got) or "type='opened'" in "".join(got)


@needs_kernel
def test_silent_runs_below_the_gap_score_go_on_in_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """A low expectation: "web" and then everything silent for many windows without a gap, then
    silent long enough to open one, then back: the kernel walked the runs until one turned silent,
    the same events and state as the Python steps."""
    normal = [({("US", "c0", "app"): 60, ("US", "c1", "web"): 30}, True, False)]
    windows = [normal] * 30 + [[({("US", "c0", "app"): 60}, True, False)]] * 12 + [[]] * 30 + [normal] * 5
    left = _count_left(monkeypatch)
    got = _run(KERNEL, [None, None, None], windows, 1.0, 1.3)
    assert got == _run(None, [None, None, None], windows, 1.0, 1.3)
    assert "type='opened'" in "".join(got) and left[30:42].count(0) == 12 and 0 < sum(left) < 20, left


@needs_kernel
def test_more_shares_than_max_sources_are_cut_as_python_cuts() -> None:
    """Shares loaded with more than ``MAX_SOURCES`` sources (cold, warm; every reporting source
    among them): trimmed after the window's learning, as the Python steps trim them."""
    many = {f"s{i}": 0.01 * (i + 1) for i in range(8)} | {"app": 0.3, "web": 0.2}
    for learned in (0.0, 5000.0):
        windows = [[({("US", "c0", "app"): 60, ("US", "c1", "web"): 30}, True, False)]] * 3
        assert _run(KERNEL, [(many, learned), None, None], windows) == _run(None, [(many, learned), None, None], windows)
