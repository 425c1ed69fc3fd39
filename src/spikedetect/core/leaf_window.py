"""One closed window's leaves, as the steps of closing ask about them.

A :class:`LeafWindow` holds the window's merged leaf counts, ``{service: {(region, category,
source): n}}``, and - when it has one - their :class:`~spikedetect.core.leaves.LeafFrame` (the
same leaves as arrays of interned ids, made only when every count is whole and small, and only
when the compiled closing loops are built). It answers the questions the steps of closing ask:
each key's own reports (:func:`~spikedetect.core.window_scores.observe`), the share counts of the
busy keys (:meth:`share_counts`), a service's reports
per source (:mod:`~spikedetect.core.ingest_gap`) and the breakdown of some keys
(:mod:`~spikedetect.core.incident_steps`). Each answer comes from the frame when there is one
and from a walk over the dicts otherwise: the same bits either way, so the steps never ask
which (``tests/core/test_leaves.py`` holds the two against each other and pure Python).

>>> window = LeafWindow({"ig": {("US/CA", "feed", "app"): 2, ("US", "feed", "web"): 1}})
>>> window.source_sums("ig"), list(window.breakdown("ig", {"US"})["US"].children.items())
({'app': 2.0, 'web': 1.0}, [('US/CA', 2)])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from spikedetect.core.counter import LeafKey
from spikedetect.core.expand import Breakdown, Into, breakdown
from spikedetect.core.ingest_gap import source_sums
from spikedetect.core.keyspace import Keyspace
from spikedetect.core.leaves import LeafFrame, LeafTable
from spikedetect.kernel import closing as _kernel

if TYPE_CHECKING:
    from spikedetect.core.composition.shares import ShareBank

IntArray = npt.NDArray[np.intp]
FloatArray = npt.NDArray[np.float64]
PerService = dict[str, dict[LeafKey, float]]


class LeafWindow:
    """A closed window's leaf counts per service (``per_service``, read-only) and their
    ``frame``, if they have one (:meth:`LeafTable.frame <spikedetect.core.leaves.LeafTable.frame>`;
    :meth:`of` makes both)."""

    __slots__ = ("frame", "per_service")

    def __init__(self, per_service: PerService, frame: LeafFrame | None = None) -> None:
        self.per_service = per_service
        self.frame = frame

    @classmethod
    def of(cls, table: LeafTable, ks: Keyspace, per_service: PerService) -> LeafWindow:
        """The window of ``per_service``, with its frame over ``table`` when it can have one."""
        return cls(per_service, table.frame(ks, per_service))

    def services(self) -> list[str]:
        """The services with leaves this window, in the dicts' order."""
        return list(self.per_service)

    def own_reports(self, ks: Keyspace) -> tuple[FloatArray, IntArray]:
        """Each (service, region)'s own reports: ``observed`` (``ks.size`` rows, zeros but the
        keys' own reports) and the rows given them (once each); new keys get rows first, in the
        order the dicts' walk meets them."""
        if self.frame is not None:
            return self.frame.own_reports(ks)
        per_service = self.per_service
        if _kernel is None:
            own = _own_reports(ks, per_service)
            rows = np.fromiter(map(ks.index.__getitem__, own), dtype=np.intp, count=len(own))
            values = np.fromiter(own.values(), dtype=np.float64, count=len(own))
        else:
            room = sum(map(len, per_service.values()))
            rows, values = np.empty(room, dtype=np.intp), np.empty(room)
            m = _kernel.own_reports(per_service, ks.index, ks.row, rows, values)
            rows, values = rows[:m], values[:m]
        observed = np.zeros(ks.size)
        observed[rows] = values
        return observed, rows

    def share_counts(self, bank: ShareBank, m: int) -> FloatArray:
        """``bank``'s reports per busy key (``m`` rows) and category (column) this window."""
        if self.frame is not None:
            return bank.leaf_paths.counts(bank, self.frame, m)
        return bank.walk_counts(self.per_service, m)

    def source_sums(self, svc: str) -> dict[str, float]:
        """A service's reports per source (:func:`~spikedetect.core.ingest_gap.source_sums`)."""
        if self.frame is not None:
            return self.frame.source_sums(svc)
        return source_sums(self.per_service.get(svc, {}))

    def breakdown(self, svc: str, wanted: set[str]) -> dict[str, Breakdown]:
        """A service's :func:`~spikedetect.core.expand.breakdown` for the keys in ``wanted``."""
        got = None if self.frame is None else self.frame.breakdown(svc, wanted)
        return breakdown(self.per_service.get(svc, {}), wanted) if got is None else got

    def breakdown_into(self, svc: str, wanted: set[str], into: Into) -> dict[str, Breakdown] | None:
        """:meth:`breakdown`, the keys of ``into``'s targets added straight into their incidents'
        sums (as ``Tracker.accumulate`` adds a view's) and left out; None when only the leaf dict's
        walk can give it (nothing added: then :meth:`breakdown`)."""
        return None if self.frame is None else self.frame.breakdown(svc, wanted, into)


def _own_reports(ks: Keyspace, per_service: PerService) -> dict[tuple[str, str], float]:
    """Each (service, region)'s own reports in this window; new keys get rows (pure Python)."""
    index = ks.index
    own: dict[tuple[str, str], float] = {}
    for svc, leaf in per_service.items():
        by_region: dict[str, float] = {}
        for (region, _, _), count in leaf.items():
            by_region[region] = by_region.get(region, 0) + count
        for region, count in by_region.items():
            sk = (svc, region)
            if sk not in index:
                ks.row(svc, region)
            own[sk] = count
    return own
