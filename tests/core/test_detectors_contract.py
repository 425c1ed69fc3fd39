"""One contract suite for every registered detector (River's check_estimator, our way).

A detector added to ``DETECTORS`` gets all of these for free: state round trip, score before
learn, no side effects in ``expect``, determinism, no mutation of inputs, strict state import,
configuration errors, and a bound on the per-key state size.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pytest

from spikedetect.core.config import DetectorConfig, DetectorSpec
from spikedetect.core.detector import Detector
from spikedetect.core.detectors import DETECTORS, Baseline, Expectation, make_baseline
from spikedetect.core.detectors.base import FLOOR, LEARNED
from spikedetect.core.errors import ConfigError, StateError
from spikedetect.core.evidence import EVIDENCE_COLUMNS
from spikedetect.core.windows import DAY_MS

W = 60_000
ROWS = 6  # row 0 is the parent of the others
MAX_KEY_STATE_BYTES = 8 * 1024
NAMES = sorted(DETECTORS)


def series(n_windows: int, seed: int = 7) -> Iterator[tuple[int, np.ndarray]]:
    """(window start, counts per row): a daily cycle, different rates per row, one row silent."""
    rng = np.random.default_rng(seed)
    rates = np.array([0.0, 6.0, 3.0, 1.0, 0.3, 0.0])
    for i in range(n_windows):
        ws = i * W
        cycle = 1.0 + 0.6 * np.sin(2 * np.pi * (ws % DAY_MS) / DAY_MS)
        counts = rng.poisson(rates * cycle).astype(np.float64)
        counts[0] = counts[1:].sum()
        yield ws, counts


def train(bank: Baseline, n_windows: int, seed: int = 7) -> None:
    rows = np.arange(bank.size)
    parent = np.where(rows == 0, -1, 0)
    for ws, x in series(n_windows, seed):
        e = bank.expect(rows, ws)
        parent_obs = np.where(parent >= 0, x[np.maximum(parent, 0)], np.nan)
        bank.learn(rows, ws, x, e, parent_obs)


def fresh(name: str) -> Baseline:
    bank = make_baseline(DetectorSpec(name), W)
    for _ in range(ROWS):
        bank.add_row()
    return bank


_TRAINED: dict[str, Baseline] = {}


def trained(name: str) -> Baseline:
    """A bank that has learned a little over a day of one-minute windows (a copy per call)."""
    if name not in _TRAINED:
        bank = fresh(name)
        train(bank, DAY_MS // W + 120)
        _TRAINED[name] = bank
    return copy.deepcopy(_TRAINED[name])


def exports(bank: Baseline) -> list[bytes]:
    return [orjson.dumps(bank.export_row(r)) for r in range(bank.size)]


def same_expectation(a: Expectation, b: Expectation) -> bool:
    return (
        np.array_equal(a.mean, b.mean) and np.array_equal(a.phi, b.phi) and np.array_equal(a.source, b.source)
    )


PROBE_WS = [DAY_MS + 120 * W, DAY_MS + 121 * W, DAY_MS + 6 * 3_600_000, 3 * DAY_MS + 17 * W]


@pytest.fixture(params=NAMES)
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_registry_names_match_classes() -> None:
    assert NAMES  # at least one detector
    for key, cls in DETECTORS.items():
        assert cls.name == key
        assert make_baseline(DetectorSpec(key), W).name == key


def test_trained_bank_has_learned(name: str) -> None:
    # guards the other tests: they must run on a bank past its cold start
    bank = trained(name)
    rows = np.arange(bank.size)
    assert bank.warm(rows)[1:4].all()
    if name == "seasonal":
        assert (bank.expect(rows, PROBE_WS[0]).source[1:4] == LEARNED).all()


def test_export_import_round_trip(name: str) -> None:
    bank = trained(name)
    rows = np.arange(bank.size)
    copy_ = fresh(name)
    for r in range(bank.size):
        state = orjson.loads(orjson.dumps(bank.export_row(r)))  # through JSON, as stored
        copy_.import_row(r, state)
    assert exports(copy_) == exports(bank)
    for ws in PROBE_WS:
        assert same_expectation(copy_.expect(rows, ws), bank.expect(rows, ws))
    np.testing.assert_array_equal(copy_.shares(rows), bank.shares(rows))
    np.testing.assert_array_equal(copy_.warm(rows), bank.warm(rows))
    # and both go on learning identically
    x = np.array([30.0, 20.0, 5.0, 3.0, 2.0, 0.0])
    for b in (bank, copy_):
        b.learn(rows, PROBE_WS[0], x, b.expect(rows, PROBE_WS[0]), np.array([np.nan, *[30.0] * 5]))
    assert exports(copy_) == exports(bank)


def test_expect_has_no_side_effects(name: str) -> None:
    bank = trained(name)
    rows = np.arange(bank.size)
    before = exports(bank)
    for ws in PROBE_WS:
        first = bank.expect(rows, ws)
        second = bank.expect(rows, ws)
        assert same_expectation(first, second)
        bank.shares(rows)
        bank.warm(rows)
    assert exports(bank) == before


def test_score_before_any_learning(name: str) -> None:
    bank = fresh(name)
    rows = np.arange(bank.size)
    e = bank.expect(rows, 0)
    assert (e.source == FLOOR).all()
    np.testing.assert_array_equal(e.mean, np.full(ROWS, bank.floor_mean))
    assert (e.phi >= 1.0).all() and np.isfinite(e.phi).all()
    assert not bank.warm(rows).any()
    cold = exports(bank)
    bank.learn(rows, 0, np.full(ROWS, 40.0), e, np.full(ROWS, np.nan))
    assert exports(bank) != cold
    assert (bank.expect(rows, W).mean > bank.floor_mean).all()


def test_deterministic(name: str) -> None:
    a, b = fresh(name), fresh(name)
    train(a, 600, seed=3)
    train(b, 600, seed=3)
    assert exports(a) == exports(b)
    rows = np.arange(ROWS)
    assert same_expectation(a.expect(rows, 600 * W), b.expect(rows, 600 * W))
    c = fresh(name)
    train(c, 600, seed=4)
    assert exports(c) != exports(a)  # the state does depend on the data


def test_learn_does_not_mutate_inputs(name: str) -> None:
    bank = trained(name)
    rows = np.array([1, 2, 3, 5])
    ws = PROBE_WS[0]
    e = bank.expect(rows, ws)
    observed = np.array([9.0, 0.0, 2.0, 1.0])
    parent_obs = np.array([12.0, 12.0, 12.0, np.nan])
    saved = {
        "rows": rows.copy(),
        "observed": observed.copy(),
        "parent": parent_obs.copy(),
        "mean": e.mean.copy(),
        "phi": e.phi.copy(),
        "source": e.source.copy(),
        "aux": {k: v.copy() for k, v in e.aux.items()},
    }
    bank.learn(rows, ws, observed, e, parent_obs)
    np.testing.assert_array_equal(rows, saved["rows"])
    np.testing.assert_array_equal(observed, saved["observed"])
    np.testing.assert_array_equal(parent_obs, saved["parent"])
    np.testing.assert_array_equal(e.mean, saved["mean"])
    np.testing.assert_array_equal(e.phi, saved["phi"])
    np.testing.assert_array_equal(e.source, saved["source"])
    assert e.aux.keys() == saved["aux"].keys()
    for k, v in e.aux.items():
        np.testing.assert_array_equal(v, saved["aux"][k])


def test_learn_touches_only_its_rows(name: str) -> None:
    bank = trained(name)
    before = exports(bank)
    rows = np.array([2])
    bank.learn(rows, PROBE_WS[0], np.array([50.0]), bank.expect(rows, PROBE_WS[0]), np.array([60.0]))
    after = exports(bank)
    assert after[2] != before[2]
    assert [a for i, a in enumerate(after) if i != 2] == [b for i, b in enumerate(before) if i != 2]


def test_move_and_pop_rows(name: str) -> None:
    bank = trained(name)
    before = exports(bank)
    bank.move_row(5, 1)
    assert exports(bank)[1] == before[5]
    bank.pop_row()
    assert bank.size == ROWS - 1
    row = bank.add_row()  # a re-used slot starts cold
    assert row == ROWS - 1
    assert exports(bank)[row] == exports(fresh(name))[0]


def malformed_states(name: str, good: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    cls = DETECTORS[name]
    out: list[tuple[str, dict[str, Any]]] = []
    for col, (shape, _, _) in cls.COLUMNS.items():
        missing = {k: v for k, v in good.items() if k != col}
        out.append((f"missing {col}", missing))
        wrong = [1.0, 2.0] if shape == () else [[1.0] * (shape[0] + 1)]
        out.append((f"wrong shape {col}", {**good, col: wrong}))
        if shape:
            out.append((f"short {col}", {**good, col: [1.0] * (shape[0] - 1)}))
            out.append((f"ragged {col}", {**good, col: [[1.0], [1.0, 2.0]]}))
        bad_value = float("nan")
        out.append((f"nan {col}", {**good, col: ([bad_value] * shape[0]) if shape else bad_value}))
        out.append(
            (
                f"inf {col}",
                {**good, col: ([1.0] * (shape[0] - 1) + [float("inf")]) if shape else float("inf")},
            )
        )
        out.append((f"text {col}", {**good, col: "abc"}))
        out.append((f"null {col}", {**good, col: None}))
        out.append((f"object {col}", {**good, col: {"x": 1}}))
    if name == "ewma":
        for blob in ("mean", "var"):
            raw = good[blob]
            out.append((f"missing {blob}", {k: v for k, v in good.items() if k != blob}))
            out.append((f"not base64 {blob}", {**good, blob: "!!not base64!!"}))
            out.append((f"short {blob}", {**good, blob: raw[:-8]}))
            out.append((f"long {blob}", {**good, blob: raw + "AAAAAAAAAAA="}))
            out.append((f"int {blob}", {**good, blob: 5}))
        out.append(("swapped blobs", {**good, "mean": good["var"], "var": good["mean"]}))
    out.append(("not a mapping", [1, 2, 3]))  # type: ignore[list-item]
    return out


def test_import_rejects_malformed_state_and_changes_nothing(name: str) -> None:
    bank = trained(name)
    donor = fresh(name)  # a state unlike every row of bank, in every column
    train(donor, 300, seed=11)
    good = orjson.loads(orjson.dumps(donor.export_row(2)))
    # the week profile's noise learns only once a week slot is warm (weeks of data): still initial here
    same = {k for k in good if k not in EVIDENCE_COLUMNS and good[k] == bank.export_row(3)[k]}
    assert same <= {"wphi", "walpha", "wdisp_n"}
    cases = malformed_states(name, good)
    assert len(cases) > 10
    for label, state in cases:
        before = exports(bank)
        with pytest.raises(StateError):
            bank.import_row(3, state)
            pytest.fail(f"accepted: {label}")
        assert exports(bank) == before, f"row changed by a rejected import: {label}"
    bank.import_row(3, good)  # the good one still goes in
    assert exports(bank)[3] == exports(donor)[2]


def test_unknown_detector_and_parameters(name: str) -> None:
    with pytest.raises(ConfigError, match="unknown detector"):
        make_baseline(DetectorSpec("no-such-detector"), W)
    with pytest.raises(ConfigError, match="unknown detector"):
        Detector(DetectorConfig(detector=DetectorSpec("no-such-detector")))
    cls = DETECTORS[name]
    with pytest.raises(ConfigError, match="no parameter"):
        cls(W, {"no_such_param": 1.0})
    with pytest.raises(ConfigError, match="no parameter"):
        Detector(DetectorConfig(detector=DetectorSpec.parse(f"{name}:no_such_param=1")))
    some = sorted(cls.PARAMS)[0]
    for bad in ("fast", True, float("nan"), None):
        with pytest.raises(ConfigError):
            cls(W, {some: bad})
    # every declared parameter is accepted at its default value
    assert cls(W, dict(cls.PARAMS)).params == {k: float(v) for k, v in cls.PARAMS.items()}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("seasonal:half_life_days=0", "half_life_days"),
        ("seasonal:floor_mean=-1", "floor_mean"),
        ("seasonal:phi_prior=0.5", "phi_prior"),
        ("ewma:fading_factor=0", "fading_factor"),
        ("ewma:fading_factor=1.5", "fading_factor"),
        ("ewma:floor_mean=0", "floor_mean"),
    ],
)
def test_parameters_out_of_range(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_baseline(DetectorSpec.parse(spec), W)


def test_evidence_columns_are_checked_but_may_be_missing(name: str) -> None:
    """State written before the evidence ring existed loads with a fresh ring; a bad one is refused."""
    bank = trained(name)
    good = orjson.loads(orjson.dumps(bank.export_row(2)))
    old = {k: v for k, v in good.items() if k not in EVIDENCE_COLUMNS}
    bank.import_row(3, old)
    assert bank.export_row(3) == {**good, **{k: fresh(name).export_row(0)[k] for k in EVIDENCE_COLUMNS}}
    for col in EVIDENCE_COLUMNS:
        with pytest.raises(StateError):
            bank.import_row(3, {**good, col: "abc"})


def test_key_state_is_small(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    bank = trained(name)
    sizes = [len(orjson.dumps(bank.export_row(r))) for r in range(bank.size)]
    with capsys.disabled():
        print(f"\n[{name}] per-key state: max {max(sizes)} bytes (limit {MAX_KEY_STATE_BYTES})")
    assert max(sizes) <= MAX_KEY_STATE_BYTES
