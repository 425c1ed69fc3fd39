"""The signals beside the count detector: composition shifts and ingest gaps (issue 18).

:class:`Signals` is the scorer's one hook: after a window's counts are scored and learned,
it hands the window to :class:`~spikedetect.core.composition.CompositionDetector` and
:class:`~spikedetect.core.ingest_gap.IngestGapDetector` (report streams), or to
:class:`~spikedetect.core.drops.DropDetector` (``--series``: ``kinds=("drop",)``), and keeps their events
(:class:`~spikedetect.core.signal_events.SignalEvent`) until the driver takes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from spikedetect.core.composition import CompositionDetector
from spikedetect.core.config import DetectorConfig
from spikedetect.core.drops import DropDetector
from spikedetect.core.ingest_gap import IngestGapDetector
from spikedetect.core.keyspace import Keyspace
from spikedetect.core.leaf_window import LeafWindow
from spikedetect.core.signal_events import SignalEvent
from spikedetect.kernel import closing as _kernel

COOLDOWN_MS = 90 * 60_000


class Signals:
    """The signal detectors of one scorer, and the events they produced since the last take."""

    REPORTS = ("composition", "ingest_gap")  # the default: report streams
    SERIES = ("drop",)  # a metric series (``replay --series``)

    def __init__(self, config: DetectorConfig, kinds: tuple[str, ...] = REPORTS) -> None:
        detector = {"name": config.detector.name, "params_hash": config.params_hash}
        self.kinds = kinds
        self.composition = CompositionDetector(config.window_ms, detector)
        self.gaps = IngestGapDetector(config.window_ms, detector)
        model = "counts" if config.value_scale == 1.0 else "continuous"  # as a series' count incidents say
        self.drops = DropDetector(config.window_ms, {**detector, "model": model}, config.open_threshold, config.close_threshold,
                                  config.level_shift_ms, config.value_scale)
        self.events: list[SignalEvent] = []
        self.applied_ws: int | None = None  # the last window applied (a re-close after a crash skips it)
        self.cooling: dict[tuple[str, str], int] = {}  # key -> last window with a count incident on or under it

    def close_window(self, ws: int, window: LeafWindow, ks: Keyspace,
                     observed: npt.NDArray[np.float64], expected: npt.NDArray[np.float64],
                     phi: npt.NDArray[np.float64], learned: npt.NDArray[np.bool_],
                     blocked: npt.NDArray[np.bool_], incident: npt.NDArray[np.bool_]) -> None:
        """One closed window, after the count detector scored it (``blocked``: keys whose total
        is not normal - an open count incident or an anomalous window). A key above one with an
        open count ``incident`` is blocked too: a city outage shifts its country's and the world's
        mix, and that shift is the outage's. ``window``: its leaves
        (:mod:`~spikedetect.core.leaf_window`)."""
        if self.applied_ws is not None and ws <= self.applied_ws:
            return  # applied before a crash: its events were published then
        self.applied_ws = ws
        if "drop" in self.kinds:
            self.events.extend(self.drops.close_window(ws, ks.keys, ks.index, observed, expected, phi, learned,
                                                       incident))
        if "composition" not in self.kinds:
            return
        if self.cooling or np.count_nonzero(incident):  # (else no key is under an incident: blocked stays)
            blocked = blocked | self._under(ws, ks, incident)
        self.events.extend(self.composition.close_window(ws, window, ks.keys, ks.index, expected, blocked,
                                                         ks.moves))
        services = window.services()  # with the services the gap detector knows already
        self.events.extend(self.gaps.close_window(ws, window, ks.index, observed, expected, phi, learned,
                                                  services))

    def _under(self, ws: int, ks: Keyspace, incident: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
        """The keys with an open count ``incident`` and those above them, and for COOLDOWN_MS
        after (an outage's tail keeps its mix while its count is normal again)."""
        under = incident.copy()
        if _kernel is not None:
            _kernel.lift_to_ancestors(under.view(np.uint8), ks.parent, ks.depth)
        else:
            parent = ks.parent[: ks.size]
            for _ in range(int(ks.depth[: ks.size].max(initial=0)) if under.any() else 0):  # (none: nothing to lift)
                up = parent[under & (parent >= 0)]
                if len(up) == 0 or under[up].all():
                    break
                under[up] = True
        keys, cooling, index = ks.keys, self.cooling, ks.index
        for r in np.flatnonzero(under).tolist():
            cooling[keys[r]] = ws
        rows = []  # the rows still cooling from earlier windows (those of this one are under already)
        for sk, at in list(cooling.items()):
            if at != ws:
                row = index.get(sk)
                if row is None or ws - at >= COOLDOWN_MS:
                    del cooling[sk]
                else:
                    rows.append(row)
        if rows:
            under[rows] = True
        return under

    def take(self) -> list[SignalEvent]:
        out, self.events = self.events, []
        return out

    def to_dict(self) -> dict[str, Any]:
        """Everything but the per-key category shares, which travel in each key's record
        (:func:`spikedetect.core.state.export_key`)."""
        return {"composition": self.composition.to_dict(with_keys=False), "gaps": self.gaps.to_dict(),
                "cooling": [[svc, key, at] for (svc, key), at in sorted(self.cooling.items())],
                "applied_ws": self.applied_ws, **({"drops": self.drops.to_dict()} if "drop" in self.kinds else {})}

    def load(self, data: Mapping[str, Any]) -> None:
        self.composition.load(data["composition"])
        self.gaps.load(data["gaps"])
        self.drops.load(data.get("drops", {}))
        self.cooling = {(str(svc), str(key)): int(at) for svc, key, at in data.get("cooling", [])}
        applied = data.get("applied_ws")
        self.applied_ws = None if applied is None else int(applied)
