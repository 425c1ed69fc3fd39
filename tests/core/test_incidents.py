"""The incident state machine, driven directly with WindowView sequences (no I/O, no mocks)."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikedetect.core.config import DetectorConfig
from spikedetect.core.errors import IllegalTransition
from spikedetect.core.incident_event import TimeTexts, num, round_float_py
from spikedetect.core.incidents import (
    LIFECYCLE,
    TABLE,
    Action,
    IncidentEvent,
    IncidentMachine,
    Phase,
    Signal,
    Tracker,
    action_for,
    lifecycle_next,
)
from spikedetect.core.policy import (
    ANOMALOUS,
    CALM,
    ELEVATED,
    EXTREME,
    IncidentPolicy,
    WindowView,
)
from spikedetect.core.timefmt import format_ts_ms
from spikedetect.kernel import load_compiled

KERNEL = load_compiled("_closing")
W = 60_000
T0 = 1_795_651_200_000  # 2026-11-26T00:00:00Z
K, M, U = 3, 4, 3  # open_windows, close_windows, update_every_windows
CFG = DetectorConfig(
    window_ms=W, open_windows=K, close_windows=M, update_every_windows=U, max_incident_ms=100 * W
)

# observed count per signal when a sequence gives none
DEFAULT_OBS = {CALM: 10.0, ELEVATED: 30.0, ANOMALOUS: 100.0, EXTREME: 1000.0}


def view(i: int, signal: int, observed: float | None = None) -> WindowView:
    obs = DEFAULT_OBS[signal] if observed is None else observed
    return WindowView(
        ws_ms=T0 + i * W,
        observed=obs,
        expected=10.0,
        score=float(signal) * 10,
        baseline="learned",
        categories={"login": obs * 0.75, "feed": obs * 0.25},
        sources={"app": obs},
        children={"US/CA": (obs, 5.0)},
    )


def run(
    signals: list[int | tuple[int, float]],
    cfg: DetectorConfig = CFG,
    start: int = 0,
    policy: IncidentPolicy | None = None,
    tracker: Tracker | None = None,
) -> tuple[Tracker | None, list[tuple[int, IncidentEvent]]]:
    """Step one key through windows start, start+1, ...; returns its tracker and (window index, event)."""
    policy = policy or IncidentPolicy(cfg)
    out: list[tuple[int, IncidentEvent]] = []
    for i, item in enumerate(signals, start):
        sig, obs = item if isinstance(item, tuple) else (item, None)
        tracker, events = policy.step(tracker, "ig", "US", sig, view(i, sig, obs))
        out += [(i, e) for e in events]
    return tracker, out


def kinds(events: list[tuple[int, IncidentEvent]]) -> list[tuple[int, str]]:
    return [(i, e.type) for i, e in events]


A, X, E, C = ANOMALOUS, EXTREME, ELEVATED, CALM


# -- the tables ---------------------------------------------------------------------------------------


def test_signal_ints_are_the_enum() -> None:
    assert [CALM, ELEVATED, ANOMALOUS, EXTREME] == [Signal.CALM, Signal.ELEVATED, Signal.ANOMALOUS, Signal.EXTREME]
    assert [type(s) for s in (CALM, ELEVATED, ANOMALOUS, EXTREME)] == [int] * 4  # plain ints for numpy
    assert [str(p) for p in Phase] == ["quiet", "pending", "open", "cooling"]  # serialised as before


def test_phase_table_is_total() -> None:
    assert set(TABLE) == set(itertools.product(Phase, Signal))
    for (phase, signal), action in TABLE.items():
        assert action_for(phase, int(signal)) is action
    with pytest.raises(IllegalTransition):
        action_for("closed", CALM)  # type: ignore[arg-type]
    with pytest.raises(IllegalTransition):
        action_for(Phase.OPEN, 7)


@pytest.mark.parametrize("signal", [-1, 4, 2.5, "2", None, [2], np.int8(9)])
def test_signals_outside_the_table_are_illegal_whatever_their_type(signal: Any) -> None:
    """The plain-int shortcut of :func:`action_for` changes nothing for anything else."""
    for phase in (*Phase, "open"):
        with pytest.raises(IllegalTransition):
            action_for(phase, signal)  # type: ignore[arg-type]


def test_signals_of_any_int_type_find_their_action() -> None:
    for (phase, signal), action in TABLE.items():
        for value in (int(signal), np.int8(signal), signal, float(signal), bool(signal) if signal < 2 else signal):
            assert action_for(phase, value) is action  # type: ignore[arg-type]
        assert action_for(str(phase), int(signal)) is action  # type: ignore[arg-type]


def test_every_action_has_a_handler() -> None:
    machine = IncidentMachine(CFG)
    assert set(machine.handlers) == set(Action)
    assert [a for a, h in machine.handlers.items() if h is None] == [Action.IGNORE, Action.ABANDON]


def test_illegal_step_raises_and_changes_nothing() -> None:
    policy = IncidentPolicy(CFG)
    tracker, _ = run([A])
    assert tracker is not None
    before = copy.deepcopy(tracker.to_dict())
    with pytest.raises(IllegalTransition):
        policy.step(tracker, "ig", "US", 9, view(1, A))
    assert tracker.to_dict() == before


def _says(action: Action) -> Any:
    def handler(self: _Recording, t: Tracker, service: str, key: str, view: WindowView) -> Any:
        self.ran.append(action)
        return t, []
    return handler


class _Recording(IncidentPolicy):
    """A policy whose handlers only say which action ran."""

    _count, _open, _keep, _cool = (_says(a) for a in (Action.COUNT, Action.OPEN, Action.KEEP, Action.COOL))

    def __init__(self, cfg: DetectorConfig) -> None:
        self.ran: list[Action] = []
        super().__init__(cfg)


def test_step_runs_the_tables_action_for_a_signal_of_any_type() -> None:
    """``step`` finds its handler in TABLE's pairs (a plain, numpy, enum or float signal, a phase
    or its string), as :func:`action_for` does; any other signal raises and changes nothing."""
    for (phase, signal), action in TABLE.items():
        for value in (int(signal), np.int8(signal), signal, float(signal), bool(signal) if signal < 2 else signal):
            for ph in (phase, str(phase)):
                policy = _Recording(CFG)
                tracker = None if phase is Phase.QUIET else Tracker(phase=ph, first_ws=T0)  # type: ignore[arg-type]
                got, events = policy.step(tracker, "ig", "US", value, view(1, int(signal)))  # type: ignore[arg-type]
                handled = action not in (Action.IGNORE, Action.ABANDON)
                assert policy.ran == ([action] if handled else []), (phase, value)
                assert (got is not None) == handled and events == []
    for value in (-1, 4, 2.5, "2", None, [2], np.int8(9)):
        for phase in Phase:
            tracker = None if phase is Phase.QUIET else Tracker(phase=phase, first_ws=T0)
            before = None if tracker is None else copy.deepcopy(tracker.to_dict())
            with pytest.raises(IllegalTransition):
                IncidentPolicy(CFG).step(tracker, "ig", "US", value, view(1, A))  # type: ignore[arg-type]
            assert (None if tracker is None else tracker.to_dict()) == before


def _num_reference(x: float, digits: int = 3) -> float:
    r = round(float(x), digits)
    return float(int(r)) if r == int(r) else r


@given(st.one_of(st.floats(), st.integers(-(2**70), 2**70).map(float), st.integers(-10**6, 10**6),
                 st.sampled_from([-0.0, 0.0, 2.0**53 + 2, 1e300, 0.0005, 2.0005, -1.9995, 5e-324])),
       st.sampled_from([3, 4]))
def test_num_rounds_as_before_its_whole_number_shortcut(x: float, digits: int) -> None:
    try:
        want: Any = _num_reference(x, digits)
    except (OverflowError, ValueError) as exc:  # inf, nan
        with pytest.raises(type(exc)):
            num(x, digits)
        return
    got = num(x, digits)
    assert (type(got), repr(got)) == (type(want), repr(want))


ROUND_FLOATS = [round_float_py] + ([] if KERNEL is None else [KERNEL.round_float])  # pure, compiled


def _near_ties(digits: int) -> st.SearchStrategy[float]:
    """Values a few ulps from a tie of round(., digits), or from a whole number of its steps."""
    m = 10.0**digits
    return st.builds(lambda k, half, ulps, sign: sign * np.nextafter((k + half) / m, np.inf * ulps, dtype=np.float64)
                     if ulps else sign * (k + half) / m, st.integers(0, 2**31), st.sampled_from([0.0, 0.5, 0.4999999, 0.5000001]),
                     st.sampled_from([-1, 0, 1]), st.sampled_from([1.0, -1.0])).map(float)


@settings(max_examples=3000, deadline=None)
@given(st.data(), st.sampled_from([3, 4, 2]))
def test_round_float_is_round_to_the_bit(data: st.DataObject, digits: int) -> None:
    x = data.draw(st.one_of(st.floats(), st.floats(-1e4, 1e4), st.floats(0, 1), _near_ties(digits), _near_ties(3),
                            st.integers(-(2**40), 2**40).map(float), st.integers(-(2**40), 2**40)))
    for round_float in ROUND_FLOATS:
        try:
            want: Any = round(x, digits)
        except (OverflowError, ValueError) as exc:
            with pytest.raises(type(exc)):
                round_float(x, digits)
            continue
        got = round_float(x, digits)
        assert (type(got), repr(got), math.copysign(1.0, got)) == (type(want), repr(want), math.copysign(1.0, want))


def test_event_times_are_formatted_once_and_kept_bounded() -> None:
    texts = TimeTexts()
    times = [T0 + i * W for i in range(5000)]
    assert [texts[t] for t in times] == [format_ts_ms(t) for t in times]
    assert len(texts) <= 4096 and texts[times[-1]] == format_ts_ms(times[-1])
    # the same event stream from a machine whose texts were formatted before
    policy = IncidentPolicy(CFG)
    _, once = run([X, A, A, A, C, C, C, C], policy=policy)
    _, again = run([X, A, A, A, C, C, C, C], policy=policy)
    assert [e.to_json() for _, e in once] == [e.to_json() for _, e in again]
    assert '"opened_at":"2026-11-26T00:00:00.000Z"' in once[0][1].to_json().decode()


def test_tracker_round_trip_keeps_phase_strings() -> None:
    tracker, _ = run([X, C])
    assert tracker is not None and tracker.phase is Phase.COOLING
    d = tracker.to_dict()
    assert type(d["phase"]) is str and d["phase"] == "cooling"
    back = Tracker.from_dict(copy.deepcopy(d))
    assert back.phase is Phase.COOLING and back.to_dict() == d
    with pytest.raises(ValueError):
        Tracker.from_dict({**d, "phase": "closing"})


def test_lifecycle_is_opened_updated_star_closed() -> None:
    assert LIFECYCLE == {(None, "opened"): "open", ("open", "updated"): "open", ("open", "closed"): "closed"}
    letters = {"opened": "O", "updated": "U", "closed": "C"}
    for n in range(1, 6):
        for seq in itertools.product(letters, repeat=n):
            state: str | None = None
            try:
                for kind in seq:
                    state = lifecycle_next(state, kind)
                legal = True
            except IllegalTransition:
                legal = False
            text = " ".join(letters[k] for k in seq)
            assert legal == bool(re.fullmatch(r"O( U)*( C)?", text)), text  # opened updated* closed?


@pytest.mark.parametrize(
    ("state", "kind"),
    [
        (None, "updated"),
        (None, "closed"),
        ("open", "opened"),
        ("closed", "updated"),
        ("closed", "closed"),
        ("closed", "opened"),
    ],
)
def test_illegal_move_raises_and_changes_nothing(state: str | None, kind: str) -> None:
    policy = IncidentPolicy(CFG)
    t = Tracker(
        phase="open",
        first_ws=T0,
        state=state,
        incident_id="inc-x",
        seq=3,
        last_emit_ws=T0 + W,
        last_active_end=T0 + 2 * W,
        peak_count=50.0,
        peak_ws=T0 + W,
        emitted_peak=40.0,
        total=90.0,
        expected_total=20.0,
        categories={"login": 90.0},
        sources={"app": 90.0},
        children={"US/CA": [90.0, 20.0]},
    )
    before = copy.deepcopy(t.to_dict())
    with pytest.raises(IllegalTransition):
        policy._emit(t, kind, "ig", "US", view(5, ANOMALOUS))
    assert t.to_dict() == before
    with pytest.raises(IllegalTransition):
        lifecycle_next(state, kind)


# -- opening --------------------------------------------------------------------------------------------


def test_k_anomalous_windows_open() -> None:
    tracker, events = run([A] * (K - 1))
    assert events == [] and tracker is not None and tracker.phase == "pending" and tracker.state is None
    tracker, events = run([A] * K)
    assert kinds(events) == [(K - 1, "opened")]
    ev = events[0][1]
    assert tracker is not None and tracker.phase == "open" and tracker.state == "open"
    assert ev.seq == 1
    assert ev.opened_at == format_ts_ms(T0)  # the first anomalous window
    assert ev.detected_at == format_ts_ms(T0 + K * W)  # the end of the K-th
    assert ev.closed_at is None and ev.close_reason is None
    assert ev.total_reports == K * DEFAULT_OBS[A]
    assert ev.excess_reports == K * (DEFAULT_OBS[A] - 10.0)
    assert ev.categories == {"feed": 0.25, "login": 0.75}
    assert ev.children == [
        {
            "region": "US/CA",
            "reports": K * DEFAULT_OBS[A],
            "expected": K * 5.0,
            "excess": K * (DEFAULT_OBS[A] - 5.0),
        }
    ]
    assert ev.level == "country" and ev.region == "US" and ev.service == "ig"


def test_one_extreme_window_opens() -> None:
    _, events = run([X])
    assert kinds(events) == [(0, "opened")]
    _, events = run([A, X])  # pending + extreme opens at once too
    assert kinds(events) == [(1, "opened")]
    assert events[0][1].opened_at == format_ts_ms(T0)


@pytest.mark.parametrize("breaker", [C, E])
def test_pending_then_calm_abandons_without_events(breaker: int) -> None:
    tracker, events = run([A] * (K - 1) + [breaker])
    assert events == [] and tracker is None
    # a later run of K starts afresh: opened_at is its own first window
    _, events = run([A] * (K - 1) + [breaker] + [A] * K)
    assert kinds(events) == [(2 * K - 1, "opened")]
    assert events[0][1].opened_at == format_ts_ms(T0 + K * W)


def test_elevated_and_calm_alone_never_open() -> None:
    tracker, events = run([E, C, E, E, E, E, C, E] * 5)
    assert events == [] and tracker is None


# -- closing --------------------------------------------------------------------------------------------


def test_m_calm_windows_close() -> None:
    tracker, events = run([X] + [C] * (M - 1))
    assert kinds(events) == [(0, "opened")]
    assert tracker is not None and tracker.phase == "cooling"
    tracker, events = run([X] + [C] * M)
    assert tracker is None
    assert kinds(events) == [(0, "opened"), (M, "closed")]
    closed = events[-1][1]
    assert closed.close_reason == "recovered"
    assert closed.closed_at == format_ts_ms(T0 + W)  # end of the last non-calm window
    assert closed.seq == 2 and closed.incident_id == events[0][1].incident_id


def test_closed_at_is_end_of_last_non_calm_window() -> None:
    # elevated windows keep it open and count as activity; calm ones do not
    _, events = run([X, A, C, E, C, C, C, C])
    assert kinds(events)[-1] == (7, "closed")
    assert events[-1][1].closed_at == format_ts_ms(T0 + 4 * W)  # the elevated window at index 3


def test_flapping_stays_one_incident() -> None:
    flap = [X] + ([C] * (M - 1) + [A]) * 4 + [C] * M
    tracker, events = run(flap)
    assert tracker is None
    types = [e.type for _, e in events]
    assert types[0] == "opened" and types[-1] == "closed" and types.count("opened") == 1
    assert types.count("closed") == 1
    assert len({e.incident_id for _, e in events}) == 1
    assert [e.seq for _, e in events] == list(range(1, len(events) + 1))
    last_active = len(flap) - M - 1
    assert events[-1][1].closed_at == format_ts_ms(T0 + (last_active + 1) * W)


def test_a_new_incident_after_close_has_new_id_and_seq() -> None:
    policy = IncidentPolicy(CFG)
    _, first = run([X] + [C] * M, policy=policy)
    _, second = run([X] + [C] * M, policy=policy, start=M + 1)
    assert first[0][1].incident_id != second[0][1].incident_id
    assert [e.seq for _, e in second] == [1, 2]


def test_max_duration_closes() -> None:
    cfg = CFG.replace(max_incident_ms=10 * W)
    tracker, events = run([A] * 30, cfg=cfg)
    # windows 0..9 span 10 windows: the 10th (index 9) reaches max_incident_ms
    assert [(i, e.type) for i, e in events if e.type != "updated"] == [
        (K - 1, "opened"),
        (9, "closed"),
        (9 + K, "opened"),
        (19, "closed"),
        (19 + K, "opened"),
        (29, "closed"),
    ]
    closed = events[1][1]
    assert closed.close_reason == "max_duration"
    assert closed.closed_at == format_ts_ms(T0 + 10 * W)
    assert tracker is None


# -- updates --------------------------------------------------------------------------------------------


def test_updated_only_on_new_peak_and_throttled() -> None:
    seq: list[int | tuple[int, float]] = [
        (A, 100),
        (A, 100),
        (A, 110),  # 0-2: opens at 2 with peak 110
        (A, 150),  # 3: new peak, 1 window after the last event: throttled
        (A, 120),
        (A, 130),  # 4-5: not a new peak (150 stands)
        (A, 200),  # 6: new peak, 4 windows after the last event (>= U): updated
        (A, 300),  # 7: new peak, 1 window later: throttled
        (A, 50),
        (A, 50),
        (A, 50),
        (A, 50),  # 8-11: no new peak, however long
        (A, 400),  # 12: new peak, 6 windows later: updated
        (C, 10),
        (A, 401),  # 13-14: cooling then resumed with a new peak, 2 windows later: throttled
        (C, 10),
        (C, 10),
        (C, 10),
        (C, 10),  # 15-18: closes
    ]
    _, events = run(seq)
    assert kinds(events) == [(2, "opened"), (6, "updated"), (12, "updated"), (18, "closed")]
    assert [e.peak_count for _, e in events] == [110.0, 200.0, 400.0, 401.0]
    assert events[1][1].peak_at == format_ts_ms(T0 + 6 * W)
    assert [e.seq for _, e in events] == [1, 2, 3, 4]
    assert len({e.incident_id for _, e in events}) == 1


def test_update_every_window_when_allowed() -> None:
    cfg = CFG.replace(update_every_windows=1)
    _, events = run([(X, 100 + i) for i in range(5)] + [(A, 50)], cfg=cfg)
    assert kinds(events) == [(0, "opened"), (1, "updated"), (2, "updated"), (3, "updated"), (4, "updated")]


# -- identity -------------------------------------------------------------------------------------------


def test_incident_id_is_deterministic() -> None:
    _, a = run([A] * K)
    _, b = run([A] * K)
    assert a[0][1].incident_id == b[0][1].incident_id
    assert a[0][1].to_json() == b[0][1].to_json()
    _, later = run([A] * K, start=1)
    assert later[0][1].incident_id != a[0][1].incident_id
    p = IncidentPolicy(CFG)
    assert p.incident_id("ig", "US", T0) != p.incident_id("ig", "GB", T0)
    assert p.incident_id("ig", "US", T0) != p.incident_id("fb", "US", T0)
    # another configuration is another detector: its ids differ
    assert IncidentPolicy(CFG.replace(open_threshold=8.0)).incident_id("ig", "US", T0) != p.incident_id(
        "ig", "US", T0
    )


def test_event_json_is_stable_and_complete() -> None:
    _, events = run([X] + [C] * M)
    for _, ev in events:
        blob = ev.to_json()
        assert blob == ev.to_json()
        assert ev.kafka_key == b"ig|US"
        d = ev.to_dict()
        assert d["schema"] == "spikedetect.incident/v1"
        # group_id is set only on the region stream, once the outage grouper has placed the event
        assert set(d) == {f for f in IncidentEvent.__dataclass_fields__} - {"group_id"}
        assert dataclasses.replace(ev, group_id="out-1").to_dict() == {**d, "group_id": "out-1"}


def test_incident_opened_on_evidence_of_several_windows_closes_at_its_own_windows_not_1970() -> None:
    """An incident opened by the horizon path can have no window whose own score reaches
    ``close_threshold``; its ``closed_at`` is still the end of its last raised window."""
    policy = IncidentPolicy(CFG)
    tracker = None
    events: list[IncidentEvent] = []
    for i, sig in enumerate([ANOMALOUS] * K + [CALM] * M):
        v = view(i, sig)._replace(window_score=0.5)  # the window alone: nothing
        tracker, evs = policy.step(tracker, "ig", "US", sig, v)
        events += evs
    assert [e.type for e in events] == ["opened", "closed"]
    assert events[-1].closed_at == format_ts_ms(T0 + W)
