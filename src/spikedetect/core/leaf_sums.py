"""A closed window's leaf counts summed the three ways its closing reads them, in one pass.

Per service: the reports per region (``observe``'s own reports), per (region, category)
(:meth:`~spikedetect.core.composition.shares.ShareBank.counts`) and per source
(:func:`~spikedetect.core.ingest_gap.source_sums`). Each sum is taken in leaf order as Python
adds (``0 + n + ...`` per region, ``0.0 + n + ...`` for the other two), keys in the order first
met: the sums those steps took each in a walk of their own. The leaf dicts were filled while
counting and are cold by the time a window closes; one walk reads them once.

>>> s = leaf_sums({"ig": {("US", "feed", "app"): 2, ("DE", "feed", "app"): 1, ("US", "dm", "web"): 4}})["ig"]
>>> s.by_region, s.by_category, s.by_source
({'US': 6, 'DE': 1}, {('US', 'feed'): 2.0, ('DE', 'feed'): 1.0, ('US', 'dm'): 4.0}, {'app': 3.0, 'web': 4.0})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from spikedetect.core.expand import LeafCounts
from spikedetect.kernel import closing as _kernel


class LeafSums(NamedTuple):
    """One service's leaf counts in a window, summed per region, per (region, category) and per
    source."""

    by_region: dict[str, float]
    by_category: dict[tuple[str, str], float]
    by_source: dict[str, float]


def leaf_sums(per_service: Mapping[str, LeafCounts]) -> dict[str, LeafSums]:
    """Each service's :class:`LeafSums`, services in ``per_service``'s order (in the compiled
    closing loops when they are built: the same sums, added in the same order)."""
    if _kernel is not None:
        compiled: dict[str, LeafSums] = _kernel.leaf_sums(per_service, LeafSums)
        return compiled
    out: dict[str, LeafSums] = {}
    for svc, leaf in per_service.items():
        by_region: dict[str, float] = {}
        by_category: dict[tuple[str, str], float] = {}
        by_source: dict[str, float] = {}
        for (region, cat, src), n in leaf.items():
            by_region[region] = by_region.get(region, 0) + n
            by_category[(region, cat)] = by_category.get((region, cat), 0.0) + n
            by_source[src] = by_source.get(src, 0.0) + n
        out[svc] = LeafSums(by_region, by_category, by_source)
    return out
