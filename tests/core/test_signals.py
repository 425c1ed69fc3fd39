"""Composition shifts and ingest gaps (issue 18), driven window by window on synthetic counts."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from spikedetect.core import composition as comp
from spikedetect.core.composition import CompositionDetector
from spikedetect.core.ingest_gap import IngestGapDetector, zero_log_prob
from spikedetect.core.leaf_window import LeafWindow
from spikedetect.core.signal_events import SignalEvent

W = 60_000
DET = {"name": "seasonal", "params_hash": "abc"}
KEYS = [("ig", "*"), ("ig", "US"), ("ig", "US/CA")]
INDEX = {sk: i for i, sk in enumerate(KEYS)}
CATS = ("direct_messages", "feed", "login", "server_connection", "profile", "notifications", "other")
NORMAL = np.array([0.20, 0.25, 0.15, 0.03, 0.11, 0.10, 0.16])


def shifted(base: np.ndarray, cat: int, share: float) -> np.ndarray:
    """``base`` with category ``cat`` at ``share``, the others scaled down proportionally."""
    out = base * (1 - share) / (1 - base[cat])
    out[cat] = share
    return out


def run_composition(n_windows: int, total: float, mix_at, seed: int = 1, blocked_at=lambda i: False,
                    det: CompositionDetector | None = None, start: int = 0) -> tuple[CompositionDetector, list[SignalEvent]]:
    """US/CA gets all of the key's reports; every key's total is Poisson(total) (drawn, so normal)."""
    rng = np.random.default_rng(seed)
    det = det or CompositionDetector(W, DET)
    events: list[SignalEvent] = []
    for i in range(start, start + n_windows):
        n = rng.poisson(total)
        counts = rng.multinomial(n, mix_at(i))
        leaf = {("US/CA/LA", c, "app"): float(k) for c, k in zip(CATS, counts, strict=True) if k}
        expected = np.full(len(KEYS), float(total))
        blocked = np.full(len(KEYS), bool(blocked_at(i)))
        events += det.close_window(i * W, LeafWindow({"ig": leaf}), KEYS, INDEX, expected, blocked)
    return det, events


SHIFT_AT, SHIFT_LEN = 600, 30


def step(i: int) -> np.ndarray:
    return shifted(NORMAL, 3, 0.20) if SHIFT_AT <= i < SHIFT_AT + SHIFT_LEN else NORMAL


@pytest.mark.parametrize("total", [30.0, 60.0, 200.0])
def test_a_share_rising_from_3_to_20_percent_at_a_normal_total_opens_one_incident(total: float) -> None:
    _, events = run_composition(SHIFT_AT + SHIFT_LEN + 60, total, step)
    assert events, "no composition incident"
    assert {e.incident_id for e in events} == {events[0].incident_id}  # one incident for the three keys
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    opened, closed = events[0], events[-1]
    assert opened.type == "opened" and closed.type == "closed" and opened.kind == "composition"
    assert opened.detected_at <= format_w(SHIFT_AT + 10)  # found within 10 minutes
    assert opened.extra["rose"][0] == "server_connection"
    assert closed.region == "*" and closed.close_reason == "recovered"
    assert format_w(SHIFT_AT + SHIFT_LEN - 1) <= closed.closed_at <= format_w(SHIFT_AT + SHIFT_LEN + 5)
    assert {m["region"] for m in closed.extra["regions"]} == {"*", "US", "US/CA"}
    assert closed.extra["categories"]["server_connection"] > 0.12
    assert closed.extra["expected_categories"]["server_connection"] < 0.05
    assert closed.extra["fell"] and "server_connection" not in closed.extra["fell"]  # the others gave way


def format_w(i: int) -> str:
    from spikedetect.core.timefmt import format_ts_ms

    return format_ts_ms(i * W)


def drift(i: int) -> np.ndarray:
    """login from 10% to 30% and back over a day (the normal drift of a mix)."""
    share = 0.10 + 0.20 * (0.5 - 0.5 * np.cos(2 * np.pi * i / 1440))
    return shifted(NORMAL, 2, share)


@pytest.mark.parametrize(("name", "windows", "total", "mix"), [
    ("steady mix", 3000, 60.0, lambda i: NORMAL),
    ("daily drift of login 10-30%", 2880, 60.0, drift),
    ("daily drift on a busy key", 2880, 400.0, drift),
    ("small key below MIN_EXPECTED", 3000, 2.0, lambda i: np.random.default_rng(i).dirichlet(NORMAL * 3)),
    ("noisy mix of a modest key", 3000, 5.0, lambda i: np.random.default_rng(i // 10).dirichlet(NORMAL * 30)),
])
def test_normal_traffic_stays_quiet(name: str, windows: int, total: float, mix) -> None:
    for seed in (1, 2, 3):
        _, events = run_composition(windows, total, mix, seed=seed)
        assert events == [], (name, seed, events[:1])


def test_a_shift_while_the_total_is_an_outage_is_not_a_composition_incident() -> None:
    _, events = run_composition(SHIFT_AT + SHIFT_LEN + 60, 60.0, step,
                                blocked_at=lambda i: SHIFT_AT <= i < SHIFT_AT + SHIFT_LEN + 5)
    assert events == []


def test_shifted_windows_do_not_teach_the_shares() -> None:
    det, events = run_composition(SHIFT_AT + SHIFT_LEN, 60.0, step)
    assert events and events[-1].type != "closed"  # still open at the end of the shift
    col = det.cats["server_connection"]
    assert det.shares[det.rows[("ig", "*")], col] < 0.05


def test_state_per_key_is_bounded_and_round_trips() -> None:
    det = CompositionDetector(W, DET)
    for i in range(400):
        leaf = {("US/CA/LA", f"cat{(i * 7 + j) % 50}", "app"): 3.0 for j in range(5)}
        det.close_window(i * W, LeafWindow({"ig": leaf}), KEYS, INDEX, np.full(3, 15.0), np.zeros(3, dtype=bool))
    record = det.export_key(("ig", "*"))
    assert record is not None and len(record["shares"]) <= comp.MAX_CATEGORIES
    assert len(orjson.dumps(record)) <= 8 * 1024 - 2_900  # beside the count model's ~2.8 KB row
    again = CompositionDetector(W, DET)
    again.load(orjson.loads(orjson.dumps(det.to_dict())))
    assert orjson.dumps(again.to_dict()) == orjson.dumps(det.to_dict())


def test_composition_is_deterministic_and_restores_mid_incident() -> None:
    _, whole = run_composition(SHIFT_AT + SHIFT_LEN + 60, 60.0, step)
    det, first = run_composition(SHIFT_AT + 10, 60.0, step)
    restored = CompositionDetector(W, DET)
    restored.load(orjson.loads(orjson.dumps(det.to_dict())))
    # the same random stream continues: rerun the first part's draws, then go on from the copy
    rng_state = run_composition  # noqa: F841 (documentation: the helper draws per window in order)
    _, rest = _continue(restored, SHIFT_AT + 10, SHIFT_AT + SHIFT_LEN + 60)
    assert [e.to_json() for e in first + rest] == [e.to_json() for e in whole]


def _continue(det: CompositionDetector, start: int, end: int) -> tuple[CompositionDetector, list[SignalEvent]]:
    rng = np.random.default_rng(1)
    events: list[SignalEvent] = []
    for i in range(end):
        n = rng.poisson(60.0)
        counts = rng.multinomial(n, step(i))
        if i < start:
            continue
        leaf = {("US/CA/LA", c, "app"): float(k) for c, k in zip(CATS, counts, strict=True) if k}
        events += det.close_window(i * W, LeafWindow({"ig": leaf}), KEYS, INDEX, np.full(3, 60.0), np.zeros(3, dtype=bool))
    return det, events


# -- ingest gaps -------------------------------------------------------------------------
GKEYS = {("ig", "*"): 0, ("th", "*"): 1}
SOURCES = {"app": 0.6, "web": 0.35, "unknown": 0.05}


def run_gaps(n_windows: int, rates: dict[str, float], silent, seed: int = 1, learned: bool = True
             ) -> tuple[IngestGapDetector, list[SignalEvent]]:
    """``silent(svc, src, i)``: that producer sends nothing in window i."""
    rng = np.random.default_rng(seed)
    det = IngestGapDetector(W, DET)
    events: list[SignalEvent] = []
    svcs = sorted(rates)
    for i in range(n_windows):
        per: dict[str, dict[tuple[str, str, str], float]] = {}
        observed = np.zeros(2)
        for svc in svcs:
            for src, share in SOURCES.items():
                k = 0 if silent(svc, src, i) else rng.poisson(rates[svc] * share)
                if k:
                    per.setdefault(svc, {})[("US", "feed", src)] = float(k)
                    observed[GKEYS[(svc, "*")]] += k
        expected = np.array([rates.get("ig", 0.0), rates.get("th", 0.0)])
        events += det.close_window(i * W, LeafWindow(per), GKEYS, observed, expected, np.ones(2), np.full(2, learned), svcs)
    return det, events


def test_a_service_that_stops_gets_one_ingest_gap_closed_when_reports_resume() -> None:
    det, events = run_gaps(300, {"ig": 30.0, "th": 10.0}, lambda svc, src, i: svc == "th" and 200 <= i < 220)
    assert [(e.kind, e.type, e.service) for e in events] == [("ingest_gap", "opened", "th"), ("ingest_gap", "closed", "th")]
    opened, closed = events
    assert opened.extra["sources"] == ["*"] and opened.incident_id == closed.incident_id
    assert opened.opened_at == format_w(200) and opened.detected_at <= format_w(203)
    assert closed.closed_at == format_w(220) and closed.close_reason == "resumed"
    assert closed.extra["missing_windows"] == 20 and closed.extra["expected_reports"] == pytest.approx(200.0)
    assert det.services["th"].shares["web"] == pytest.approx(0.35, abs=0.06)


def test_one_source_stopping_names_that_source() -> None:
    _, events = run_gaps(300, {"ig": 30.0}, lambda svc, src, i: src == "web" and 200 <= i < 220)
    assert [(e.type, e.extra["sources"]) for e in events] == [("opened", ["web"]), ("closed", ["web"])]
    assert events[1].closed_at == format_w(220)


@pytest.mark.parametrize(("name", "rates", "learned"), [
    ("sparse service with natural zero windows", {"th": 0.5}, True),
    ("busy service, no gap", {"ig": 30.0, "th": 3.0}, True),
    ("baseline not learned yet", {"th": 10.0}, False),
])
def test_no_gap_without_a_stopped_producer(name: str, rates: dict[str, float], learned: bool) -> None:
    silent = (lambda svc, src, i: 100 <= i < 103) if not learned else (lambda svc, src, i: False)
    _, events = run_gaps(4000, rates, silent, learned=learned)
    assert events == [], name


@pytest.mark.parametrize(("mu", "phi", "want"), [(3.0, 1.0, 3.0), (3.0, 2.0, 3.0 * np.log(2.0)), (0.0, 5.0, 0.0)])
def test_zero_probability_of_a_window(mu: float, phi: float, want: float) -> None:
    assert zero_log_prob(mu, phi) == pytest.approx(want)


# -- through the scorer: events, and state restored mid-incident --------------------------
def _scorer_windows(n: int, seed: int = 5):
    """(ws, leaf counts) for 'ig': 60/min over two cities; login's share of Mumbai jumps to 60%
    for 30 min on day 2, and the web producer stops for 20 min later that day."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        ws = i * W
        leaf: dict[tuple[str, str, str], float] = {}
        for city, rate in (("US/CA/LA", 25.0), ("IN/MH/Mumbai", 35.0)):
            mix = NORMAL if not (city.startswith("IN") and 2000 <= i < 2030) else shifted(NORMAL, 2, 0.60)
            for src, share in SOURCES.items():
                if src == "web" and 2300 <= i < 2320:
                    continue
                for c, k in zip(CATS, rng.multinomial(rng.poisson(rate * share), mix), strict=True):
                    if k:
                        leaf[(city, c, src)] = leaf.get((city, c, src), 0.0) + float(k)
        yield ws, leaf


def _drive(scorer, windows) -> list[bytes]:
    from spikedetect.core.counter import ClosedWindow

    out: list[bytes] = []
    for ws, leaf in windows:
        scorer.add_partial(0, ClosedWindow(ws, {"ig": leaf}))
        scorer.set_watermark(0, ws + W)
        scorer.close_ready()
        out += [e.to_json() for e in scorer.signals.take()]
    return out


def test_the_scorer_publishes_both_signals_and_a_restored_scorer_continues_identically() -> None:
    from spikedetect.core.config import DetectorConfig
    from spikedetect.core.scorer import Scorer
    from spikedetect.core.state import export_key, import_key, restore_scorer, snapshot_scorer

    cfg = DetectorConfig(window_ms=W)
    windows = list(_scorer_windows(2500))
    whole = _drive(Scorer(cfg), windows)
    kinds = [(orjson.loads(e)["kind"], orjson.loads(e)["type"]) for e in whole]
    assert ("composition", "opened") in kinds and ("composition", "closed") in kinds
    assert [k for k in kinds if k[0] == "ingest_gap"] == [("ingest_gap", "opened"), ("ingest_gap", "closed")]
    gap = orjson.loads(next(e for e in whole if b'"ingest_gap"' in e))
    assert gap["sources"] == ["web"]
    comp_open = orjson.loads(next(e for e in whole if b'"composition"' in e))
    assert comp_open["rose"][0] == "login" and comp_open["region"] in ("*", "IN")
    for cut in (2010, 2305):  # mid shift, mid gap
        first = Scorer(cfg)
        head = _drive(first, windows[:cut])
        # a whole snapshot (replay, Detector.restore) ...
        again = restore_scorer(cfg, orjson.loads(orjson.dumps(snapshot_scorer(first))))
        assert head + _drive(again, windows[cut:]) == whole
        # ... and the live owner's records: one per key, plus the signals record
        owner = Scorer(cfg, sources=())
        for sk in first.keyspace.keys:
            import_key(owner, sk, orjson.loads(orjson.dumps(export_key(first, sk))))
        owner.signals.load(orjson.loads(orjson.dumps(first.signals.to_dict())))
        owner.watermarks, owner.next_ws = dict(first.watermarks), first.next_ws
        assert head + _drive(owner, windows[cut:]) == whole
